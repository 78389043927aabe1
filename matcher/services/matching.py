"""Match runs: load an alliance into arrays, solve, store proposals and the unmatched with reasons.

The solving itself is ``matcher.algorithms`` (numpy/scipy only); this module turns rows into arrays
and results back into rows, with set-based queries and no per-pair Python loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher.algorithms import (
    MatchParams,
    MatchProblem,
    PinnedPairError,
    explain_pairs,
    pair_verdict,
    solve_match,
)
from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed, not_found
from matcher.metrics import MATCH_RUN_SECONDS
from matcher.models import (
    ACTIVE_RUN_INDEX,
    ACTIVE_RUN_STATUSES,
    Alliance,
    Apprentice,
    ApprenticeWant,
    Craftsman,
    CraftsmanSkill,
    MatchRun,
    Mentorship,
    Proposal,
    RejectedPair,
    Skill,
    Unit,
    UnmatchedApprentice,
)

PARAM_DEFAULTS: dict[str, Any] = {
    "objective": "score",
    "min_fit": 0.25,
    "related_credit": 0.5,
    "region_bonus": 0.05,
    "include_mentored": False,
    "unit_ids": None,
    "pinned": [],
    "excluded": [],
}
Progress = Callable[[str, float], None]


class PinnedPairFailure(Exception):
    """A pinned pair that cannot take part; the run fails with this message."""


@dataclass(frozen=True)
class LoadedProblem:
    """A match problem and the ids its array positions stand for."""

    problem: MatchProblem
    craftsman_ids: NDArray[np.int64]
    apprentice_ids: NDArray[np.int64]
    skill_ids: NDArray[np.int64]
    skill_names: list[str]
    build_seconds: float


def _positions(ids: NDArray[np.int64], wanted: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions of ``wanted`` in ``ids`` (any order; every wanted id must be present)."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], wanted)].astype(np.int64)


def _sparse(
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    values: NDArray[np.float64],
    shape: tuple[int, int],
) -> sp.csr_array:
    return sp.csr_array((values, (rows, cols)), shape=shape)


def _int_column(session: Session, stmt: Any) -> NDArray[np.int64]:
    return np.fromiter(session.scalars(stmt), dtype=np.int64)


def _taxonomy(session: Session, alliance_ids: Iterable[int]) -> Sequence[Row[int, int | None, str]]:
    """The alliances' skill tags as (id, parent_id, name) by id: a parent is always a tag of
    the same alliance, so every parent id is among them."""
    return session.execute(
        select(Skill.id, Skill.parent_id, Skill.name)
        .where(Skill.alliance_id.in_(sorted(alliance_ids)))
        .order_by(Skill.id)
    ).all()


def load_problem(
    session: Session, *, alliance: Alliance, params: Mapping[str, Any]
) -> LoadedProblem:
    """Every eligible craftsman and apprentice of the alliance as arrays, in a stable order."""
    started = time.perf_counter()
    unit_filter = Unit.alliance_id == alliance.id
    if params["unit_ids"]:
        unit_filter = unit_filter & Unit.id.in_(params["unit_ids"])

    skills = _taxonomy(session, [alliance.id])
    skill_ids = np.array([row[0] for row in skills], dtype=np.int64)
    parent_ids = np.array([row[1] if row[1] is not None else -1 for row in skills], dtype=np.int64)
    skill_parent = np.where(parent_ids >= 0, _positions(skill_ids, np.maximum(parent_ids, 0)), -1)

    active_load = (
        select(Mentorship.craftsman_id, func.count().label("n"))
        .where(Mentorship.status == "active")
        .group_by(Mentorship.craftsman_id)
        .subquery()
    )
    craftsmen = session.execute(
        select(
            Craftsman.id,
            Craftsman.unit_id,
            Craftsman.region,
            Craftsman.capacity - func.coalesce(active_load.c.n, 0),
        )
        .join(Unit, Craftsman.unit_id == Unit.id)
        .outerjoin(active_load, active_load.c.craftsman_id == Craftsman.id)
        .where(unit_filter, Craftsman.active.is_(True))
        .where(Craftsman.capacity - func.coalesce(active_load.c.n, 0) > 0)
        # The HR systems' identity, not the id: the same data gives the same pairs whatever
        # order it was inserted in.
        .order_by(Craftsman.unit_id, Craftsman.external_id)
    ).all()
    craftsman_ids = np.array([row[0] for row in craftsmen], dtype=np.int64)

    has_wants = select(ApprenticeWant.apprentice_id).distinct()
    apprentice_stmt = (
        select(Apprentice.id, Apprentice.unit_id, Apprentice.region)
        .join(Unit, Apprentice.unit_id == Unit.id)
        .where(unit_filter, Apprentice.active.is_(True), Apprentice.id.in_(has_wants))
        .order_by(Apprentice.unit_id, Apprentice.external_id)
    )
    if not params["include_mentored"]:
        mentored = select(Mentorship.apprentice_id).where(Mentorship.status == "active")
        apprentice_stmt = apprentice_stmt.where(Apprentice.id.not_in(mentored))
    apprentices = session.execute(apprentice_stmt).all()
    apprentice_ids = np.array([row[0] for row in apprentices], dtype=np.int64)

    regions: dict[str, int] = {}

    def region_codes(values: Sequence[str | None]) -> NDArray[np.int64]:
        return np.array(
            [-1 if not v else regions.setdefault(v, len(regions)) for v in values], dtype=np.int64
        )

    n_skills = len(skill_ids)
    craftsman_skills = session.execute(
        select(CraftsmanSkill.craftsman_id, CraftsmanSkill.skill_id, CraftsmanSkill.level).where(
            CraftsmanSkill.craftsman_id.in_(select(Craftsman.id).join(Unit).where(unit_filter))
        )
    ).all()
    skill_rows = np.array(craftsman_skills, dtype=np.float64).reshape(-1, 3)
    keep = np.isin(skill_rows[:, 0].astype(np.int64), craftsman_ids)
    skill_rows = skill_rows[keep]
    wants = session.execute(
        select(
            ApprenticeWant.apprentice_id,
            ApprenticeWant.skill_id,
            ApprenticeWant.level,
            ApprenticeWant.weight,
        ).where(
            ApprenticeWant.apprentice_id.in_(select(Apprentice.id).join(Unit).where(unit_filter))
        )
    ).all()
    want_rows = np.array(wants, dtype=np.float64).reshape(-1, 4)
    want_rows = want_rows[np.isin(want_rows[:, 0].astype(np.int64), apprentice_ids)]

    c_pos = _positions(craftsman_ids, skill_rows[:, 0].astype(np.int64))
    c_skill = _positions(skill_ids, skill_rows[:, 1].astype(np.int64))
    a_pos = _positions(apprentice_ids, want_rows[:, 0].astype(np.int64))
    a_skill = _positions(skill_ids, want_rows[:, 1].astype(np.int64))
    shape_c = (len(craftsman_ids), n_skills)
    shape_a = (len(apprentice_ids), n_skills)

    problem = MatchProblem(
        craftsman_unit=np.array([row[1] for row in craftsmen], dtype=np.int64),
        craftsman_region=region_codes([row[2] for row in craftsmen]),
        craftsman_free=np.array([row[3] for row in craftsmen], dtype=np.int64),
        craftsman_skills=_sparse(c_pos, c_skill, skill_rows[:, 2], shape_c),
        apprentice_unit=np.array([row[1] for row in apprentices], dtype=np.int64),
        apprentice_region=region_codes([row[2] for row in apprentices]),
        apprentice_wants=_sparse(a_pos, a_skill, want_rows[:, 2], shape_a),
        apprentice_weights=_sparse(a_pos, a_skill, want_rows[:, 3], shape_a),
        skill_parent=skill_parent.astype(np.int64),
        excluded=_excluded(session, params, craftsman_ids, apprentice_ids),
        pinned=_pinned(params, craftsman_ids, apprentice_ids),
    )
    return LoadedProblem(
        problem=problem,
        craftsman_ids=craftsman_ids,
        apprentice_ids=apprentice_ids,
        skill_ids=skill_ids,
        skill_names=[row[2] for row in skills],
        build_seconds=time.perf_counter() - started,
    )


def _pairs_in(
    pairs: NDArray[np.int64], craftsman_ids: NDArray[np.int64], apprentice_ids: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Id pairs turned into position pairs, keeping those whose two people take part."""
    pairs = pairs.reshape(-1, 2)
    known = np.isin(pairs[:, 0], craftsman_ids) & np.isin(pairs[:, 1], apprentice_ids)
    pairs = pairs[known]
    return np.column_stack(
        [_positions(craftsman_ids, pairs[:, 0]), _positions(apprentice_ids, pairs[:, 1])]
    ).astype(np.int64)


def _excluded(
    session: Session,
    params: Mapping[str, Any],
    craftsman_ids: NDArray[np.int64],
    apprentice_ids: NDArray[np.int64],
) -> NDArray[np.int64]:
    rejected = session.execute(
        select(RejectedPair.craftsman_id, RejectedPair.apprentice_id).where(
            RejectedPair.cleared_at.is_(None)
        )
    ).all()
    pairs = np.array(list(rejected) + [tuple(p) for p in params["excluded"]], dtype=np.int64)
    return _pairs_in(pairs, craftsman_ids, apprentice_ids)


def _pinned(
    params: Mapping[str, Any], craftsman_ids: NDArray[np.int64], apprentice_ids: NDArray[np.int64]
) -> NDArray[np.int64]:
    pairs = np.array([tuple(p) for p in params["pinned"]], dtype=np.int64).reshape(-1, 2)
    for craftsman_id, apprentice_id in pairs:
        if craftsman_id not in craftsman_ids or apprentice_id not in apprentice_ids:
            raise PinnedPairFailure(
                f"Pinned pair [{craftsman_id}, {apprentice_id}] cannot take part: the craftsman "
                "must be active with free capacity and the apprentice active, with wanted skills "
                "and no active mentorship, both in the considered units."
            )
    return _pairs_in(pairs, craftsman_ids, apprentice_ids)


def validate_params(
    session: Session, *, alliance: Alliance, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults filled in; unit and person ids must belong to the alliance (else 422)."""
    merged = {**PARAM_DEFAULTS, **params}
    errors: dict[str, Any] = {}
    if merged["unit_ids"]:
        found = set(
            session.scalars(
                select(Unit.id).where(
                    Unit.alliance_id == alliance.id, Unit.id.in_(merged["unit_ids"])
                )
            )
        )
        missing = [u for u in merged["unit_ids"] if u not in found]
        if missing:
            errors["unit_ids"] = [f"Not units of this alliance: {missing}."]
    for name in ("pinned", "excluded"):
        pairs = merged[name]
        if not pairs:
            continue
        craftsmen = set(
            session.scalars(
                select(Craftsman.id)
                .join(Unit)
                .where(Unit.alliance_id == alliance.id, Craftsman.id.in_({p[0] for p in pairs}))
            )
        )
        apprentices = set(
            session.scalars(
                select(Apprentice.id)
                .join(Unit)
                .where(Unit.alliance_id == alliance.id, Apprentice.id.in_({p[1] for p in pairs}))
            )
        )
        bad = {
            str(i): [f"No craftsman {c} or no apprentice {a} in this alliance."]
            for i, (c, a) in enumerate(pairs)
            if c not in craftsmen or a not in apprentices
        }
        if bad:
            errors[name] = bad
    if errors:
        raise ValidationFailed(
            "Some match parameters do not fit this alliance.", errors={"params": errors}
        )
    return merged


def estimate_cells(session: Session, *, alliance: Alliance, params: Mapping[str, Any]) -> int:
    """Apprentices × free slots: the size of the dense problem, to decide inline vs queued."""
    units = select(Unit.id).where(Unit.alliance_id == alliance.id)
    if params["unit_ids"]:
        units = units.where(Unit.id.in_(params["unit_ids"]))
    slots = (
        session.scalar(
            select(func.coalesce(func.sum(Craftsman.capacity), 0)).where(
                Craftsman.unit_id.in_(units), Craftsman.active.is_(True)
            )
        )
        or 0
    )
    apprentices = (
        session.scalar(
            select(func.count())
            .select_from(Apprentice)
            .where(Apprentice.unit_id.in_(units), Apprentice.active.is_(True))
        )
        or 0
    )
    return int(slots) * int(apprentices)


def _active_run_conflict(session: Session, alliance: Alliance) -> Conflict | None:
    """409 if a run of the alliance is queued or running: one run at a time per alliance."""
    active = session.execute(
        select(MatchRun.id, MatchRun.status)
        .where(MatchRun.alliance_id == alliance.id, MatchRun.status.in_(ACTIVE_RUN_STATUSES))
        .limit(1)
    ).first()
    if active is None:
        return None
    return Conflict(
        f"Match run {active.id} of this alliance is still {active.status}; an alliance has one "
        f"run at a time. Wait until it is done (GET /api/v1/match-runs/{active.id}), then start "
        "this one again. Nothing was written."
    )


def create_match_run(
    session: Session, *, alliance: Alliance, params: Mapping[str, Any], created_by: str | None
) -> MatchRun:
    """A queued run with validated parameters; 409 while another run of the alliance is queued
    or running (a partial unique index keeps that true for concurrent requests too)."""
    conflict = _active_run_conflict(session, alliance)
    if conflict is not None:
        raise conflict
    run = MatchRun(
        alliance_id=alliance.id,
        status="queued",
        params=validate_params(session, alliance=alliance, params=params),
        stats={},
        progress={"stage": "queued", "fraction": 0.0},
        created_by=created_by,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError as exc:
        # A concurrent request started a run of the alliance between the check and the insert.
        if not any(n in str(exc.orig) for n in (ACTIVE_RUN_INDEX, "match_runs.alliance_id")):
            raise
        session.rollback()
        raise _active_run_conflict(session, alliance) or Conflict(
            "Another run of this alliance was started at the same time; nothing was written."
        ) from exc
    return run


def start_match_run(
    session: Session,
    *,
    alliance: Alliance,
    params: Mapping[str, Any],
    created_by: str,
    inline_max_cells: int,
) -> MatchRun:
    """Solve the run at once when small; a large one stays queued for the scheduler process.

    The same rule as the API's POST: a web worker is never blocked by a large solve. A run solved
    at once is committed as ``running`` first, so that another start for the alliance is refused
    (409) while it solves, and SQLite's write lock is not held meanwhile; the caller commits the
    result. A crash while solving is recorded on the run (``failed``) before it propagates.
    """
    run = create_match_run(session, alliance=alliance, params=params, created_by=created_by)
    if estimate_cells(session, alliance=alliance, params=run.params) > inline_max_cells:
        return run
    run.status = "running"
    run.progress = {"stage": "loading", "fraction": 0.0}
    run.updated_at = utcnow()
    session.commit()
    try:
        return execute_match_run(session, run=run)
    except Exception:
        session.rollback()
        _fail(session, run, "Internal error while solving; the operator's log has details.")
        session.commit()
        raise


def get_match_run(session: Session, *, run_id: int) -> MatchRun:
    """A run, or ``NotFound``."""
    run = session.get(MatchRun, run_id)
    if run is None:
        raise not_found("match run", run_id)
    return run


def claim_queued_run(session: Session, *, stale_after_seconds: int = 1800) -> MatchRun | None:
    """Take the oldest queued run (or one whose solver died) for this process, or ``None``.

    A compare-and-set UPDATE makes the claim safe with several schedulers on either database.
    The caller commits the claim before it solves the run.
    """
    stale = utcnow().timestamp() - stale_after_seconds
    candidates = session.execute(
        select(MatchRun.id, MatchRun.status, MatchRun.updated_at)
        .where(MatchRun.status.in_(("queued", "running")))
        .order_by(MatchRun.id)
    ).all()
    for run_id, status, updated_at in candidates:
        if status == "running" and updated_at.timestamp() > stale:
            continue
        claimed = session.execute(
            update(MatchRun)
            .where(
                MatchRun.id == run_id, MatchRun.status == status, MatchRun.updated_at == updated_at
            )
            .values(
                status="running",
                updated_at=utcnow(),
                progress={"stage": "loading", "fraction": 0.0},
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(MatchRun, run_id)
    return None


def execute_match_run(
    session: Session, *, run: MatchRun, progress: Progress | None = None
) -> MatchRun:
    """Solve a run and store its proposals and unmatched; a failure is recorded on the run."""
    started = time.perf_counter()
    try:
        _solve_and_store(session, run=run, progress=progress)
    finally:
        method = str((run.stats or {}).get("method", "none")).split("+")[0]
        MATCH_RUN_SECONDS.labels(method, run.status).observe(time.perf_counter() - started)
    return run


def _solve_and_store(session: Session, *, run: MatchRun, progress: Progress | None) -> MatchRun:
    alliance = session.get(Alliance, run.alliance_id)
    assert alliance is not None
    params = run.params
    report = progress or (lambda _stage, _fraction: None)
    try:
        report("loading", 0.05)
        loaded = load_problem(session, alliance=alliance, params=params)
    except PinnedPairFailure as exc:
        return _fail(session, run, str(exc))
    try:
        report("solving", 0.3)
        result = solve_match(
            loaded.problem,
            _match_params(params),
            progress=lambda stage, f: report(stage, 0.3 + 0.6 * f),
        )
    except PinnedPairError as exc:
        return _fail(
            session,
            run,
            f"Pinned pair [{int(loaded.craftsman_ids[exc.craftsman])}, "
            f"{int(loaded.apprentice_ids[exc.apprentice])}]: {exc.reason}",
        )
    report("storing", 0.9)
    _store_result(session, run=run, loaded=loaded, result=result, params=params)
    run.status = "proposed"
    run.objective = float(result.objective)
    run.stats = {
        **result.stats,
        "build_seconds": round(loaded.build_seconds + result.stats.get("build_seconds", 0.0), 4),
    }
    run.progress = {"stage": "done", "fraction": 1.0}
    run.updated_at = utcnow()
    session.flush()
    return run


def _fail(session: Session, run: MatchRun, error: str) -> MatchRun:
    run.status = "failed"
    run.error = error
    run.progress = {"stage": "failed", "fraction": 1.0}
    run.updated_at = utcnow()
    session.flush()
    return run


def _match_params(params: Mapping[str, Any]) -> MatchParams:
    return MatchParams(
        objective=params["objective"],
        min_fit=params["min_fit"],
        related_credit=params["related_credit"],
        region_bonus=params["region_bonus"],
    )


def _explanation_rows(loaded: LoadedProblem, explanation: Any, index: int) -> list[dict[str, Any]]:
    """One pair's explanation, with skill names instead of positions."""
    names = loaded.skill_names
    rows = []
    for skill, wanted, weight, given, level, credit in explanation.rows(index):
        rows.append(
            {
                "skill": names[skill],
                "wanted_level": int(wanted),
                "weight": float(weight),
                "craftsman_skill": names[given] if given >= 0 else None,
                "craftsman_level": int(level) if given >= 0 else None,
                "credit": round(float(credit), 6),
            }
        )
    return rows


def _store_result(
    session: Session,
    *,
    run: MatchRun,
    loaded: LoadedProblem,
    result: Any,
    params: Mapping[str, Any],
) -> None:
    """Proposals and unmatched rows of a solved run, in two bulk inserts."""
    now = utcnow()
    explanation = explain_pairs(
        loaded.problem, _match_params(params), result.craftsman, result.apprentice
    )
    proposals = [
        {
            "match_run_id": run.id,
            "craftsman_id": int(loaded.craftsman_ids[m]),
            "apprentice_id": int(loaded.apprentice_ids[a]),
            "score": float(result.score[i]),
            "fit": float(result.fit[i]),
            "explanation": _explanation_rows(loaded, explanation, i),
            "status": "pending",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, (m, a) in enumerate(zip(result.craftsman, result.apprentice, strict=True))
    ]
    if proposals:
        session.execute(insert(Proposal), proposals)
    messages = {
        "no_eligible_craftsman": "No craftsman of another unit reaches min_fit {min_fit} "
        "for the wanted skills.",
        "capacity_exhausted": "Eligible craftsmen exist, but their slots went to better "
        "overall pairs.",
        "excluded": "Every eligible pair was rejected before or excluded by the run's parameters.",
    }
    unmatched = []
    for position, (a, reason) in enumerate(
        zip(result.unmatched, result.unmatched_reason, strict=True)
    ):
        detail: dict[str, Any] = {
            "message": messages[str(reason)].format(min_fit=params["min_fit"])
        }
        if str(reason) == "capacity_exhausted":
            blockers = result.unmatched_blockers[position]
            detail["craftsman_ids"] = sorted(int(loaded.craftsman_ids[m]) for m in blockers)
        unmatched.append(
            {
                "match_run_id": run.id,
                "apprentice_id": int(loaded.apprentice_ids[a]),
                "reason_code": str(reason),
                "detail": detail,
            }
        )
    if unmatched:
        session.execute(insert(UnmatchedApprentice), unmatched)


def rejected_before(session: Session, *, craftsman_id: int, apprentice_id: int) -> bool:
    """Whether a coordinator rejected this pair and nobody cleared the rejection."""
    count = session.scalar(
        select(func.count())
        .select_from(RejectedPair)
        .where(
            RejectedPair.craftsman_id == craftsman_id,
            RejectedPair.apprentice_id == apprentice_id,
            RejectedPair.cleared_at.is_(None),
        )
    )
    return bool(count)


def pair_score(
    session: Session,
    *,
    craftsman: Craftsman,
    apprentice: Apprentice,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the matcher would say of one pair (default parameters, or a run's), and what forbids
    it."""
    params = {**PARAM_DEFAULTS, **(params or {})}
    # Both people's alliances: an admin may ask about a pair across two alliances, whose skills
    # then simply share no tag (each alliance's tags are its own).
    skills = _taxonomy(session, {craftsman.unit.alliance_id, apprentice.unit.alliance_id})
    skill_ids = np.array([row[0] for row in skills], dtype=np.int64)
    parent_ids = np.array([row[1] if row[1] is not None else -1 for row in skills], dtype=np.int64)
    n = len(skill_ids)
    c_skills = [(s.skill_id, s.level) for s in craftsman.skills]
    wants = [(w.skill_id, w.level, w.weight) for w in apprentice.wants]

    def row(entries: list[tuple[Any, ...]], column: int) -> sp.csr_array:
        cols = _positions(skill_ids, np.array([e[0] for e in entries], dtype=np.int64))
        values = np.array([e[column] for e in entries], dtype=np.float64)
        return _sparse(np.zeros(len(entries), dtype=np.int64), cols, values, (1, n))

    rejected = rejected_before(session, craftsman_id=craftsman.id, apprentice_id=apprentice.id)
    # Regions as codes: 0 for the craftsman's, 1 for any other, -1 for none.
    problem = MatchProblem(
        craftsman_unit=np.array([craftsman.unit_id], dtype=np.int64),
        craftsman_region=np.array([0 if craftsman.region else -1], dtype=np.int64),
        craftsman_free=np.array([1], dtype=np.int64),
        craftsman_skills=row(c_skills, 1),
        apprentice_unit=np.array([apprentice.unit_id], dtype=np.int64),
        apprentice_region=np.array(
            [
                0
                if apprentice.region and apprentice.region == craftsman.region
                else (1 if apprentice.region else -1)
            ],
            dtype=np.int64,
        ),
        apprentice_wants=row(wants, 1),
        apprentice_weights=row(wants, 2),
        skill_parent=np.where(
            parent_ids >= 0, _positions(skill_ids, np.maximum(parent_ids, 0)), -1
        ).astype(np.int64),
        excluded=np.array([[0, 0]], dtype=np.int64)
        if rejected
        else np.zeros((0, 2), dtype=np.int64),
        pinned=np.zeros((0, 2), dtype=np.int64),
    )
    verdict = pair_verdict(problem, _match_params(params), 0, 0)
    loaded = LoadedProblem(
        problem=problem,
        craftsman_ids=np.array([craftsman.id], dtype=np.int64),
        apprentice_ids=np.array([apprentice.id], dtype=np.int64),
        skill_ids=skill_ids,
        skill_names=[r[2] for r in skills],
        build_seconds=0.0,
    )
    forbidden = verdict.forbidden_by
    detail = {
        "same_unit": "Craftsman and apprentice belong to the same unit.",
        "below_min_fit": f"The fit is below min_fit {params['min_fit']}.",
        "excluded": "A coordinator rejected this pair before (clear the rejection to allow it).",
        None: None,
    }[forbidden]
    if forbidden is None and not craftsman.active:
        forbidden, detail = "craftsman_inactive", "The craftsman is inactive."
    if forbidden is None and not apprentice.active:
        forbidden, detail = "apprentice_inactive", "The apprentice is inactive."
    return {
        "craftsman": craftsman,
        "apprentice": apprentice,
        "eligible": forbidden is None,
        "forbidden_by": forbidden,
        "detail": detail,
        "score": float(verdict.score),
        "fit": float(verdict.fit),
        "explanation": _explanation_rows(loaded, verdict.explanation, 0),
    }
