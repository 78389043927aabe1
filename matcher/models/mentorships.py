"""Committed pairs, their training summaries, and the email outbox that reminds them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import TimestampMixin, one_of
from matcher.models.people import Apprentice, Craftsman

MENTORSHIP_STATUSES = ("active", "ended", "completed")
AUTHORS = ("craftsman", "apprentice")
REMINDER_KINDS = (
    "upcoming",
    "overdue",
    "escalation",
    "digest",
    "term_ending",
    "check_in",
    "offer",
    "offer_reminder",
)
# The programme's emails (programme.md): about a pair, not about one of its summary periods.
PROGRAMME_REMINDER_KINDS = ("term_ending", "check_in")
# The emails about an offer (its ``offer_id``), to the craftsman asked.
OFFER_REMINDER_KINDS = ("offer", "offer_reminder")
REMINDER_STATUSES = ("pending", "sent", "failed", "cancelled")
RECIPIENT_ROLES = ("craftsman", "apprentice", "coordinator", "unit")
# One name per status, for the code that sets or compares one (the tuples above feed the checks).
MENTORSHIP_ACTIVE, MENTORSHIP_ENDED, MENTORSHIP_COMPLETED = MENTORSHIP_STATUSES
# Why a pair was ended early (programme.md, "Agreement and term").
END_REASONS = ("not_a_fit", "left_unit", "craftsman_unavailable", "other")
REMINDER_PENDING, REMINDER_SENT, REMINDER_FAILED, REMINDER_CANCELLED = REMINDER_STATUSES


class Mentorship(TimestampMixin, Base):
    """A committed pair (师徒关系) with its training-summary cadence."""

    __tablename__ = "mentorships"
    __table_args__ = (
        CheckConstraint(one_of("status", MENTORSHIP_STATUSES), name="status"),
        CheckConstraint("summary_every_days BETWEEN 1 AND 366", name="cadence"),
        CheckConstraint(
            f"end_reason IS NULL OR {one_of('end_reason', END_REASONS)}", name="end_reason"
        ),
        Index("ix_mentorships_status_ends_on", "status", "ends_on"),
        Index("ix_mentorships_status_started_on", "status", "started_on"),
        Index("ix_mentorships_status_next_due_on", "status", "next_due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("craftsmen.id"), index=True)
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id"), unique=True)
    started_on: Mapped[date] = mapped_column(Date)
    summary_every_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    ended_on: Mapped[date | None] = mapped_column(Date)
    # The summary cycle, kept by the service so that the reminder scan is one indexed query:
    # periods 1..periods_filled hold a summary; next_due_on is the due date of the oldest open one
    # (started_on + (periods_filled + 1) * summary_every_days), NULL once ended.
    periods_filled: Mapped[int] = mapped_column(Integer, default=0)
    next_due_on: Mapped[date | None] = mapped_column(Date)
    last_summary_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The agreement (师徒协议, programme.md): its term, the goals, and how the pair ended.
    ends_on: Mapped[date] = mapped_column(Date)
    # The middle of the agreed term, when the pair is asked for a check-in (kept on the row so
    # that the reminder scan compares dates only, the same on both dialects).
    mid_term_on: Mapped[date] = mapped_column(Date)
    goals: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    end_comment: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When one of the pair withdrew cross-unit consent while the pair was active: the
    # coordinators are asked to end it (the pair and its history stay with the units).
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    craftsman: Mapped[Craftsman] = relationship()
    apprentice: Mapped[Apprentice] = relationship()


class TrainingSummary(Base):
    """What a pair hands in for one period (培训总结); each fills the oldest open period."""

    __tablename__ = "training_summaries"
    __table_args__ = (
        UniqueConstraint("mentorship_id", "period_index"),
        CheckConstraint(one_of("author", AUTHORS), name="author"),
        CheckConstraint("hours >= 0 AND hours <= 1000", name="hours"),
        CheckConstraint("period_index >= 1", name="period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mentorship_id: Mapped[int] = mapped_column(ForeignKey("mentorships.id"), index=True)
    period_index: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    hours: Mapped[float] = mapped_column(Float)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    submitted_by: Mapped[str] = mapped_column(String(200))  # a key's label, or "form"


class Reminder(Base):
    """The email outbox: one row per email, queued at most once, sent by the ``outbox`` job."""

    __tablename__ = "reminders"
    __table_args__ = (
        # At most once, ever, per (mentorship, period, kind, recipient): a database rule.
        UniqueConstraint("mentorship_id", "period_index", "kind", "recipient"),
        CheckConstraint(one_of("kind", REMINDER_KINDS), name="kind"),
        CheckConstraint(one_of("status", REMINDER_STATUSES), name="status"),
        CheckConstraint(one_of("recipient_role", RECIPIENT_ROLES), name="recipient_role"),
        Index("ix_reminders_sendable", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    mentorship_id: Mapped[int | None] = mapped_column(ForeignKey("mentorships.id"), index=True)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"), index=True)
    period_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(254))
    recipient_role: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    due_on: Mapped[date | None] = mapped_column(Date)
    # Digests have no mentorship: this key (unique) makes them once-only too.
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
