"""The programme's emails (programme.md), queued like the summary reminders (reminders.md):
set-based ``INSERT ... SELECT`` into the same outbox, once-only through its unique keys.

- ``term_ending``: 30 and 7 days before ``ends_on``, to both people and the alliance's active
  coordinators. The key names the end date, so a renewed term is reminded of again. A job that
  ran late queues what still applies: within 7 days the 30-day notice is superseded.
- ``check_in``: after the pair's first summary (occasion 1, ``first_summary``; until the middle
  of the term) and from the middle of its term (occasion 2, ``mid_term``; until its end), to
  each of the pair who has not answered it; the email carries a signed link to the check-in
  form.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, exists, literal, select
from sqlalchemy.orm import Session, aliased

from matcher.models import (
    CHECK_IN_OCCASIONS,
    MENTORSHIP_ACTIVE,
    PROGRAMME_REMINDER_KINDS,
    REMINDER_PENDING,
    Alliance,
    Apprentice,
    CheckIn,
    Craftsman,
    Mentorship,
    User,
)
from matcher.services.mentorships import local_today
from matcher.services.reminders import _insert_new, _key, active_timezones

TERM_ENDING_DAYS = (30, 7)


def occasion_of(period_index: int | None) -> str:
    """The check-in occasion a ``check_in`` outbox row stands for (its ``period_index``)."""
    return CHECK_IN_OCCASIONS[(period_index or 1) - 1]


def _term_windows(today: date) -> list[tuple[int, ColumnElement[bool]]]:
    ends = Mentorship.ends_on
    month, week = (today + timedelta(days=d) for d in TERM_ENDING_DAYS)
    return [
        (30, and_(ends > week, ends <= month)),
        (7, and_(ends >= today, ends <= week)),
    ]


def _rows(
    *,
    kind: str,
    period: Any,
    recipient: Any,
    role: Any,
    locale: Any,
    due: Any,
    dedupe: ColumnElement[str],
    now: datetime,
) -> Select[Any]:
    return select(
        Mentorship.alliance_id,
        Mentorship.id,
        period,
        literal(kind, String),
        recipient,
        role,
        locale,
        due,
        dedupe,
        literal(REMINDER_PENDING, String),
        literal(0),
        literal(now),
        literal(now),
    ).join(Alliance, Alliance.id == Mentorship.alliance_id)


def _term_ending_sources(timezone: str, today: date, now: datetime) -> list[Select[Any]]:
    sources: list[Select[Any]] = []
    for days, window in _term_windows(today):
        where = (Mentorship.status == MENTORSHIP_ACTIVE, Alliance.timezone == timezone, window)
        for role, model, person_id in (
            ("craftsman", Craftsman, Mentorship.craftsman_id),
            ("apprentice", Apprentice, Mentorship.apprentice_id),
        ):
            person: Any = aliased(model)
            sources.append(
                _rows(
                    kind="term_ending",
                    period=literal(None),
                    recipient=person.email,
                    role=literal(role, String),
                    locale=person.locale,
                    due=Mentorship.ends_on,
                    dedupe=_key("term", Mentorship.id, Mentorship.ends_on, str(days), person.email),
                    now=now,
                )
                .join(person, person.id == person_id)
                .where(*where, person.email.is_not(None))
            )
        sources.append(
            _rows(
                kind="term_ending",
                period=literal(None),
                recipient=User.email,
                role=literal("coordinator", String),
                locale=User.locale,
                due=Mentorship.ends_on,
                dedupe=_key("term", Mentorship.id, Mentorship.ends_on, str(days), User.email),
                now=now,
            )
            .join(User, and_(User.alliance_id == Mentorship.alliance_id, User.active.is_(True)))
            .where(*where)
        )
    return sources


def _check_in_sources(timezone: str, today: date, now: datetime) -> list[Select[Any]]:
    # A later occasion supersedes an earlier one not asked for in time (a job that ran late,
    # or pairs older than the feature): the first-summary check-in is asked before mid-term
    # only, the mid-term one until the term ends.
    reached = {
        "first_summary": and_(Mentorship.periods_filled >= 1, Mentorship.mid_term_on > today),
        "mid_term": and_(Mentorship.mid_term_on <= today, Mentorship.ends_on >= today),
    }
    sources: list[Select[Any]] = []
    for number, occasion in enumerate(CHECK_IN_OCCASIONS, start=1):
        for role, model, person_id in (
            ("craftsman", Craftsman, Mentorship.craftsman_id),
            ("apprentice", Apprentice, Mentorship.apprentice_id),
        ):
            person: Any = aliased(model)
            answered = exists().where(
                CheckIn.mentorship_id == Mentorship.id,
                CheckIn.occasion == occasion,
                CheckIn.author == role,
            )
            sources.append(
                _rows(
                    kind="check_in",
                    period=literal(number),
                    recipient=person.email,
                    role=literal(role, String),
                    locale=person.locale,
                    due=literal(today),
                    dedupe=_key("check-in", Mentorship.id, occasion, person.email),
                    now=now,
                )
                .join(person, person.id == person_id)
                .where(
                    Mentorship.status == MENTORSHIP_ACTIVE,
                    Alliance.timezone == timezone,
                    reached[occasion],
                    person.email.is_not(None),
                    ~answered,
                )
            )
    return sources


def queue_programme_reminders(session: Session, *, now: datetime) -> dict[str, int]:
    """Queue the term-ending and check-in emails due at ``now`` (each alliance's local date),
    each at most once; counts by kind."""
    queued = dict.fromkeys(PROGRAMME_REMINDER_KINDS, 0)
    for timezone in active_timezones(session):
        today = local_today(timezone, now)
        for source in _term_ending_sources(timezone, today, now):
            queued["term_ending"] += _insert_new(session, source)
        for source in _check_in_sources(timezone, today, now):
            queued["check_in"] += _insert_new(session, source)
    return queued
