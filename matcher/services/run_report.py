"""A match run as the coordinator's pages start and show it: sorted proposals, swap candidates,
the unmatched, and the numbers behind the charts."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from sqlalchemy import Row, Select, Subquery, Text, bindparam, cast, func, select
from sqlalchemy.orm import Session, aliased, selectinload

from matcher.algorithms import MatchParams
from matcher.algorithms.eligibility import other_unit
from matcher.algorithms.scoring import wants_covered
from matcher.models import (
    PROPOSAL_STATUSES,
    Alliance,
    Apprentice,
    ApprenticePreference,
    Craftsman,
    CraftsmanSkill,
    MatchRun,
    Proposal,
    Unit,
    UnmatchedApprentice,
)
from matcher.pagination import page_count, page_offset
from matcher.services.capacity import available_on, free_slots
from matcher.services.matching import Taxonomy, load_taxonomy
from matcher.services.mentorships import local_today
from matcher.services.people import LEARNER, MENTOR, PAIR_COLUMNS, pair_refs, person_ref

SORTS = ("score", "unit")
MAX_CANDIDATES = 20  # per row: a longer select is no help to a person choosing


@dataclass(frozen=True)
class ProposalPage:
    """One page of a run's proposals."""

    proposals: list[Proposal]
    total: int
    page: int
    pages: int


def proposals_page(
    session: Session, *, run: MatchRun, sort: str = "score", page: int = 1, page_size: int = 100
) -> ProposalPage:
    """Best score first, or by the craftsman's then the apprentice's unit (code), then score."""
    mentor, learner = aliased(Craftsman), aliased(Apprentice)
    mentor_unit, learner_unit = aliased(Unit), aliased(Unit)
    order: list[Any] = [Proposal.score.desc(), Proposal.id]
    if sort == "unit":
        order = [mentor_unit.code, learner_unit.code, *order]
    total = (
        session.scalar(
            select(func.count()).select_from(Proposal).where(Proposal.match_run_id == run.id)
        )
        or 0
    )
    pages = page_count(total, page_size)
    page = min(max(1, page), pages)
    proposals = list(
        session.scalars(
            select(Proposal)
            .join(mentor, Proposal.craftsman_id == mentor.id)
            .join(mentor_unit, mentor.unit_id == mentor_unit.id)
            .join(learner, Proposal.apprentice_id == learner.id)
            .join(learner_unit, learner.unit_id == learner_unit.id)
            .where(Proposal.match_run_id == run.id)
            .options(
                selectinload(Proposal.craftsman).selectinload(Craftsman.unit),
                selectinload(Proposal.apprentice).selectinload(Apprentice.wants),
                selectinload(Proposal.apprentice).selectinload(Apprentice.unit),
            )
            .order_by(*order)
            .limit(page_size)
            .offset(page_offset(page, page_size))
        )
    )
    return ProposalPage(proposals=proposals, total=total, page=page, pages=pages)


def proposals_query(
    *, run_id: int, status: str | None = None
) -> tuple[Select[Any], dict[str, Any]]:
    """A run's proposals, best score first, as narrow rows with the run's alliance
    (``run_alliance_id``, so that a page answers its own scope question): a page is counted and
    cut without the explanations and names, which :func:`with_proposal_details` adds for that
    page only (a window count over the wide rows cost SQLite three times as much).

    Built once per filter (as :func:`matcher.services.people.people_query`): the statement and
    its parameters, ``run_id`` and, with ``status``, ``status``.
    """
    params: dict[str, Any] = {"run_id": run_id}
    if status is not None:
        params["status"] = status
    return _proposals_query(status is not None), params


# What a listed proposal shows of its own row (the explanation comes with the page only).
_LISTED_COLUMNS = (
    "id",
    "match_run_id",
    "craftsman_id",
    "apprentice_id",
    "score",
    "fit",
    "preference_rank",
    "status",
    "comment",
)


@functools.cache
def _proposals_query(by_status: bool) -> Select[Any]:
    proposals, runs = Proposal.__table__, MatchRun.__table__
    stmt = (
        select(
            *(proposals.c[name] for name in _LISTED_COLUMNS),
            runs.c.alliance_id.label("run_alliance_id"),
        )
        .join(runs, runs.c.id == proposals.c.match_run_id)
        .where(proposals.c.match_run_id == bindparam("run_id"))
        .order_by(proposals.c.score.desc(), proposals.c.id)
    )
    return stmt.where(proposals.c.status == bindparam("status")) if by_status else stmt


def with_proposal_details(page: Subquery) -> Select[Any]:
    """Rows of :func:`proposals_query` (``page``, a subquery of them) with each proposal's
    explanation as its stored JSON text (``explanation_json``) and both people's names and
    units, in the same order."""
    proposals = Proposal.__table__
    return (
        select(page, cast(proposals.c.explanation, Text).label("explanation_json"), *PAIR_COLUMNS)
        .join_from(page, proposals, proposals.c.id == page.c.id)
        .join(MENTOR, MENTOR.id == page.c.craftsman_id)
        .join(LEARNER, LEARNER.id == page.c.apprentice_id)
        .order_by(page.c.score.desc(), page.c.id)
    )


def proposal_items(rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`with_proposal_details` as the API shows them.

    The explanation goes out as it is stored (``orjson.Fragment``: JSON text written as is):
    decoding it and encoding it again cost a tenth of a page (``bench/request_path.py``).
    """
    return [
        {
            "id": row.id,
            "match_run_id": row.match_run_id,
            **pair_refs(row, row),
            "score": row.score,
            "fit": row.fit,
            "explanation": orjson.Fragment(row.explanation_json),
            "preference_rank": row.preference_rank,
            "status": row.status,
            "comment": row.comment,
        }
        for row in rows
    ]


def unmatched_query(*, run_id: int) -> Select[Any]:
    """The apprentices a run left unmatched, as plain rows with their names and units."""
    return (
        select(
            UnmatchedApprentice.apprentice_id,
            UnmatchedApprentice.reason_code,
            UnmatchedApprentice.detail,
            LEARNER.name.label("apprentice_name"),
            LEARNER.unit_id.label("apprentice_unit_id"),
        )
        .join(LEARNER, UnmatchedApprentice.apprentice_id == LEARNER.id)
        .where(UnmatchedApprentice.match_run_id == run_id)
        .order_by(UnmatchedApprentice.apprentice_id)
    )


def unmatched_items(rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`unmatched_query` as the API shows them."""
    return [
        {
            "apprentice": person_ref(
                row.apprentice_id, row.apprentice_name, row.apprentice_unit_id
            ),
            "reason_code": row.reason_code,
            "detail": row.detail,
        }
        for row in rows
    ]


def status_counts(session: Session, *, run: MatchRun) -> dict[str, int]:
    """How many proposals are pending, approved, rejected."""
    counts = dict(
        session.execute(
            select(Proposal.status, func.count())
            .where(Proposal.match_run_id == run.id)
            .group_by(Proposal.status)
        ).all()
    )
    return {status: counts.get(status, 0) for status in PROPOSAL_STATUSES}


@dataclass(frozen=True)
class Candidate:
    """A craftsman a proposal may be swapped to."""

    id: int
    name: str
    unit_id: int
    unit_name: str
    free: int
    skill_ids: frozenset[int]


def swap_candidates(
    session: Session, *, run: MatchRun, proposals: list[Proposal]
) -> dict[int, list[Candidate]]:
    """proposal id -> craftsmen worth offering: of another unit, available today, with a free
    slot in this run, not on the apprentice's avoid list, knowing a wanted skill or a related
    one, most wanted skills covered first.

    Only a shortlist: ``review.swap`` re-checks every hard constraint of the choice.
    """
    free = free_slots(run_id=run.id)
    rows = session.execute(
        select(Craftsman.id, Craftsman.name, Craftsman.unit_id, Unit.name, free)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(
            Unit.alliance_id == run.alliance_id,
            Craftsman.active.is_(True),
            available_on(local_today(session.get_one(Alliance, run.alliance_id).timezone)),
            free > 0,
        )
        .order_by(Unit.code, Craftsman.external_id)
    ).all()
    avoided: dict[int, set[int]] = {}  # apprentice id -> craftsmen it avoids
    for apprentice_id, craftsman_id in session.execute(
        select(ApprenticePreference.apprentice_id, ApprenticePreference.craftsman_id).where(
            ApprenticePreference.apprentice_id.in_({p.apprentice_id for p in proposals}),
            ApprenticePreference.rank.is_(None),
        )
    ):
        avoided.setdefault(apprentice_id, set()).add(craftsman_id)
    skills: dict[int, set[int]] = {}
    for craftsman_id, skill_id in session.execute(
        select(CraftsmanSkill.craftsman_id, CraftsmanSkill.skill_id).where(
            CraftsmanSkill.craftsman_id.in_([row[0] for row in rows])
        )
    ):
        skills.setdefault(craftsman_id, set()).add(skill_id)
    candidates = [
        Candidate(id, name, unit_id, unit_name, int(n), frozenset(skills.get(id, ())))
        for id, name, unit_id, unit_name, n in rows
    ]
    # Wanted skills covered, by the matcher's own related-skill rule: (proposals, candidates).
    taxonomy = load_taxonomy(session, [run.alliance_id])
    covered = wants_covered(
        _incidence([c.skill_ids for c in candidates], taxonomy),
        _incidence([{w.skill_id for w in p.apprentice.wants} for p in proposals], taxonomy),
        taxonomy.skill_parent,
    )
    unit = np.array([c.unit_id for c in candidates], dtype=np.int64)
    ids = np.array([c.id for c in candidates], dtype=np.int64)
    shortlists: dict[int, list[Candidate]] = {}
    for i, proposal in enumerate(proposals):
        offered = other_unit(unit, proposal.apprentice.unit_id) & (ids != proposal.craftsman_id)
        if proposal.apprentice_id in avoided:
            offered &= ~np.isin(ids, list(avoided[proposal.apprentice_id]))
        count = np.where(offered, covered[i], 0)
        ranked = np.argsort(-count, kind="stable")[: int(np.count_nonzero(count))]
        shortlists[proposal.id] = [candidates[j] for j in ranked[:MAX_CANDIDATES]]
    return shortlists


def _incidence(skill_sets: Sequence[Iterable[int]], taxonomy: Taxonomy) -> sp.csr_array:
    """(rows, S) 1 where row i has skill ids ``skill_sets[i]`` (ids outside the taxonomy are
    skipped: they earn nothing)."""
    known = set(taxonomy.skill_ids.tolist())
    pairs = [(i, s) for i, skill_ids in enumerate(skill_sets) for s in skill_ids if s in known]
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    cols = taxonomy.positions(np.array([p[1] for p in pairs], dtype=np.int64))
    shape = (len(skill_sets), len(taxonomy.skill_ids))
    return sp.csr_array((np.ones(rows.size), (rows, cols)), shape=shape)


@dataclass(frozen=True)
class Bin:
    """Proposals whose score lies in [low, high)."""

    low: float
    high: float
    count: int


def score_histogram(session: Session, *, run: MatchRun, width: float = 0.1) -> list[Bin]:
    """The run's scores in bins of ``width`` from 0 to at least 1 (region bonuses go above 1)."""
    scores = np.fromiter(
        session.scalars(select(Proposal.score).where(Proposal.match_run_id == run.id)),
        dtype=np.float64,
    )
    top = max(1.0, math.ceil(float(scores.max()) / width - 1e-9) * width) if scores.size else 1.0
    bins = round(top / width)
    counts, edges = np.histogram(scores, bins=bins, range=(0.0, top))
    return [
        Bin(low=float(edges[i]), high=float(edges[i + 1]), count=int(counts[i]))
        for i in range(bins)
    ]


@dataclass(frozen=True)
class UnitCount:
    """How many of a run's proposals draw on a unit's craftsmen and on its apprentices."""

    unit: Unit
    craftsmen: int
    apprentices: int


def unit_counts(session: Session, *, run: MatchRun) -> list[UnitCount]:
    """Per unit: proposals that give its craftsmen, proposals that place its apprentices."""

    def per_unit(model: type[Craftsman] | type[Apprentice], column: Any) -> dict[int, int]:
        return dict(
            session.execute(
                select(model.unit_id, func.count())
                .select_from(Proposal)
                .join(model, column == model.id)
                .where(Proposal.match_run_id == run.id)
                .group_by(model.unit_id)
            ).all()
        )

    giving = per_unit(Craftsman, Proposal.craftsman_id)
    placing = per_unit(Apprentice, Proposal.apprentice_id)
    units = session.scalars(
        select(Unit).where(Unit.alliance_id == run.alliance_id).order_by(Unit.code)
    )
    return [UnitCount(u, giving.get(u.id, 0), placing.get(u.id, 0)) for u in units]


@dataclass(frozen=True)
class UnitShare:
    """A unit's share of a run against the run's fair-share rules (None: the rule was off)."""

    unit: Unit
    given: int  # pairs whose craftsman is of the unit
    received: int  # pairs whose apprentice is of the unit
    cap: int | None  # max_pairs_per_craftsman_unit
    floor: int | None  # min_pairs_per_apprentice_unit
    shortfall: int  # how far ``received`` fell short of the floor

    @property
    def at_cap(self) -> bool:
        """The unit's craftsmen give as many pairs as the cap allows."""
        return self.cap is not None and self.given >= self.cap


def unit_shares(session: Session, *, run: MatchRun) -> list[UnitShare]:
    """Per considered unit, from the run's ``stats.units`` (as the solver counted them, pins
    included); a run solved before those stats existed counts its proposals per unit."""
    params = MatchParams.from_json(run.params or {})
    rows = (run.stats or {}).get("units")
    if rows is None:
        counted = {c.unit.id: c for c in unit_counts(session, run=run)}
        rows = [
            {
                "unit_id": unit_id,
                "pairs_as_craftsman_unit": c.craftsmen,
                "pairs_as_apprentice_unit": c.apprentices,
                "floor_shortfall": 0,
            }
            for unit_id, c in counted.items()
        ]
    units = {
        u.id: u for u in session.scalars(select(Unit).where(Unit.alliance_id == run.alliance_id))
    }
    floor = params.min_pairs_per_apprentice_unit
    shares = [
        UnitShare(
            unit=units[row["unit_id"]],
            given=int(row["pairs_as_craftsman_unit"]),
            received=int(row["pairs_as_apprentice_unit"]),
            cap=params.max_pairs_per_craftsman_unit,
            floor=floor or None,
            shortfall=int(row["floor_shortfall"]) if floor else 0,
        )
        for row in rows
        if row["unit_id"] in units
    ]
    return sorted(shares, key=lambda share: share.unit.code)


@dataclass(frozen=True)
class UnmatchedRow:
    """An apprentice the run left unmatched, why, and the craftsmen whose slots went elsewhere."""

    apprentice: Apprentice
    reason_code: str
    blockers: list[Craftsman]


def unmatched_count(session: Session, *, run: MatchRun) -> int:
    """How many apprentices the run left unmatched."""
    return (
        session.scalar(
            select(func.count())
            .select_from(UnmatchedApprentice)
            .where(UnmatchedApprentice.match_run_id == run.id)
        )
        or 0
    )


def unmatched_rows(session: Session, *, run: MatchRun, limit: int) -> list[UnmatchedRow]:
    """The first ``limit`` unmatched apprentices of the run, by unit and external id."""
    rows = list(
        session.scalars(
            select(UnmatchedApprentice)
            .join(Apprentice, UnmatchedApprentice.apprentice_id == Apprentice.id)
            .where(UnmatchedApprentice.match_run_id == run.id)
            .options(selectinload(UnmatchedApprentice.apprentice).selectinload(Apprentice.unit))
            .order_by(Apprentice.unit_id, Apprentice.external_id)
            .limit(limit)
        )
    )
    ids = {i for row in rows for i in row.detail.get("craftsman_ids", [])}
    craftsmen = {c.id: c for c in session.scalars(select(Craftsman).where(Craftsman.id.in_(ids)))}
    return [
        UnmatchedRow(
            apprentice=row.apprentice,
            reason_code=row.reason_code,
            blockers=[craftsmen[i] for i in row.detail.get("craftsman_ids", []) if i in craftsmen],
        )
        for row in rows
    ]
