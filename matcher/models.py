"""The service's tables: alliances, their units and skill taxonomies, people, and API keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
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

ROLES = ("admin", "coordinator", "hr")
RUN_STATUSES = ("queued", "running", "proposed", "committed", "failed")
ACTIVE_RUN_STATUSES = ("queued", "running")  # at most one run of an alliance is in these
ACTIVE_RUN_INDEX = "uq_match_runs_active_alliance_id"
PROPOSAL_STATUSES = ("pending", "approved", "rejected")
UNMATCHED_REASONS = ("no_eligible_craftsman", "capacity_exhausted", "excluded")
MENTORSHIP_STATUSES = ("active", "ended")
AUTHORS = ("craftsman", "apprentice")
REMINDER_KINDS = ("upcoming", "overdue", "escalation", "digest")
REMINDER_STATUSES = ("pending", "sent", "failed", "cancelled")
RECIPIENT_ROLES = ("craftsman", "apprentice", "coordinator", "unit")
# One name per status, for the code that sets or compares one (the tuples above feed the checks).
RUN_QUEUED, RUN_RUNNING, RUN_PROPOSED, RUN_COMMITTED, RUN_FAILED = RUN_STATUSES
PROPOSAL_PENDING, PROPOSAL_APPROVED, PROPOSAL_REJECTED = PROPOSAL_STATUSES
OPEN_PROPOSAL_STATUSES = (PROPOSAL_PENDING, PROPOSAL_APPROVED)  # these hold a craftsman's slot
MENTORSHIP_ACTIVE, MENTORSHIP_ENDED = MENTORSHIP_STATUSES
REMINDER_PENDING, REMINDER_SENT, REMINDER_FAILED, REMINDER_CANCELLED = REMINDER_STATUSES


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


LOCALES = ("zh-CN", "en")


class TimestampMixin:
    """``created_at`` / ``updated_at`` kept by the service, never by clients."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Alliance(TimestampMixin, Base):
    """A craftsman alliance: the member units that agreed to share craftsmen."""

    __tablename__ = "alliances"
    __table_args__ = (CheckConstraint("summary_every_days BETWEEN 1 AND 366", name="cadence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    summary_every_days: Mapped[int] = mapped_column(Integer, default=30)

    units: Mapped[list[Unit]] = relationship(back_populates="alliance")


class Unit(TimestampMixin, Base):
    """A member enterprise of an alliance."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("alliance_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(100))
    contact_email: Mapped[str | None] = mapped_column(String(254))

    alliance: Mapped[Alliance] = relationship(back_populates="units")


class Skill(TimestampMixin, Base):
    """A skill tag of an alliance's taxonomy; ``key`` is the normalised name used for lookups.

    Each alliance owns its taxonomy (security.md): the same name in two alliances is two tags,
    and a coordinator's renames and re-parentings change its own alliance's tags only.
    """

    __tablename__ = "skills"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        UniqueConstraint("alliance_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"))
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id"), index=True)

    parent: Mapped[Skill | None] = relationship(remote_side=[id])
    aliases: Mapped[list[SkillAlias]] = relationship(
        back_populates="skill", cascade="all, delete-orphan", order_by="SkillAlias.key"
    )


class SkillAlias(Base):
    """Another name of a skill tag, resolved to the canonical tag on the way in."""

    __tablename__ = "skill_aliases"
    __table_args__ = (UniqueConstraint("alliance_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"))  # its skill's
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))

    skill: Mapped[Skill] = relationship(back_populates="aliases")


class PersonMixin(TimestampMixin):
    """Fields shared by craftsmen and apprentices, as HR systems send them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    region: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Craftsman(PersonMixin, Base):
    """A mentor of a unit's craftsman team (劳模, 工匠, 技能带头人)."""

    __tablename__ = "craftsmen"
    __table_args__ = (
        UniqueConstraint("unit_id", "external_id"),
        CheckConstraint("capacity BETWEEN 1 AND 10", name="capacity"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        Index("ix_craftsmen_unit_id_updated_at", "unit_id", "updated_at"),
    )

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    honours: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(SmallInteger, default=2)

    unit: Mapped[Unit] = relationship()
    skills: Mapped[list[CraftsmanSkill]] = relationship(
        cascade="all, delete-orphan", order_by="CraftsmanSkill.position"
    )


class CraftsmanSkill(Base):
    """A skill a craftsman can teach, at a level from 1 to 5."""

    __tablename__ = "craftsman_skills"
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 5", name="level"),)

    craftsman_id: Mapped[int] = mapped_column(
        ForeignKey("craftsmen.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"), primary_key=True, index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)  # the order HR sent them in

    skill: Mapped[Skill] = relationship(lazy="joined")

    @property
    def name(self) -> str:
        """The canonical name of the skill tag."""
        return self.skill.name


class Apprentice(PersonMixin, Base):
    """An employee who wants to learn from another unit's craftsman."""

    __tablename__ = "apprentices"
    __table_args__ = (
        UniqueConstraint("unit_id", "external_id"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        Index("ix_apprentices_unit_id_updated_at", "unit_id", "updated_at"),
    )

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))

    unit: Mapped[Unit] = relationship()
    wants: Mapped[list[ApprenticeWant]] = relationship(
        cascade="all, delete-orphan", order_by="ApprenticeWant.position"
    )


class ApprenticeWant(Base):
    """A skill an apprentice wants to reach, with a target level and a weight."""

    __tablename__ = "apprentice_wants"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level"),
        CheckConstraint("weight > 0", name="weight"),
    )

    apprentice_id: Mapped[int] = mapped_column(
        ForeignKey("apprentices.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"), primary_key=True, index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)

    skill: Mapped[Skill] = relationship(lazy="joined")

    @property
    def name(self) -> str:
        """The canonical name of the skill tag."""
        return self.skill.name


class ApiKey(Base):
    """A bearer key; only its SHA-256 is stored, the key itself is printed once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'hr')", name="role"),
        CheckConstraint(
            "(role = 'admin' AND alliance_id IS NULL AND unit_id IS NULL)"
            " OR (role = 'coordinator' AND alliance_id IS NOT NULL AND unit_id IS NULL)"
            " OR (role = 'hr' AND alliance_id IS NOT NULL AND unit_id IS NOT NULL)",
            name="scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell keys apart
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateLimitWindow(Base):
    """How many requests an API key made in one fixed window (the per-key rate limit).

    One row per key and window, counted up by a single upsert per request; rows of past windows
    are deleted by the key's first request of a new window.
    """

    __tablename__ = "rate_limit_windows"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer)


class SchedulerHeartbeat(Base):
    """The active scheduler's last sign of life: one row, rewritten by its ``heartbeat`` job.

    The leader lock says a scheduler process holds the role; the beat says it still runs jobs
    (a process wedged while holding the lock stops beating). ``/readyz`` and ``/metrics`` read it.
    """

    __tablename__ = "scheduler_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)


_ACTIVE_RUN = text(_one_of("status", ACTIVE_RUN_STATUSES))


class MatchRun(TimestampMixin, Base):
    """One solve over an alliance with its parameters; holds proposals and the unmatched."""

    __tablename__ = "match_runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
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
        CheckConstraint(_one_of("status", PROPOSAL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id", ondelete="CASCADE"))
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("craftsmen.id"), index=True)
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    fit: Mapped[float] = mapped_column(Float)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the ETag; bumped on every change

    craftsman: Mapped[Craftsman] = relationship()
    apprentice: Mapped[Apprentice] = relationship()


class UnmatchedApprentice(Base):
    """An apprentice a run could not place, and why."""

    __tablename__ = "unmatched_apprentices"
    __table_args__ = (
        UniqueConstraint("match_run_id", "apprentice_id"),
        CheckConstraint(_one_of("reason_code", UNMATCHED_REASONS), name="reason_code"),
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


class Mentorship(TimestampMixin, Base):
    """A committed pair (师徒关系) with its training-summary cadence."""

    __tablename__ = "mentorships"
    __table_args__ = (
        CheckConstraint(_one_of("status", MENTORSHIP_STATUSES), name="status"),
        CheckConstraint("summary_every_days BETWEEN 1 AND 366", name="cadence"),
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

    craftsman: Mapped[Craftsman] = relationship()
    apprentice: Mapped[Apprentice] = relationship()


class TrainingSummary(Base):
    """What a pair hands in for one period (培训总结); each fills the oldest open period."""

    __tablename__ = "training_summaries"
    __table_args__ = (
        UniqueConstraint("mentorship_id", "period_index"),
        CheckConstraint(_one_of("author", AUTHORS), name="author"),
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
        CheckConstraint(_one_of("kind", REMINDER_KINDS), name="kind"),
        CheckConstraint(_one_of("status", REMINDER_STATUSES), name="status"),
        CheckConstraint(_one_of("recipient_role", RECIPIENT_ROLES), name="recipient_role"),
        Index("ix_reminders_sendable", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    mentorship_id: Mapped[int | None] = mapped_column(ForeignKey("mentorships.id"), index=True)
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


class User(Base):
    """A coordinator who signs in to the web pages (created with ``matcher users create``)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, this table its hash.

    Signing out deletes the row, a password change deletes all of the user's rows, and a row past
    ``expires_at`` (12 hours after sign-in) opens nothing: a copied cookie is then useless.
    """

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the id
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


SIGN_IN_SCOPES = ("account", "address")


class SignInThrottle(Base):
    """Recent failed sign-ins of one account (the email as typed, known or not) or one client
    address, and until when further attempts wait. Counted by one upsert per attempt, so every
    worker and host shares the count."""

    __tablename__ = "sign_in_throttles"
    __table_args__ = (CheckConstraint(_one_of("scope", SIGN_IN_SCOPES), name="scope"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who decided what, and when: every review decision and commit is kept here."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = [
    "Alliance",
    "ApiKey",
    "AuditEvent",
    "Apprentice",
    "ApprenticeWant",
    "Base",
    "Craftsman",
    "CraftsmanSkill",
    "LOCALES",
    "MatchRun",
    "Mentorship",
    "Proposal",
    "RateLimitWindow",
    "RejectedPair",
    "SignInThrottle",
    "WebSession",
    "Reminder",
    "TrainingSummary",
    "UnmatchedApprentice",
    "ROLES",
    "Skill",
    "SkillAlias",
    "Unit",
    "User",
]
