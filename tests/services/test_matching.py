"""Match runs through the service: rows in, proposals and reasons out, on both databases."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.db import utcnow
from matcher.models import (
    RUN_PROPOSED,
    Alliance,
    Apprentice,
    MatchRun,
    Mentorship,
    Proposal,
    RejectedPair,
    Unit,
    UnmatchedApprentice,
)
from matcher.services.matching import (
    create_match_run,
    estimate_cells,
    execute_match_run,
    load_problem,
    start_match_run,
)
from matcher.services.mentorships import local_today
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories


def _alliance(session: Session) -> tuple[Alliance, list[Unit]]:
    alliance = factories.alliance(session, "EMCA")
    factories.skills(session, alliance)
    units = [
        factories.unit(session, alliance, "U1", region="杭州"),
        factories.unit(session, alliance, "U2", region="湘潭"),
        factories.unit(session, alliance, "U3", region="杭州"),
    ]
    return alliance, units


def _craftsman(
    session: Session,
    unit: Unit,
    ext: str,
    skills: list[tuple[str, int]],
    capacity: int = 1,
    region: str | None = None,
) -> int:
    item = factories.craftsman_item(
        ext,
        skills=[{"name": n, "level": lv} for n, lv in skills],
        capacity=capacity,
        region=region or unit.region,
    )
    return upsert_people(session, kind=CRAFTSMAN, unit=unit, items=[item]).ids[0]


def _apprentice(
    session: Session, unit: Unit, ext: str, wants: list[tuple[str, int]], region: str | None = None
) -> int:
    item = factories.apprentice_item(
        ext,
        wants=[{"name": n, "level": lv, "weight": 1.0} for n, lv in wants],
        region=region or unit.region,
    )
    return upsert_people(session, kind=APPRENTICE, unit=unit, items=[item]).ids[0]


def _run(session: Session, alliance: Alliance, **params: Any) -> MatchRun:
    run = create_match_run(
        session, alliance=alliance, params=MatchParams.from_json(params), created_by="test"
    )
    execute_match_run(session, run=run)
    session.commit()
    return run


def _pairs(session: Session, run: MatchRun) -> set[tuple[int, int]]:
    return {
        (p.craftsman_id, p.apprentice_id)
        for p in session.scalars(select(Proposal).where(Proposal.match_run_id == run.id))
    }


def _reasons(session: Session, run: MatchRun) -> dict[int, UnmatchedApprentice]:
    return {
        u.apprentice_id: u
        for u in session.scalars(
            select(UnmatchedApprentice).where(UnmatchedApprentice.match_run_id == run.id)
        )
    }


def test_a_run_pairs_across_units_and_explains_every_pair(session: Session) -> None:
    alliance, (u1, u2, u3) = _alliance(session)
    welder = _craftsman(session, u1, "C1", [("氩弧焊", 5), ("数控车削", 3)])
    turner = _craftsman(session, u2, "C2", [("数控车削", 5)])
    a_weld = _apprentice(session, u2, "A1", [("氩弧焊", 4)])
    a_turn = _apprentice(session, u1, "A2", [("数控车削", 4)])
    a_own_unit_only = _apprentice(session, u1, "A3", [("氩弧焊", 4)])  # only welder, same unit
    session.commit()

    run = _run(session, alliance)
    assert run.status == "proposed"
    assert _pairs(session, run) == {(welder, a_weld), (turner, a_turn)}
    proposal = session.scalars(select(Proposal).where(Proposal.apprentice_id == a_weld)).one()
    assert proposal.fit == pytest.approx(1.0)
    assert proposal.explanation == [
        {
            "skill": "氩弧焊",
            "wanted_level": 4,
            "weight": 1.0,
            "craftsman_skill": "氩弧焊",
            "craftsman_level": 5,
            "credit": pytest.approx(1.0),
        }
    ]
    unmatched = _reasons(session, run)
    assert set(unmatched) == {a_own_unit_only}
    assert unmatched[a_own_unit_only].reason_code == "no_eligible_craftsman"
    assert run.objective == pytest.approx(sum(p.score for p in session.scalars(select(Proposal))))
    assert run.stats["matched"] == 2 and run.stats["unmatched"] == 1 and run.stats["method"]


def test_capacity_exhausted_names_the_craftsmen_whose_slots_went_elsewhere(
    session: Session,
) -> None:
    alliance, (u1, u2, _) = _alliance(session)
    master = _craftsman(session, u1, "C1", [("氩弧焊", 5)], capacity=1)
    best = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    second = _apprentice(session, u2, "A2", [("焊接", 3)])  # related credit only
    session.commit()
    run = _run(session, alliance)
    assert _pairs(session, run) == {(master, best)}
    reason = _reasons(session, run)[second]
    assert reason.reason_code == "capacity_exhausted"
    assert reason.detail["craftsman_ids"] == [master]


def test_active_mentorships_use_up_capacity_and_mentored_apprentices_wait(session: Session) -> None:
    alliance, (u1, u2, _) = _alliance(session)
    master = _craftsman(session, u1, "C1", [("氩弧焊", 5)], capacity=2)
    mentored = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    waiting = _apprentice(session, u2, "A2", [("氩弧焊", 3)])
    third = _apprentice(session, u2, "A3", [("氩弧焊", 3)])
    session.add(
        Mentorship(
            alliance_id=alliance.id,
            craftsman_id=master,
            apprentice_id=mentored,
            started_on=date(2026, 1, 1),
            summary_every_days=30,
            ends_on=date(2027, 1, 1),
            mid_term_on=date(2026, 7, 2),
        )
    )
    session.commit()
    run = _run(session, alliance)
    pairs = _pairs(session, run)
    assert len(pairs) == 1 and next(iter(pairs))[1] in {waiting, third}
    assert mentored not in _reasons(session, run)  # not considered at all
    assert run.stats["apprentices"] == 2

    with_mentored = _run(session, alliance, include_mentored=True)
    assert with_mentored.stats["apprentices"] == 3


def test_rejected_and_excluded_pairs_are_never_proposed(session: Session) -> None:
    alliance, (u1, u2, _) = _alliance(session)
    master = _craftsman(session, u1, "C1", [("氩弧焊", 5)])
    other = _craftsman(session, u1, "C2", [("氩弧焊", 4)])
    apprentice = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    session.add(RejectedPair(craftsman_id=master, apprentice_id=apprentice))
    session.commit()
    assert _pairs(session, _run(session, alliance)) == {(other, apprentice)}
    run = _run(session, alliance, excluded=[[other, apprentice]])
    assert _pairs(session, run) == set()
    assert _reasons(session, run)[apprentice].reason_code == "excluded"


def test_pinned_pairs_are_kept_and_impossible_pins_fail_the_run_clearly(session: Session) -> None:
    alliance, (u1, u2, _) = _alliance(session)
    welder = _craftsman(session, u1, "C1", [("氩弧焊", 5)])
    turner = _craftsman(session, u1, "C2", [("数控车削", 5)])
    apprentice = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    same_unit = _apprentice(session, u1, "A2", [("氩弧焊", 3)])
    session.commit()
    pinned = _run(session, alliance, pinned=[[turner, apprentice]])  # fit 0, kept anyway
    assert _pairs(session, pinned) == {(turner, apprentice)}
    failed = _run(session, alliance, pinned=[[welder, same_unit]])
    assert failed.status == "failed"
    assert str(welder) in (failed.error or "") and str(same_unit) in (failed.error or "")


def test_unit_subset_and_region_bonus(session: Session) -> None:
    alliance, (u1, u2, u3) = _alliance(session)
    far = _craftsman(session, u2, "C1", [("氩弧焊", 5)])  # 湘潭
    near = _craftsman(session, u3, "C2", [("氩弧焊", 5)])  # 杭州, same region as the apprentice
    apprentice = _apprentice(session, u1, "A1", [("氩弧焊", 3)])
    session.commit()
    run = _run(session, alliance)
    assert _pairs(session, run) == {(near, apprentice)}
    assert session.scalars(
        select(Proposal.score).where(Proposal.match_run_id == run.id)
    ).one() == pytest.approx(1.05)
    subset = _run(session, alliance, unit_ids=[u1.id, u2.id])
    assert _pairs(session, subset) == {(far, apprentice)}


def test_same_data_gives_the_same_pairs_whatever_the_insertion_order(session: Session) -> None:
    alliance, units = _alliance(session)
    rng = random.Random(11)
    skills = ["氩弧焊", "钎焊", "数控车削", "数控铣削", "电机绕组嵌线"]
    people = [
        ("C", i, rng.choice(units), rng.sample(skills, 2), rng.randint(1, 2)) for i in range(8)
    ]
    people += [("A", i, rng.choice(units), rng.sample(skills, 2), 0) for i in range(20)]
    results = []
    for attempt in range(2):
        order = people[:] if attempt == 0 else list(reversed(people))
        for kind, i, unit, names, capacity in order:
            if kind == "C":
                _craftsman(session, unit, f"C{i}", [(n, 4) for n in names], capacity=capacity)
            else:
                _apprentice(session, unit, f"A{i}", [(n, 3) for n in names])
        session.commit()
        run = _run(session, alliance)
        ids = {
            p.id: (p.craftsman.external_id, p.apprentice.external_id)
            for p in session.scalars(select(Proposal).where(Proposal.match_run_id == run.id))
        }
        results.append((sorted(ids.values()), run.objective))
        for model in (Proposal, UnmatchedApprentice, MatchRun):
            for row in session.scalars(select(model)):
                session.delete(row)
        from matcher.models import Apprentice, Craftsman

        for model in (Craftsman, Apprentice):
            for row in session.scalars(select(model)):
                session.delete(row)
        session.commit()
    assert results[0] == results[1]


def test_the_size_estimate_counts_the_slots_and_apprentices_the_solver_gets(
    session: Session,
) -> None:
    """Active mentorships use up slots, and mentored apprentices or those without wanted skills
    take no part, for the estimate as for the solver (the estimate used to count every slot of
    every active craftsman and every active apprentice: 4 × 4 here)."""
    alliance, (u1, u2, _) = _alliance(session)
    master = _craftsman(session, u1, "C1", [("氩弧焊", 5)], capacity=3)
    full = _craftsman(session, u1, "C2", [("氩弧焊", 5)], capacity=1)
    mentored = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    _apprentice(session, u2, "A2", [("氩弧焊", 3)])
    _apprentice(session, u2, "A3", [])
    also_mentored = _apprentice(session, u2, "A4", [("氩弧焊", 3)])
    for craftsman, apprentice in ((master, mentored), (full, also_mentored)):
        session.add(
            Mentorship(
                alliance_id=alliance.id,
                craftsman_id=craftsman,
                apprentice_id=apprentice,
                started_on=date(2026, 1, 1),
                summary_every_days=30,
                ends_on=date(2027, 1, 1),
                mid_term_on=date(2026, 7, 2),
            )
        )
    session.commit()
    for params, cells in ((MatchParams(), 2 * 1), (MatchParams(include_mentored=True), 2 * 3)):
        loaded = load_problem(session, alliance=alliance, params=params)
        solver_cells = int(loaded.problem.craftsman_free.sum()) * loaded.problem.n_apprentices
        assert estimate_cells(session, alliance=alliance, params=params) == solver_cells == cells

    # So a run this small is solved at once rather than queued.
    run = start_match_run(
        session, alliance=alliance, params=MatchParams(), created_by="test", inline_max_cells=2
    )
    assert run.status == RUN_PROPOSED


def test_the_waiting_bonus_favours_who_waited_longest_since_created_or_last_pair(
    session: Session,
) -> None:
    alliance, (u1, u2, _) = _alliance(session)
    master = _craftsman(session, u1, "C1", [("氩弧焊", 5)], capacity=1)
    # Same wants, same region: only how long each has waited tells them apart.
    newcomer = _apprentice(session, u2, "A1", [("氩弧焊", 3)])
    veteran = _apprentice(session, u2, "A2", [("氩弧焊", 3)])
    returning = _apprentice(session, u2, "A3", [("氩弧焊", 3)])
    today = local_today(alliance.timezone)
    people = {a.id: a for a in session.scalars(select(Apprentice))}
    people[newcomer].created_at = utcnow() - timedelta(days=10)
    people[veteran].created_at = utcnow() - timedelta(days=90)
    # Created long ago, but their last pair ended 30 days ago: they have waited 30 days.
    people[returning].created_at = utcnow() - timedelta(days=400)
    other = _craftsman(session, u1, "C0", [("焊接", 1)], capacity=1)
    session.add(
        Mentorship(
            alliance_id=alliance.id,
            craftsman_id=other,
            apprentice_id=returning,
            started_on=today - timedelta(days=300),
            summary_every_days=30,
            ends_on=today + timedelta(days=65),
            mid_term_on=today - timedelta(days=120),
            status="ended",
            ended_on=today - timedelta(days=30),
        )
    )
    session.commit()
    loaded = load_problem(session, alliance=alliance, params=MatchParams())
    waited = dict(
        zip(loaded.apprentice_ids.tolist(), loaded.problem.apprentice_waited_days, strict=True)
    )
    assert (waited[newcomer], waited[veteran], waited[returning]) == (10, 90, 30)

    run = _run(session, alliance, waiting_bonus=0.2)
    assert _pairs(session, run) == {(master, veteran)}
    score = session.scalars(select(Proposal.score).where(Proposal.match_run_id == run.id)).one()
    assert score == pytest.approx(1.0 + 0.2 * 90 / 180)  # fit and waiting (regions differ)
    # Without the bonus the three tie on score: the veteran has no claim of their own.
    plain = _run(session, alliance)
    assert session.scalars(
        select(Proposal.score).where(Proposal.match_run_id == plain.id)
    ).one() == pytest.approx(1.0)
