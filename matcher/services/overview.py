"""What a coordinator's overview page shows: units and their people, mentorships, overdue pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Integer, func, or_, select
from sqlalchemy.orm import Session, aliased

from matcher.models import (
    MENTORSHIP_ACTIVE,
    Alliance,
    Apprentice,
    Craftsman,
    MatchRun,
    Mentorship,
    Proposal,
    Unit,
)
from matcher.services.access import COORDINATOR, Principal
from matcher.services.mentorships import mentorships_query, overdue_periods
from matcher.services.offers import offer_counts


@dataclass(frozen=True)
class UnitRow:
    """A member unit with its head counts."""

    unit: Unit
    craftsmen: int
    apprentices: int
    active_people: int
    active_mentorships: int


@dataclass(frozen=True)
class OverduePair:
    """An active mentorship with summaries past their due date."""

    mentorship: Mentorship
    overdue_periods: int


@dataclass(frozen=True)
class RunRow:
    """A match run and how many pairs it proposed."""

    run: MatchRun
    proposals: int


@dataclass(frozen=True)
class Overview:
    """The alliance at a glance."""

    units: list[UnitRow]
    active_mentorships: int
    overdue: list[OverduePair]
    overdue_total: int
    runs: list[RunRow]
    offers: dict[str, int] = field(default_factory=dict)  # the alliance's offers by status

    @property
    def craftsmen(self) -> int:
        """Craftsmen of every unit."""
        return sum(row.craftsmen for row in self.units)

    @property
    def apprentices(self) -> int:
        """Apprentices of every unit."""
        return sum(row.apprentices for row in self.units)


def _people_counts(
    session: Session, model: type[Craftsman] | type[Apprentice], alliance_id: int
) -> dict[int, tuple[int, int]]:
    """unit id -> (people, active people), in one grouped query."""
    rows = session.execute(
        select(model.unit_id, func.count(), func.sum(model.active.cast(Integer)))
        .join(Unit, model.unit_id == Unit.id)
        .where(Unit.alliance_id == alliance_id)
        .group_by(model.unit_id)
    ).all()
    return {unit_id: (total, int(active or 0)) for unit_id, total, active in rows}


def alliance_overview(
    session: Session,
    *,
    alliance: Alliance,
    today: date,
    overdue_limit: int = 50,
    runs_limit: int = 10,
) -> Overview:
    """Units with head counts, active and overdue mentorships, and the latest match runs."""
    units = list(
        session.scalars(select(Unit).where(Unit.alliance_id == alliance.id).order_by(Unit.code))
    )
    craftsmen = _people_counts(session, Craftsman, alliance.id)
    apprentices = _people_counts(session, Apprentice, alliance.id)
    mentor, learner = aliased(Craftsman), aliased(Apprentice)
    # A mentorship counts for both of its units (they are always two different ones).
    per_unit = dict(
        session.execute(
            select(Unit.id, func.count(Mentorship.id.distinct()))
            .select_from(Mentorship)
            .join(mentor, Mentorship.craftsman_id == mentor.id)
            .join(learner, Mentorship.apprentice_id == learner.id)
            .join(Unit, or_(Unit.id == mentor.unit_id, Unit.id == learner.unit_id))
            .where(Mentorship.alliance_id == alliance.id, Mentorship.status == MENTORSHIP_ACTIVE)
            .group_by(Unit.id)
        ).all()
    )
    rows = [
        UnitRow(
            unit=unit,
            craftsmen=craftsmen.get(unit.id, (0, 0))[0],
            apprentices=apprentices.get(unit.id, (0, 0))[0],
            active_people=craftsmen.get(unit.id, (0, 0))[1] + apprentices.get(unit.id, (0, 0))[1],
            active_mentorships=per_unit.get(unit.id, 0),
        )
        for unit in units
    ]
    active = session.scalar(
        select(func.count())
        .select_from(Mentorship)
        .where(Mentorship.alliance_id == alliance.id, Mentorship.status == MENTORSHIP_ACTIVE)
    )
    coordinator = Principal(role=COORDINATOR, alliance_id=alliance.id)
    overdue_stmt = mentorships_query(coordinator, overdue_on=today)
    overdue_total = session.scalar(
        select(func.count()).select_from(overdue_stmt.order_by(None).subquery())
    )
    overdue = [
        OverduePair(mentorship=m, overdue_periods=overdue_periods(m, today))
        for m in session.scalars(
            overdue_stmt.order_by(None)
            .order_by(Mentorship.next_due_on, Mentorship.id)
            .limit(overdue_limit)
        )
    ]
    latest = list(
        session.scalars(
            select(MatchRun)
            .where(MatchRun.alliance_id == alliance.id)
            .order_by(MatchRun.id.desc())
            .limit(runs_limit)
        )
    )
    counts = dict(
        session.execute(
            select(Proposal.match_run_id, func.count())
            .where(Proposal.match_run_id.in_([run.id for run in latest]))
            .group_by(Proposal.match_run_id)
        ).all()
    )
    runs = [RunRow(run=run, proposals=counts.get(run.id, 0)) for run in latest]
    return Overview(
        units=rows,
        active_mentorships=active or 0,
        overdue=overdue,
        overdue_total=overdue_total or 0,
        runs=runs,
        offers=offer_counts(session, alliance_id=alliance.id),
    )
