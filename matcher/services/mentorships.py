"""Mentorships (师徒关系) and their training-summary cycle (reminders.md, "Periods").

A mentorship started on day S with cadence E has periods k = 1, 2, ...; period k is due on S + k*E.
Each summary fills the oldest open period. The service keeps ``periods_filled`` and ``next_due_on``
on the row so that reminders and overdue lists are single indexed queries.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Row, Select, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from matcher.db import utcnow
from matcher.errors import Conflict, not_found
from matcher.models import (
    MENTORSHIP_ACTIVE,
    MENTORSHIP_ENDED,
    Alliance,
    Apprentice,
    Craftsman,
    Mentorship,
    Skill,
    TrainingSummary,
)
from matcher.services import access
from matcher.services.access import Principal, withheld_across_units
from matcher.services.people import LEARNER, MENTOR, PAIR_COLUMNS, pair_refs
from matcher.services.skills import resolve_skill_keys
from matcher.services.webhooks import emit_about_mentorship
from matcher.text import skill_display, skill_key


def local_today(timezone: str, now: datetime | None = None) -> date:
    """The calendar date in ``timezone`` at ``now`` (default: the current time): the one rule
    for "today" of an alliance (its ``timezone``), by which pairs start, end and fall due."""
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def alliance_today(session: Session, alliance_id: int, now: datetime | None = None) -> date:
    """:func:`local_today` of the alliance with this id."""
    alliance = session.get(Alliance, alliance_id)
    if alliance is None:
        raise not_found("alliance", alliance_id)
    return local_today(alliance.timezone, now)


def due_on(mentorship: Mentorship, period: int) -> date:
    """The due date of ``period`` (1-based)."""
    return mentorship.started_on + timedelta(days=period * mentorship.summary_every_days)


def overdue_periods(mentorship: Mentorship | Row[Any], today: date) -> int:
    """Open periods whose due date has passed (0 once ended: ending stops the cycle)."""
    if mentorship.status != MENTORSHIP_ACTIVE or today <= mentorship.started_on:
        return 0
    past_due = (today - mentorship.started_on).days - 1
    due_before_today = past_due // mentorship.summary_every_days
    return max(0, due_before_today - mentorship.periods_filled)


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months; the 31st of a shorter month is its last day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def mid_term(started_on: date, ends_on: date) -> date:
    """The middle of an agreed term (when the pair is asked for its second check-in)."""
    return started_on + (ends_on - started_on) / 2


def create_mentorship(
    session: Session,
    *,
    craftsman: Craftsman,
    apprentice: Apprentice,
    started_on: date,
    summary_every_days: int | None = None,
    proposal_id: int | None = None,
) -> Mentorship:
    """A new active mentorship; the cadence defaults to the alliance's, the agreement runs for
    the alliance's ``agreement_months``, and its goals are the apprentice's wants."""
    alliance = session.get_one(Alliance, craftsman.unit.alliance_id)
    if summary_every_days is None:
        summary_every_days = alliance.summary_every_days
    ends_on = add_months(started_on, alliance.agreement_months)
    goals: list[dict[str, object]] = [
        {"skill": want.skill.name, "level": want.level} for want in apprentice.wants
    ]
    mentorship = Mentorship(
        alliance_id=craftsman.unit.alliance_id,
        craftsman_id=craftsman.id,
        apprentice_id=apprentice.id,
        proposal_id=proposal_id,
        started_on=started_on,
        summary_every_days=summary_every_days,
        status=MENTORSHIP_ACTIVE,
        periods_filled=0,
        next_due_on=started_on + timedelta(days=summary_every_days),
        ends_on=ends_on,
        mid_term_on=mid_term(started_on, ends_on),
        goals=goals,
        flagged=False,
    )
    session.add(mentorship)
    session.flush()
    emit_about_mentorship(session, "mentorship.created", mentorship)
    return mentorship


def mentorships_query(
    principal: Principal,
    *,
    status: str | None = None,
    unit_id: int | None = None,
    alliance_id: int | None = None,
    overdue_on: date | None = None,
) -> Select[Mentorship]:
    """The caller's mentorships, filtered; ``overdue_on``: only those with a period due before."""
    stmt = (
        select(Mentorship)
        .join(MENTOR, Mentorship.craftsman_id == MENTOR.id)
        .join(LEARNER, Mentorship.apprentice_id == LEARNER.id)
        .options(selectinload(Mentorship.craftsman), selectinload(Mentorship.apprentice))
        .order_by(Mentorship.id)
    )
    stmt = access.where_visible(
        stmt,
        principal,
        alliance_id=Mentorship.alliance_id,
        unit_ids=(MENTOR.unit_id, LEARNER.unit_id),
    )
    # Named parameters: mentorship_list binds them on a statement built once.
    if alliance_id is not None:
        stmt = stmt.where(Mentorship.alliance_id == bindparam("filter_alliance_id", alliance_id))
    if status is not None:
        stmt = stmt.where(Mentorship.status == bindparam("filter_status", status))
    if unit_id is not None:
        unit: BindParameter[int] = bindparam("filter_unit_id", unit_id)
        stmt = stmt.where(or_(MENTOR.unit_id == unit, LEARNER.unit_id == unit))
    if overdue_on is not None:
        stmt = stmt.where(
            Mentorship.status == MENTORSHIP_ACTIVE,
            Mentorship.next_due_on < bindparam("overdue_on", overdue_on),
        )
    return stmt


def mentorship_list(
    principal: Principal,
    *,
    status: str | None = None,
    unit_id: int | None = None,
    alliance_id: int | None = None,
    overdue_on: date | None = None,
) -> tuple[Select[Any], dict[str, Any]]:
    """:func:`mentorship_rows` of :func:`mentorships_query`, and the parameters to run it with:
    the statement is built once per shape of caller and filters, a request binds values only."""
    stmt = _mentorship_list(
        access.scope_shape(principal),
        status is not None,
        unit_id is not None,
        alliance_id is not None,
        overdue_on is not None,
    )
    params = {
        **access.scope_params(principal),
        "filter_status": status,
        "filter_unit_id": unit_id,
        "filter_alliance_id": alliance_id,
        "overdue_on": overdue_on,
    }
    return stmt, params


@functools.cache
def _mentorship_list(
    shape: Principal, by_status: bool, by_unit: bool, by_alliance: bool, by_overdue: bool
) -> Select[Any]:
    # Placeholder values, replaced by mentorship_list's parameters at every execution.
    return mentorship_rows(
        mentorships_query(
            shape,
            status="" if by_status else None,
            unit_id=0 if by_unit else None,
            alliance_id=0 if by_alliance else None,
            overdue_on=date.min if by_overdue else None,
        )
    )


def mentorship_rows(stmt: Select[Mentorship]) -> Select[Any]:
    """A :func:`mentorships_query` as plain rows: the pair, both people's names and units, and
    the alliance's timezone (its local date decides what is overdue)."""
    return stmt.join(Alliance, Alliance.id == Mentorship.alliance_id).with_only_columns(
        *Mentorship.__table__.c,
        *PAIR_COLUMNS,
        MENTOR.cross_unit_consent_at.label("craftsman_consent_at"),
        LEARNER.cross_unit_consent_at.label("apprentice_consent_at"),
        Alliance.consent_required.label("consent_required"),
        Alliance.timezone.label("timezone"),
    )


def mentorship_items(
    rows: Sequence[Row[Any]], principal: Principal, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows of :func:`mentorship_rows` as the API shows them to ``principal``, with the derived
    cycle fields; the name of a person of another unit than an hr key's is withheld where that
    person has not consented (``access.withheld_across_units``)."""
    todays: dict[str, date] = {}
    items = []
    for row in rows:
        today = todays.get(row.timezone) or todays.setdefault(
            row.timezone, local_today(row.timezone, now)
        )
        refs = pair_refs(row, row)
        for role in ("craftsman", "apprentice"):
            if withheld_across_units(
                principal,
                unit_id=refs[role]["unit_id"],
                consented=row._mapping[f"{role}_consent_at"] is not None,
                consent_required=row.consent_required,
            ):
                refs[role]["name"] = None
        items.append(
            {
                "id": row.id,
                "alliance_id": row.alliance_id,
                **refs,
                "started_on": row.started_on,
                "summary_every_days": row.summary_every_days,
                "status": row.status,
                "ended_on": row.ended_on,
                "next_due_on": row.next_due_on,
                "periods_filled": row.periods_filled,
                "overdue_periods": overdue_periods(row, today),
                "last_summary_at": row.last_summary_at,
                "proposal_id": row.proposal_id,
                "ends_on": row.ends_on,
                "goals": row.goals,
                "flagged": row.flagged,
                "end_reason": row.end_reason,
                "end_comment": row.end_comment,
                "consent_withdrawn_at": row.consent_withdrawn_at,
            }
        )
    return items


def mentorship_item(session: Session, principal: Principal, mentorship_id: int) -> dict[str, Any]:
    """One mentorship in the caller's scope as the API shows it, or 404."""
    stmt = mentorship_rows(mentorships_query(principal).where(Mentorship.id == mentorship_id))
    row = session.execute(stmt).one_or_none()
    if row is None:
        raise not_found("mentorship", mentorship_id)
    return mentorship_items([row], principal)[0]


def end_mentorship(session: Session, *, mentorship: Mentorship, today: date) -> Mentorship:
    """End a mentorship (idempotent): its summary cycle and reminders stop."""
    if mentorship.status == MENTORSHIP_ENDED:
        return mentorship
    mentorship.status = MENTORSHIP_ENDED
    mentorship.ended_on = today
    mentorship.next_due_on = None
    mentorship.updated_at = utcnow()
    session.flush()
    emit_about_mentorship(session, "mentorship.ended", mentorship)
    return mentorship


@dataclass(frozen=True)
class SummaryInput:
    """A training summary as handed in."""

    author: str
    content: str
    hours: float
    skills: list[str]


def add_summary(
    session: Session,
    *,
    mentorship: Mentorship,
    summary: SummaryInput,
    submitted_by: str,
    period: int | None = None,
) -> TrainingSummary:
    """Fill the oldest open period; ``period`` (from a signed link) must be that one or filled.

    Two hand-ins racing for one period meet the unique (mentorship, period) key: the loser gets 409.
    """
    if mentorship.status != MENTORSHIP_ACTIVE:
        raise Conflict(f"Mentorship {mentorship.id} has ended; its summary cycle stopped.")
    oldest_open = mentorship.periods_filled + 1
    if period is not None and period < oldest_open:
        raise Conflict(f"The summary of period {period} was already handed in.")
    skills = _normalised_skills(session, summary.skills, alliance_id=mentorship.alliance_id)
    row = TrainingSummary(
        mentorship_id=mentorship.id,
        period_index=oldest_open,
        author=summary.author,
        content=summary.content,
        hours=summary.hours,
        skills=skills,
        submitted_at=utcnow(),
        submitted_by=submitted_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            moved = session.execute(
                update(Mentorship)
                .where(
                    Mentorship.id == mentorship.id,
                    Mentorship.status == MENTORSHIP_ACTIVE,  # not ended meanwhile
                    Mentorship.periods_filled == mentorship.periods_filled,
                )
                .values(
                    periods_filled=oldest_open,
                    next_due_on=due_on(mentorship, oldest_open + 1),
                    last_summary_at=row.submitted_at,
                    updated_at=utcnow(),
                )
                # The loaded mentorship takes these values as they are written: no re-read
                # (a refresh also re-ran its people's loads: three statements of a hand-in's 12).
                .execution_options(synchronize_session="evaluate")
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    "Another summary was handed in, or the mentorship ended, at the same time;"
                    " reload and retry."
                )
    except IntegrityError as exc:
        raise Conflict(f"The summary of period {oldest_open} was already handed in.") from exc
    emit_about_mentorship(
        session,
        "summary.submitted",
        mentorship,
        summary_id=row.id,
        period_index=row.period_index,
        author=row.author,
        hours=row.hours,
        submitted_at=row.submitted_at.isoformat().replace("+00:00", "Z"),
    )
    return row


def _normalised_skills(session: Session, names: list[str], *, alliance_id: int) -> list[str]:
    """Skill names practised, normalised like the alliance's tags: aliases resolve, unknown
    names stay as given."""
    keys = [skill_key(name) for name in names]
    known = resolve_skill_keys(session, keys, alliance_id=alliance_id)
    canonical: dict[int, str] = (
        dict(
            session.execute(select(Skill.id, Skill.name).where(Skill.id.in_(known.values()))).all()
        )
        if known
        else {}
    )
    result: list[str] = []
    for name, key in zip(names, keys, strict=True):
        value = canonical[known[key]] if key in known else skill_display(name)
        if value and value not in result:
            result.append(value)
    return result


def summaries_query(mentorship: Mentorship) -> Select[TrainingSummary]:
    """A mentorship's summaries, oldest period first."""
    return (
        select(TrainingSummary)
        .where(TrainingSummary.mentorship_id == mentorship.id)
        .order_by(TrainingSummary.period_index)
    )
