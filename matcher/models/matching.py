"""Match runs and what they leave: proposals, the unmatched, and rejected pairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import TimestampMixin, one_of
from matcher.models.people import Apprentice, Craftsman

RUN_STATUSES = ("queued", "running", "proposed", "committed", "failed")
ACTIVE_RUN_STATUSES = ("queued", "running")  # at most one run of an alliance is in these
ACTIVE_RUN_INDEX = "uq_match_runs_active_alliance_id"
PROPOSAL_STATUSES = ("pending", "approved", "rejected")
UNMATCHED_REASONS = (
    "no_eligible_craftsman",
    "capacity_exhausted",
    "excluded",
    "unit_cap",
    "no_consent",
)
# One name per status, for the code that sets or compares one (the tuples above feed the checks).
RUN_QUEUED, RUN_RUNNING, RUN_PROPOSED, RUN_COMMITTED, RUN_FAILED = RUN_STATUSES
PROPOSAL_PENDING, PROPOSAL_APPROVED, PROPOSAL_REJECTED = PROPOSAL_STATUSES
OPEN_PROPOSAL_STATUSES = (PROPOSAL_PENDING, PROPOSAL_APPROVED)  # these hold a craftsman's slot


_ACTIVE_RUN = text(one_of("status", ACTIVE_RUN_STATUSES))


class MatchRun(TimestampMixin, Base):
    """One solve over an alliance with its parameters; holds proposals and the unmatched."""

    __tablename__ = "match_runs"
    __table_args__ = (
        CheckConstraint(one_of("status", RUN_STATUSES), name="status"),
        # One queued or running run per alliance, kept by the database even for two
        # concurrent requests (a partial unique index, on PostgreSQL and SQLite alike).
        Index(
            ACTIVE_RUN_INDEX,
            "alliance_id",
            unique=True,
            postgresql_where=_ACTIVE_RUN,
            sqlite_where=_ACTIVE_RUN,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    objective: Mapped[float | None] = mapped_column(Float)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Proposal(TimestampMixin, Base):
    """A proposed (craftsman, apprentice) pair of a run, with its score and explanation."""

    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("match_run_id", "apprentice_id"),
        CheckConstraint(one_of("status", PROPOSAL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id", ondelete="CASCADE"))
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("craftsmen.id"), index=True)
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    fit: Mapped[float] = mapped_column(Float)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The rank (1-3) at which the apprentice put this craftsman when the run was solved; None:
    # not ranked (the explanation's ``preference_rank``, matching.md).
    preference_rank: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the ETag; bumped on every change

    craftsman: Mapped[Craftsman] = relationship()
    apprentice: Mapped[Apprentice] = relationship()


# A run's proposals in the order they are listed (best score first): a page is read from the
# index, not sorted out of the whole run.
Index("ix_proposals_match_run_id_score", Proposal.match_run_id, Proposal.score.desc(), Proposal.id)


class UnmatchedApprentice(Base):
    """An apprentice a run could not place, and why."""

    __tablename__ = "unmatched_apprentices"
    __table_args__ = (
        UniqueConstraint("match_run_id", "apprentice_id"),
        CheckConstraint(one_of("reason_code", UNMATCHED_REASONS), name="reason_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id", ondelete="CASCADE"))
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    apprentice: Mapped[Apprentice] = relationship()


class RejectedPair(Base):
    """A pair a coordinator rejected: never proposed again until the rejection is cleared."""

    __tablename__ = "rejected_pairs"
    __table_args__ = (UniqueConstraint("craftsman_id", "apprentice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("craftsmen.id"))
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id", ondelete="SET NULL"))
    rejected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rejected_by: Mapped[str | None] = mapped_column(String(200))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    craftsman: Mapped[Craftsman] = relationship()
