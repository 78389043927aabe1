"""Reminder emails (reminders.md): queued set-based, at most once, sent through a claimed outbox.

Queueing is one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per (timezone, kind, recipient
source): the database computes what is due from ``mentorships.next_due_on`` and its unique keys
make every ``(mentorship, period, kind, recipient)`` once-only, whoever runs the job and however
late. Reminders concern the oldest open period, the one the next summary fills; once it is filled
the next period's reminders follow. A job that ran late queues what still applies: an "upcoming"
notice whose due date has passed is superseded by "overdue".
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Insert,
    Select,
    String,
    and_,
    cast,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from matcher.errors import ValidationFailed
from matcher.models import (
    MENTORSHIP_ACTIVE,
    OFFER_OFFERED,
    PROGRAMME_REMINDER_KINDS,
    REMINDER_CANCELLED,
    REMINDER_FAILED,
    REMINDER_PENDING,
    REMINDER_SENT,
    Alliance,
    Apprentice,
    Craftsman,
    Mentorship,
    Offer,
    Reminder,
    Unit,
    User,
)
from matcher.services.mentorships import local_today
from matcher.services.review import audit

REMIND_DAYS_BEFORE = 3
ESCALATE_AFTER_DAYS = 14
LEASE = timedelta(minutes=5)  # a claim by a sender that died is free again after this
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
REMINDER_COLUMNS = (
    "alliance_id",
    "mentorship_id",
    "period_index",
    "kind",
    "recipient",
    "recipient_role",
    "locale",
    "due_on",
    "dedupe_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def _insert_new(session: Session, source: Select[Any]) -> int:
    """``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; how many rows were new.

    Counted through RETURNING: psycopg reports no rowcount for this statement.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt: Insert = dialect.insert(Reminder).on_conflict_do_nothing()
    inserted = session.execute(stmt.from_select(REMINDER_COLUMNS, source).returning(Reminder.id))
    return len(inserted.all())


def _key(*parts: Any) -> ColumnElement[str]:
    """A ':'-joined text built by the database (``||`` on both dialects)."""
    pieces = [literal(p, String) if isinstance(p, str) else cast(p, String) for p in parts]
    expression: ColumnElement[str] = pieces[0]
    for piece in pieces[1:]:
        expression = expression + literal(":", String) + piece
    return expression


@dataclass(frozen=True)
class Window:
    """Which open periods a kind of reminder covers on one local date."""

    kind: str
    condition: ColumnElement[bool]


def windows(today: date) -> list[Window]:
    """The windows of each kind on ``today`` (the chat groups' notices use them too)."""
    due = Mentorship.next_due_on
    return [
        Window("upcoming", and_(due >= today, due <= today + timedelta(days=REMIND_DAYS_BEFORE))),
        Window("overdue", due <= today - timedelta(days=1)),
        Window("escalation", due <= today - timedelta(days=ESCALATE_AFTER_DAYS)),
    ]


def _due_for_pair(window: Window, timezone: str, now: datetime, role: str) -> Select[Any]:
    """Rows for the craftsman or the apprentice of every mentorship in the window."""
    person: Any = aliased(Craftsman) if role == "craftsman" else aliased(Apprentice)
    person_id = Mentorship.craftsman_id if role == "craftsman" else Mentorship.apprentice_id
    return _due_select(
        window,
        timezone,
        now,
        recipient=person.email,
        recipient_role=literal(role, String),
        locale=person.locale,
        joins=[(person, person.id == person_id)],
        where=[person.email.is_not(None)],
    )


def _due_select(
    window: Window,
    timezone: str,
    now: datetime,
    *,
    recipient: Any,
    recipient_role: Any,
    locale: Any,
    joins: list[tuple[Any, Any]],
    where: list[Any],
) -> Select[Any]:
    period = Mentorship.periods_filled + 1
    stmt = select(
        Mentorship.alliance_id,
        Mentorship.id,
        period,
        literal(window.kind, String),
        recipient,
        recipient_role,
        locale,
        Mentorship.next_due_on,
        _key("m", Mentorship.id, period, window.kind, recipient),
        literal(REMINDER_PENDING, String),
        literal(0),
        literal(now),
        literal(now),
    ).join(Alliance, Alliance.id == Mentorship.alliance_id)
    for target, on in joins:
        stmt = stmt.join(target, on)
    return stmt.where(
        Mentorship.status == MENTORSHIP_ACTIVE,
        Alliance.timezone == timezone,
        window.condition,
        *where,
    )


def _escalation_sources(window: Window, timezone: str, now: datetime) -> list[Select[Any]]:
    """The alliance's coordinators and both units' contact addresses."""
    coordinators = _due_select(
        window,
        timezone,
        now,
        recipient=User.email,
        recipient_role=literal("coordinator", String),
        locale=User.locale,
        joins=[(User, and_(User.alliance_id == Mentorship.alliance_id, User.active.is_(True)))],
        where=[],
    )
    sources = [coordinators]
    for role_model, person_id in (
        (Craftsman, Mentorship.craftsman_id),
        (Apprentice, Mentorship.apprentice_id),
    ):
        person: Any = aliased(role_model)
        unit = aliased(Unit)
        sources.append(
            _due_select(
                window,
                timezone,
                now,
                recipient=unit.contact_email,
                recipient_role=literal("unit", String),
                locale=literal("zh-CN", String),
                joins=[(person, person.id == person_id), (unit, unit.id == person.unit_id)],
                where=[unit.contact_email.is_not(None)],
            )
        )
    return sources


def active_timezones(session: Session) -> Sequence[str]:
    """The timezones of the alliances with active mentorships: each has its own "today", by
    which a scan of due emails runs."""
    return session.scalars(
        select(Alliance.timezone)
        .join(Mentorship, Mentorship.alliance_id == Alliance.id)
        .where(Mentorship.status == MENTORSHIP_ACTIVE)
        .distinct()
    ).all()


def queue_reminders(session: Session, *, now: datetime) -> dict[str, int]:
    """Queue every reminder due at ``now`` (each alliance's local date); counts by kind."""
    queued = {"upcoming": 0, "overdue": 0, "escalation": 0}
    for timezone in active_timezones(session):
        today = local_today(timezone, now)
        for window in windows(today):
            if window.kind == "escalation":
                sources = _escalation_sources(window, timezone, now)
            else:
                sources = [
                    _due_for_pair(window, timezone, now, r) for r in ("craftsman", "apprentice")
                ]
            for source in sources:
                queued[window.kind] += _insert_new(session, source)
    return queued


def queue_digests(session: Session, *, now: datetime) -> int:
    """One digest per active coordinator per ISO week (of the alliance's local date)."""
    queued = 0
    for timezone in session.scalars(select(Alliance.timezone).distinct()).all():
        today = local_today(timezone, now)
        year, week, _ = today.isocalendar()
        source: Any = (
            select(
                User.alliance_id,
                literal(None).label("mentorship_id"),
                literal(None).label("period_index"),
                literal("digest", String),
                User.email,
                literal("coordinator", String),
                User.locale,
                literal(today, Date),
                _key("digest", User.alliance_id, f"{year}-W{week:02d}", User.email),
                literal(REMINDER_PENDING, String),
                literal(0),
                literal(now),
                literal(now),
            )
            .join(Alliance, Alliance.id == User.alliance_id)
            .where(User.active.is_(True), Alliance.timezone == timezone)
        )
        queued += _insert_new(session, source)
    return queued


def new_claim_token() -> str:
    """Names one claim by one sender (host, process, random)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_batch(session: Session, *, now: datetime, token: str, limit: int = 50) -> list[int]:
    """Lease up to ``limit`` sendable rows to ``token``; the caller commits the lease before
    it sends anything (until then, other senders wait on the rows, or skip them).

    PostgreSQL skips rows another sender holds (``FOR UPDATE SKIP LOCKED``); on SQLite the
    UPDATE takes the database's single write lock. Either way the UPDATE re-checks that the row is
    still free, so two senders never hold one row.
    """
    free = and_(
        Reminder.status == REMINDER_PENDING,
        Reminder.next_attempt_at <= now,
        or_(Reminder.locked_until.is_(None), Reminder.locked_until < now),
    )
    candidates = (
        select(Reminder.id)
        .where(free)
        .order_by(Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = session.scalars(candidates).all()
    if not ids:
        return []
    session.execute(
        update(Reminder)
        .where(Reminder.id.in_(ids), free)
        .values(locked_until=now + LEASE, claimed_by=token)
    )
    return list(
        session.scalars(
            select(Reminder.id)
            .where(
                Reminder.id.in_(ids),
                Reminder.claimed_by == token,
                Reminder.status == REMINDER_PENDING,
            )
            .order_by(Reminder.id)
        )
    )


def cancel_if_obsolete(session: Session, *, reminder: Reminder, token: str) -> bool:
    """A reminder whose period was filled or whose mentorship ended meanwhile is not sent, nor an
    offer's email once the offer was answered or expired (the caller commits)."""
    if reminder.offer_id is not None:
        offer_status = session.scalar(select(Offer.status).where(Offer.id == reminder.offer_id))
        if offer_status == OFFER_OFFERED:
            return False
    elif _pair_still_due(session, reminder):
        return False
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.claimed_by == token)
        .values(
            status=REMINDER_CANCELLED,
            locked_until=None,
            last_error="offer answered" if reminder.offer_id else "period filled or pair ended",
        )
    )
    return True


def _pair_still_due(session: Session, reminder: Reminder) -> bool:
    """Whether a pair's reminder still applies: its period open, its pair going on."""
    if reminder.mentorship_id is None:
        return True
    mentorship = session.get(Mentorship, reminder.mentorship_id)
    period = reminder.period_index or 0
    if reminder.kind in PROGRAMME_REMINDER_KINDS:
        # The programme's emails concern the pair, not a period: obsolete once it ended, or
        # (term_ending) once renewed to another end date.
        return (
            mentorship is not None
            and mentorship.status == MENTORSHIP_ACTIVE
            and (reminder.kind == "check_in" or mentorship.ends_on == reminder.due_on)
        )
    return (
        mentorship is not None
        and mentorship.status == MENTORSHIP_ACTIVE
        and mentorship.periods_filled < period
    )


def mark_sent(session: Session, *, reminder_id: int, token: str, now: datetime) -> None:
    """Delivered: never sent again, once the caller commits (before it sends the next one)."""
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.claimed_by == token)
        .values(
            status=REMINDER_SENT,
            sent_at=now,
            attempts=Reminder.attempts + 1,
            locked_until=None,
            last_error=None,
        )
    )


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes after each failed attempt, at most 6 hours."""
    delay: timedelta = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)
    return delay


def mark_failed_attempt(
    session: Session, *, reminder: Reminder, token: str, now: datetime, error: str, permanent: bool
) -> str:
    """A temporary failure waits longer each time; a permanent one (or too many) fails the row
    (the caller commits)."""
    attempts = reminder.attempts + 1
    status = REMINDER_FAILED if permanent or attempts >= MAX_ATTEMPTS else REMINDER_PENDING
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.claimed_by == token)
        .values(
            status=status,
            attempts=attempts,
            next_attempt_at=now + retry_delay(attempts),
            locked_until=None,
            last_error=error[:2000],
        )
    )
    return status


RETRYABLE_STATUSES = (REMINDER_FAILED,)


def retry_reminders(
    session: Session,
    *,
    status: str,
    actor: str,
    now: datetime,
    kind: str | None = None,
    mentorship_id: int | None = None,
) -> list[int]:
    """Put failed reminders back in the outbox (after the cause was fixed); their ids.

    Each row becomes pending with a fresh set of attempts, due at ``now``; each re-queue is
    audited with the status, attempts and error it had.
    """
    if status not in RETRYABLE_STATUSES:
        raise ValidationFailed(
            f"Only {', '.join(RETRYABLE_STATUSES)} reminders can be retried.",
            errors={"status": [f"One of {list(RETRYABLE_STATUSES)}."]},
        )
    stmt = select(Reminder).where(Reminder.status == status).order_by(Reminder.id)
    if kind is not None:
        stmt = stmt.where(Reminder.kind == kind)
    if mentorship_id is not None:
        stmt = stmt.where(Reminder.mentorship_id == mentorship_id)
    reminders = session.scalars(stmt.with_for_update()).all()
    for reminder in reminders:
        audit(
            session,
            alliance_id=reminder.alliance_id,
            actor=actor,
            action="reminder.retry",
            object_type="reminder",
            object_id=reminder.id,
            data={
                "status": reminder.status,
                "attempts": reminder.attempts,
                "last_error": reminder.last_error,
            },
        )
        reminder.status = REMINDER_PENDING
        reminder.attempts = 0
        reminder.next_attempt_at = now
        reminder.locked_until = None
        reminder.claimed_by = None
    session.flush()
    return [reminder.id for reminder in reminders]
