"""``solve_match``: hard constraints, objective, method, and the reasons for the unmatched."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.algorithms.assignment import (
    DENSE_FASTER_MAX_CELLS,
    Edges,
    solve_components,
    solve_dense,
    solve_sparse,
)
from matcher.algorithms.eligibility import (
    CONSTRAINTS,
    broken_constraints,
    eligible_mask,
    excluded_mask,
    other_unit,
)
from matcher.algorithms.fairness import (
    FairMethod,
    UnitIndex,
    blocking_caps,
    choose_fair_method,
    pin_cap_breaches,
    solve_fair,
    unit_counts,
    unit_shares,
)
from matcher.algorithms.params import MatchParams
from matcher.algorithms.problem import (
    FAIR_METHODS,
    MatchProblem,
    MatchResult,
    Method,
    PinnedCapError,
    PinnedPairError,
)
from matcher.algorithms.pruned import solve_pruned
from matcher.algorithms.scoring import (
    Explanation,
    candidate_pairs,
    explain_pairs,
    max_pair_bonus,
)

Progress = Callable[[str, float], None]


def coverage_bonus(problem: MatchProblem, params: MatchParams) -> float:
    """A gain per matched pair larger than any possible total of scores."""
    return float(
        min(problem.n_apprentices, int(problem.craftsman_free.sum()))
        * (1.0 + max_pair_bonus(params))
        + 1.0
    )


@dataclass(frozen=True)
class Eligible:
    """Candidate pairs split by the hard constraints."""

    craftsman: NDArray[np.int64]
    apprentice: NDArray[np.int64]
    fit: NDArray[np.float64]
    score: NDArray[np.float64]
    excluded_any: NDArray[np.bool_]  # (A,) some eligible-but-excluded pair exists
    fit_any: NDArray[np.bool_]  # (A,) some craftsman of another unit reaches min_fit


def eligible_pairs(problem: MatchProblem, params: MatchParams) -> Eligible:
    """Pairs of different units with fit >= min_fit that are not excluded nor avoided."""
    pairs = candidate_pairs(problem, params)
    excluded = excluded_mask(
        problem.forbidden, pairs.craftsman, pairs.apprentice, problem.n_apprentices
    )
    checked = eligible_mask(
        craftsman_unit=problem.craftsman_unit[pairs.craftsman],
        apprentice_unit=problem.apprentice_unit[pairs.apprentice],
        fit=pairs.fit,
        min_fit=params.min_fit,
        excluded=excluded,
    )
    fit_any = np.zeros(problem.n_apprentices, dtype=bool)
    fit_any[pairs.apprentice[checked.fits]] = True
    excluded_any = np.zeros(problem.n_apprentices, dtype=bool)
    excluded_any[pairs.apprentice[checked.fits & excluded]] = True
    keep = checked.eligible
    return Eligible(
        craftsman=pairs.craftsman[keep],
        apprentice=pairs.apprentice[keep],
        fit=pairs.fit[keep],
        score=pairs.score[keep],
        excluded_any=excluded_any,
        fit_any=fit_any,
    )


def _check_pins(problem: MatchProblem) -> None:
    """Raise ``PinnedPairError`` for the first pin that breaks hard constraint 1, 2 or 6."""
    pinned = problem.pinned
    avoided = excluded_mask(problem.avoided, pinned[:, 0], pinned[:, 1], problem.n_apprentices)
    seen_apprentices: set[int] = set()
    pins_left = problem.craftsman_free.astype(np.int64).copy()
    for index, (craftsman, apprentice) in enumerate(pinned.tolist()):
        reason = None
        if not other_unit(problem.craftsman_unit[craftsman], problem.apprentice_unit[apprentice]):
            reason = "craftsman and apprentice are of the same unit."
        elif avoided[index]:
            reason = "the apprentice asked to avoid this craftsman."
        elif apprentice in seen_apprentices:
            reason = "the apprentice is pinned more than once."
        elif pins_left[craftsman] < 1:
            reason = "the craftsman has no free slot left for it."
        if reason:
            raise PinnedPairError(reason, craftsman=craftsman, apprentice=apprentice)
        seen_apprentices.add(apprentice)
        pins_left[craftsman] -= 1


AUTO_DENSE_MAX_CELLS = DENSE_FASTER_MAX_CELLS  # where auto leaves dense LSA (assignment.py)
# Where auto leaves the sparse solver over every eligible pair for the pruned graph and its
# proof: measured by solve_match on the bench generator (best of 5, seed 7), the two tie near
# 400 x 100 (~100,000 cells: 0.012 s), pruned is ahead from 600 x 150 (~220,000: 0.022 s
# against 0.025 s) and 3x faster at 2,000 x 500 (0.15 s against 0.42 s).
AUTO_SPARSE_MAX_CELLS = 200_000


def choose_method(cells: int, requested: Method, params: MatchParams | None = None) -> Method:
    """The method for a problem of ``cells`` slot × apprentice cells.

    With fair-share rules only ``flow`` and ``milp`` honour them (``auto``: flow while the
    problem is a network); without them, runs keep the assignment solvers."""
    if params is not None and params.has_fair_shares:
        if requested == "auto":
            return choose_fair_method(params)
        if requested not in FAIR_METHODS:
            raise ValueError(f"method {requested!r} cannot honour the fair-share rules")
        return requested
    if requested in FAIR_METHODS:
        return "sparse"  # the rules are off: the same optimum, by the assignment solver
    if requested != "auto":
        return requested
    if cells <= AUTO_DENSE_MAX_CELLS:
        return "dense"
    return "sparse" if cells <= AUTO_SPARSE_MAX_CELLS else "pruned"


BLOCKERS_SHOWN = 10  # capacity_exhausted names at most this many craftsmen, best first


@dataclass(frozen=True)
class Candidates:
    """What the reasons for the unmatched are drawn from."""

    craftsman: NDArray[np.int64]  # (E,) eligible pairs (all, or the kept ones when pruned)
    apprentice: NDArray[np.int64]
    score: NDArray[np.float64]
    has_edge: NDArray[np.bool_]  # (A,) some eligible pair exists
    excluded_any: NDArray[np.bool_]  # (A,) some eligible-but-excluded pair exists


@dataclass(frozen=True)
class OpenAfterPins:
    """What is left to assign once the pinned pairs are in."""

    free: NDArray[np.int64]  # (M,) free slots minus the craftsman's pins, >= 0
    open_apprentice: NDArray[np.bool_]  # (A,) not pinned


@dataclass(frozen=True)
class Solved:
    """One method's optimal pairs (indices into ``edges``), and what the report needs of it."""

    edges: Edges
    picked: NDArray[np.int64]
    method: str  # as ``stats.method`` reports it, e.g. "pruned+dense"
    components: int
    candidates: Candidates
    eligible_count: int
    build_seconds: float  # scoring; the rest of the time is solving
    extra_stats: dict[str, Any]


def open_after_pins(problem: MatchProblem) -> OpenAfterPins:
    """The free slots and apprentices the pinned pairs leave to the solver."""
    free = problem.craftsman_free.astype(np.int64).copy()
    np.subtract.at(free, problem.pinned[:, 0], 1)
    open_apprentice = np.ones(problem.n_apprentices, dtype=bool)
    open_apprentice[problem.pinned[:, 1]] = False
    return OpenAfterPins(free=np.maximum(free, 0), open_apprentice=open_apprentice)


def solve_pruned_graph(
    problem: MatchProblem,
    params: MatchParams,
    left: OpenAfterPins,
    *,
    bonus: float,
    report: Progress,
) -> Solved:
    """Large problems: the pruned candidate graph, proven optimal for the whole (``pruned.py``)."""
    pruned = solve_pruned(
        problem,
        params,
        free=left.free,
        open_apprentice=left.open_apprentice,
        bonus=bonus,
        progress=lambda f: report("solving", 0.1 + 0.8 * f),
    )
    edges = pruned.edges
    inner = "+".join(sorted(pruned.inner))
    return Solved(
        edges=edges,
        picked=pruned.picked,
        method=f"pruned+{inner}" if inner else "pruned",
        components=pruned.components,
        candidates=Candidates(
            craftsman=edges.craftsman,
            apprentice=edges.apprentice,
            score=edges.gain - bonus,
            has_edge=pruned.scan.has_edge,
            excluded_any=pruned.scan.excluded_any,
        ),
        eligible_count=pruned.scan.eligible_pairs,
        build_seconds=pruned.scan_seconds,  # the first scoring pass; re-scans count as solving
        extra_stats={"pruned_pairs": int(edges.gain.size), "proof_rounds": pruned.rounds},
    )


@dataclass(frozen=True)
class OpenEdges:
    """Every eligible pair (for the reasons), and those still open after the pins (to solve)."""

    edges: Edges  # open pairs, gain = score (+ the coverage bonus)
    candidates: Candidates
    eligible_count: int
    build_seconds: float


def open_eligible_edges(
    problem: MatchProblem, params: MatchParams, left: OpenAfterPins, *, bonus: float
) -> OpenEdges:
    """Score every candidate pair and keep the eligible ones; the open ones become edges."""
    started = time.perf_counter()
    eligible = eligible_pairs(problem, params)
    open_edge = left.open_apprentice[eligible.apprentice] & (left.free[eligible.craftsman] > 0)
    edges = Edges(
        eligible.craftsman[open_edge],
        eligible.apprentice[open_edge],
        eligible.score[open_edge] + bonus,
    )
    has_edge = np.zeros(problem.n_apprentices, dtype=bool)
    has_edge[eligible.apprentice] = True
    return OpenEdges(
        edges=edges,
        candidates=Candidates(
            craftsman=eligible.craftsman,
            apprentice=eligible.apprentice,
            score=eligible.score,
            has_edge=has_edge,
            excluded_any=eligible.excluded_any,
        ),
        eligible_count=int(eligible.craftsman.size),
        build_seconds=time.perf_counter() - started,
    )


def solve_eligible_graph(
    problem: MatchProblem,
    params: MatchParams,
    left: OpenAfterPins,
    *,
    method: Method,
    bonus: float,
    report: Progress,
) -> Solved:
    """Every eligible pair scored at once, then solved by ``method`` (dense, sparse, components)."""
    built = open_eligible_edges(problem, params, left, bonus=bonus)
    edges, free = built.edges, left.free
    report("solving", 0.2)
    components = 1
    used: str = method
    if method == "dense":
        picked = solve_dense(edges, free, problem.n_apprentices)
    elif method == "sparse":
        picked = solve_sparse(edges, free, problem.n_apprentices)
    else:
        picked, components, parts = solve_components(
            edges, free, problem.n_apprentices, lambda f: report("solving", 0.2 + 0.7 * f)
        )
        used = "components+" + "+".join(sorted(parts)) if parts else "components"
    return Solved(
        edges=edges,
        picked=picked,
        method=used,
        components=components,
        candidates=built.candidates,
        eligible_count=built.eligible_count,
        build_seconds=built.build_seconds,
        extra_stats={},
    )


def solve_fair_graph(
    problem: MatchProblem,
    params: MatchParams,
    left: OpenAfterPins,
    *,
    method: FairMethod,
    report: Progress,
) -> Solved:
    """Every eligible pair, solved under the fair-share rules (``fairness.py``): the stages
    replace the coverage bonus, so the edges carry the plain score."""
    built = open_eligible_edges(problem, params, left, bonus=0.0)
    edges = built.edges
    report("solving", 0.2)
    fair = solve_fair(
        problem,
        params,
        craftsman=edges.craftsman,
        apprentice=edges.apprentice,
        score=edges.gain,
        free=left.free,
        method=method,
    )
    stages: dict[str, Any] = {}
    if fair.floor_total is not None:
        stages["floor_total"] = fair.floor_total
    return Solved(
        edges=edges,
        picked=fair.picked,
        method=fair.method,
        components=1,
        candidates=built.candidates,
        eligible_count=built.eligible_count,
        build_seconds=built.build_seconds,
        extra_stats=stages,
    )


def _check_pin_caps(problem: MatchProblem, params: MatchParams) -> None:
    """Raise ``PinnedCapError`` when the pins alone exceed a fair-share cap."""
    breaches = pin_cap_breaches(
        problem.craftsman_unit[problem.pinned[:, 0]],
        problem.apprentice_unit[problem.pinned[:, 1]],
        params,
    )
    if breaches:
        raise PinnedCapError(breaches)


def chosen_pairs(
    solved: Solved, pinned: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(craftsman, apprentice) of the solver's pairs and the pins, sorted by apprentice."""
    edges, picked = solved.edges, solved.picked
    craftsman = np.concatenate([edges.craftsman[picked], pinned[:, 0]]).astype(np.int64)
    apprentice = np.concatenate([edges.apprentice[picked], pinned[:, 1]]).astype(np.int64)
    order = np.argsort(apprentice, kind="stable")
    return craftsman[order], apprentice[order]


def run_stats(
    problem: MatchProblem,
    solved: Solved,
    *,
    matched: int,
    unmatched: int,
    solve_seconds: float,
) -> dict[str, Any]:
    """``MatchResult.stats``: sizes, timings and the method used."""
    return {
        "apprentices": problem.n_apprentices,
        "craftsmen": problem.n_craftsmen,
        "slots": int(problem.craftsman_free.sum()),
        "eligible_pairs": solved.eligible_count,
        "matched": matched,
        "unmatched": unmatched,
        "pinned": int(problem.pinned.shape[0]),
        "build_seconds": round(solved.build_seconds, 4),
        "solve_seconds": round(solve_seconds, 4),
        "method": solved.method,
        "components": solved.components,
        **solved.extra_stats,
    }


def solve_match(
    problem: MatchProblem,
    params: MatchParams,
    *,
    method: Method = "auto",
    progress: Progress | None = None,
) -> MatchResult:
    """The exact optimum of matching.md's objective under its hard constraints.

    Steps: check the pins, take what they leave open, solve (pruned graph for large problems,
    else every eligible pair by the chosen method), add the pins back, explain every pair, and
    give each unmatched apprentice its reason.
    """
    report = progress or (lambda _stage, _fraction: None)
    started = time.perf_counter()
    _check_pins(problem)
    _check_pin_caps(problem, params)
    report("scoring", 0.0)
    left = open_after_pins(problem)
    bonus = coverage_bonus(problem, params) if params.objective == "coverage" else 0.0
    used = choose_method(int(left.free.sum()) * problem.n_apprentices, method, params)
    if used == "pruned":
        solved = solve_pruned_graph(problem, params, left, bonus=bonus, report=report)
    elif used == "flow" or used == "milp":
        solved = solve_fair_graph(problem, params, left, method=used, report=report)
    else:
        solved = solve_eligible_graph(
            problem, params, left, method=used, bonus=bonus, report=report
        )
    solve_seconds = time.perf_counter() - started - solved.build_seconds
    craftsman, apprentice = chosen_pairs(solved, problem.pinned)
    explained = explain_pairs(problem, params, craftsman, apprentice)
    report("reasons", 0.95)
    unmatched, reasons, blockers = _unmatched(problem, solved.candidates, apprentice)
    caps = _unit_cap_reasons(
        problem, params, solved.candidates, craftsman, apprentice, unmatched, reasons, blockers
    )
    stats = run_stats(
        problem,
        solved,
        matched=int(apprentice.size),
        unmatched=int(unmatched.size),
        solve_seconds=solve_seconds,
    )
    stats["units"] = unit_shares(problem, params, craftsman, apprentice)
    result = MatchResult(
        craftsman=craftsman,
        apprentice=apprentice,
        score=explained.score,
        fit=explained.fit,
        objective=float(explained.score.sum()),
        unmatched=unmatched,
        unmatched_reason=reasons,
        unmatched_blockers=blockers,
        stats=stats,
        unmatched_caps=caps,
    )
    report("done", 1.0)
    return result


def _unmatched(
    problem: MatchProblem, candidates: Candidates, matched: NDArray[np.int64]
) -> tuple[NDArray[np.int64], list[str], list[NDArray[np.int64]]]:
    """Every unmatched apprentice with a reason (only those with wanted skills take part)."""
    taking_part = np.diff(sp.csr_array(problem.apprentice_wants).indptr) > 0
    is_matched = np.zeros(problem.n_apprentices, dtype=bool)
    is_matched[matched] = True
    unmatched = np.flatnonzero(taking_part & ~is_matched).astype(np.int64)
    # The best BLOCKERS_SHOWN craftsmen of each apprentice, best score first; only the unmatched
    # apprentices' pairs are sorted (a third of a 2,000 x 500 run's 350,000, say).
    mine = np.flatnonzero(~is_matched[candidates.apprentice])
    order = mine[
        np.lexsort(
            (candidates.craftsman[mine], -candidates.score[mine], candidates.apprentice[mine])
        )
    ]
    by_apprentice = candidates.apprentice[order]
    bounds = np.searchsorted(by_apprentice, np.arange(problem.n_apprentices + 1))
    reasons: list[str] = []
    blockers: list[NDArray[np.int64]] = []
    none = np.zeros(0, dtype=np.int64)
    for a in unmatched.tolist():
        if candidates.has_edge[a]:
            reasons.append("capacity_exhausted")
            best = order[bounds[a] : min(bounds[a + 1], bounds[a] + BLOCKERS_SHOWN)]
            blockers.append(candidates.craftsman[best].astype(np.int64))
        elif candidates.excluded_any[a]:
            reasons.append("excluded")
            blockers.append(none)
        else:
            reasons.append("no_eligible_craftsman")
            blockers.append(none)
    return unmatched, reasons, blockers


def _unit_cap_reasons(
    problem: MatchProblem,
    params: MatchParams,
    candidates: Candidates,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
    unmatched: NDArray[np.int64],
    reasons: list[str],
    blockers: list[NDArray[np.int64]],
) -> list[list[dict[str, Any]]]:
    """Turn ``capacity_exhausted`` into ``unit_cap`` (in place) where an eligible craftsman still
    has a free slot after the run and a full cap forbids each such pair; the caps per unmatched.

    At an optimum, an eligible pair with a free slot on both sides is always blocked by a cap
    (adding it would raise the floor total, the count and the score); the check is still made.
    """
    caps: list[list[dict[str, Any]]] = [[] for _ in reasons]
    if not params.has_fair_shares or unmatched.size == 0:
        return caps
    index = UnitIndex.of(problem)
    counts = unit_counts(index, problem, craftsman, apprentice)
    slot_left = problem.craftsman_free - np.bincount(craftsman, minlength=problem.n_craftsmen) > 0
    for i, a in enumerate(unmatched.tolist()):
        if reasons[i] != "capacity_exhausted":
            continue
        mine = candidates.apprentice == a
        open_craftsmen = np.unique(candidates.craftsman[mine & slot_left[candidates.craftsman]])
        if open_craftsmen.size == 0:
            continue
        blocked = [blocking_caps(problem, params, counts, index, int(m), a) for m in open_craftsmen]
        if all(blocked):
            reasons[i] = "unit_cap"
            blockers[i] = open_craftsmen[:BLOCKERS_SHOWN].astype(np.int64)
            seen: list[dict[str, Any]] = []
            for found in blocked:
                seen.extend(cap for cap in found if cap not in seen)
            caps[i] = seen
    return caps


@dataclass(frozen=True)
class PairVerdict:
    """What matching says of one pair."""

    fit: float
    score: float
    explanation: Explanation
    broken: tuple[str, ...]  # every hard constraint the pair breaks, in CONSTRAINTS order

    @property
    def forbidden_by(self) -> str | None:
        """The first constraint the pair breaks (same_unit, below_min_fit, excluded, avoided),
        or None."""
        return self.broken[0] if self.broken else None


def pair_verdict(
    problem: MatchProblem, params: MatchParams, craftsman: int, apprentice: int
) -> PairVerdict:
    """Fit, score and explanation of one pair, and the hard constraints that forbid it."""
    explained = explain_pairs(problem, params, np.array([craftsman]), np.array([apprentice]))
    one = np.array([craftsman], dtype=np.int64), np.array([apprentice], dtype=np.int64)
    broken = broken_constraints(
        craftsman_unit=problem.craftsman_unit[one[0]],
        apprentice_unit=problem.apprentice_unit[one[1]],
        fit=explained.fit,
        min_fit=params.min_fit,
        excluded=excluded_mask(problem.excluded, *one, problem.n_apprentices),
        avoided=excluded_mask(problem.avoided, *one, problem.n_apprentices),
    )
    return PairVerdict(
        fit=float(explained.fit[0]),
        score=float(explained.score[0]),
        explanation=explained,
        broken=tuple(name for name in CONSTRAINTS if broken[name][0]),
    )
