"""Fair shares between member units: each rule binds, the lexicographic optimum is exact (brute
force on tiny alliances, the two formulations against each other on larger ones)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.algorithms import (
    MatchParams,
    MatchProblem,
    MatchResult,
    PinnedCapError,
    fairness,
    solve_match,
)
from tests.algorithms.strategies import Reference, params_strategy, problems

caps = st.none() | st.integers(1, 3)
fair_params = st.builds(
    lambda base, per_unit, per_pair, floor: replace(
        base,
        max_pairs_per_craftsman_unit=per_unit,
        max_pairs_per_unit_pair=per_pair,
        min_pairs_per_apprentice_unit=floor,
    ),
    params_strategy,
    caps,
    caps,
    st.none() | st.integers(0, 3),
)


@st.composite
def contended(draw: st.DrawFn, max_craftsmen: int = 3, max_apprentices: int = 6) -> MatchProblem:
    """A tiny alliance where units compete: one or two skills that most people share, few
    slots, two to four units, regions that give bonuses."""
    m = draw(st.integers(1, max_craftsmen))
    a = draw(st.integers(3, max_apprentices))
    units = draw(st.integers(2, 3))

    def people(count: int, low: int) -> sp.csr_array:
        # Craftsmen at levels 1-3 and wants at 3-5: fits spread out instead of tying at 1.
        levels = st.integers(low, low + 2).map(float)
        rows = [[draw(levels), draw(st.sampled_from([0.0, 0.0, 3.0]))] for _ in range(count)]
        return sp.csr_array(np.array(rows))

    wants = people(a, 3)
    return MatchProblem(
        craftsman_unit=np.array(draw(st.lists(st.integers(0, units - 1), min_size=m, max_size=m))),
        craftsman_region=np.array(draw(st.lists(st.integers(-1, 1), min_size=m, max_size=m))),
        craftsman_free=np.array(draw(st.lists(st.integers(1, 2), min_size=m, max_size=m))),
        craftsman_skills=people(m, 1),
        apprentice_unit=np.array(draw(st.lists(st.integers(0, units - 1), min_size=a, max_size=a))),
        apprentice_region=np.array(draw(st.lists(st.integers(-1, 1), min_size=a, max_size=a))),
        apprentice_wants=wants,
        apprentice_weights=sp.csr_array((wants > 0).astype(np.float64)),
        skill_parent=np.array([-1, 0]),
    )


contended_params = st.builds(
    MatchParams,
    objective=st.sampled_from(["score", "coverage"]),
    min_fit=st.sampled_from([0.1, 0.5]),
    region_bonus=st.sampled_from([0.05, 0.2]),
    max_pairs_per_craftsman_unit=st.none() | st.integers(1, 2),
    max_pairs_per_unit_pair=st.none() | st.integers(1, 2),
    min_pairs_per_apprentice_unit=st.integers(1, 2),
)

Key = tuple[int, int, float]  # (floor total, pairs, total score)


def units_of(result: MatchResult) -> dict[int, dict[str, int]]:
    return {row["unit_id"]: row for row in result.stats["units"]}


def key_of(params: MatchParams, result: MatchResult) -> Key:
    k = params.min_pairs_per_apprentice_unit or 0
    floor = sum(min(row["pairs_as_apprentice_unit"], k) for row in units_of(result).values())
    return floor, int(result.apprentice.size), float(result.objective)


def brute_force(problem: MatchProblem, params: MatchParams) -> Key:
    """matching.md's fair-share objective by enumeration: (floor total, pairs, score), with
    the pairs counted only when the objective is "coverage"."""
    reference = Reference(problem, params)
    m, a = problem.n_craftsmen, problem.n_apprentices
    pins = {int(p): int(c) for c, p in problem.pinned}
    options = [
        [pins[p]] if p in pins else [None] + [c for c in range(m) if reference.eligible(c, p)]
        for p in range(a)
    ]
    k = params.min_pairs_per_apprentice_unit or 0
    best: tuple[int, int, float] | None = None
    best_key: Key = (0, 0, 0.0)
    for choice in itertools.product(*options):
        pairs = [(c, p) for p, c in enumerate(choice) if c is not None]
        used = np.bincount([c for c, _ in pairs], minlength=m)
        if (used > problem.craftsman_free).any():
            continue
        x = [int(problem.craftsman_unit[c]) for c, _ in pairs]
        y = [int(problem.apprentice_unit[p]) for _, p in pairs]
        per_unit = params.max_pairs_per_craftsman_unit
        if per_unit is not None and any(x.count(u) > per_unit for u in set(x)):
            continue
        per_pair = params.max_pairs_per_unit_pair
        xy = list(zip(x, y, strict=True))
        if per_pair is not None and any(xy.count(u) > per_pair for u in set(xy)):
            continue
        units = set(problem.craftsman_unit.tolist()) | set(problem.apprentice_unit.tolist())
        floor = sum(min(y.count(u), k) for u in units)
        total = sum(reference.score(c, p) for c, p in pairs)
        count = len(pairs) if params.objective == "coverage" else 0
        candidate = (floor, count, total)
        if (
            best is None
            or candidate[:2] > best[:2]
            or (candidate[:2] == best[:2] and total > best[2] + 1e-12)
        ):
            best = candidate
            best_key = (floor, len(pairs), total)
    assert best is not None  # choosing nobody is always allowed
    return best_key


def assert_same_optimum(params: MatchParams, found: Key, expected: Key) -> None:
    assert found[0] == expected[0]  # the floor total comes first
    if params.objective == "coverage":
        assert found[1] == expected[1]
    assert found[2] == pytest.approx(expected[2], abs=1e-6)


def check_rules(problem: MatchProblem, params: MatchParams, result: MatchResult) -> None:
    """The hard constraints and the caps hold (pins included)."""
    assert len(set(result.apprentice.tolist())) == result.apprentice.size
    used = np.bincount(result.craftsman, minlength=problem.n_craftsmen)
    assert (used <= problem.craftsman_free).all()
    x = problem.craftsman_unit[result.craftsman]
    y = problem.apprentice_unit[result.apprentice]
    if params.max_pairs_per_craftsman_unit is not None:
        assert np.bincount(x).max(initial=0) <= params.max_pairs_per_craftsman_unit
    if params.max_pairs_per_unit_pair is not None:
        pairs = np.unique(np.column_stack([x, y]), axis=0, return_counts=True)[1]
        assert pairs.max(initial=0) <= params.max_pairs_per_unit_pair


@settings(max_examples=200, deadline=None)
@given(
    problems(max_craftsmen=3, max_apprentices=6, max_skills=3, max_free=2) | contended(),
    fair_params | contended_params,
)
def test_every_fair_method_reaches_the_brute_force_optimum(
    problem: MatchProblem, params: MatchParams
) -> None:
    expected = brute_force(problem, params)
    for method in ("flow", "milp", "auto"):
        result = solve_match(problem, params, method=method)  # type: ignore[arg-type]
        check_rules(problem, params, result)
        assert_same_optimum(params, key_of(params, result), expected)
        with starved_column_generation():
            result = solve_match(problem, params, method=method)  # type: ignore[arg-type]
        check_rules(problem, params, result)
        assert_same_optimum(params, key_of(params, result), expected)


@contextmanager
def starved_column_generation() -> Iterator[None]:
    """Column generation from one pair per apprentice and none per craftsman, one column
    entering per round: every other pair has to be priced in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fairness, "FIRST_PER_APPRENTICE", 1)
        patch.setattr(fairness, "FIRST_PER_CRAFTSMAN_EXTRA", -100)
        patch.setattr(fairness, "MAX_ENTERING", 1)
        yield


@settings(max_examples=80, deadline=None)
@given(
    problems(max_craftsmen=8, max_apprentices=14, max_skills=4, max_free=2)
    | contended(max_craftsmen=8, max_apprentices=16),
    fair_params | contended_params,
)
def test_flow_and_milp_agree_on_larger_alliances(
    problem: MatchProblem, params: MatchParams
) -> None:
    flow = solve_match(problem, params, method="flow")
    milp = solve_match(problem, params, method="milp")
    with starved_column_generation():
        starved = solve_match(problem, params, method="milp")
    for result in (flow, milp, starved):
        check_rules(problem, params, result)
        assert_same_optimum(params, key_of(params, result), key_of(params, flow))


@settings(max_examples=60, deadline=None)
@given(problems(max_craftsmen=8, max_apprentices=14), params_strategy)
def test_caps_that_never_bind_give_the_assignment_optimum(
    problem: MatchProblem, params: MatchParams
) -> None:
    """The network formulation against the assignment solvers: loose caps change nothing."""
    plain = solve_match(problem, params, method="dense")
    for method in ("flow", "milp"):
        loose = replace(params, max_pairs_per_craftsman_unit=1000, max_pairs_per_unit_pair=1000)
        fair = solve_match(problem, loose, method=method)  # type: ignore[arg-type]
        assert fair.objective == pytest.approx(plain.objective, abs=1e-6)
        assert fair.apprentice.size == plain.apprentice.size or params.objective == "score"


def alliance(**overrides: object) -> MatchProblem:
    """Craftsmen 0, 1 of unit 10 (excellent), 2 of unit 11 (weaker), each with 2 slots, all
    teaching skill 0; apprentices 0-3 of unit 12 and 4-5 of unit 13 want skill 0."""
    base: dict[str, object] = {
        "craftsman_unit": np.array([10, 10, 11]),
        "craftsman_region": np.array([-1, -1, -1]),
        "craftsman_free": np.array([2, 2, 2]),
        "craftsman_skills": sp.csr_array(np.array([[5.0], [5.0], [3.0]])),
        "apprentice_unit": np.array([12, 12, 12, 12, 13, 13]),
        "apprentice_region": np.full(6, -1),
        "apprentice_wants": sp.csr_array(np.array([[5.0]] * 4 + [[4.0]] * 2)),
        "apprentice_weights": sp.csr_array(np.ones((6, 1))),
        "skill_parent": np.array([-1]),
        "units": np.array([10, 11, 12, 13, 14]),
    }
    base.update(overrides)
    return MatchProblem(**base)  # type: ignore[arg-type]


def shares(result: MatchResult) -> dict[int, tuple[int, int, int]]:
    return {
        row["unit_id"]: (
            row["pairs_as_craftsman_unit"],
            row["pairs_as_apprentice_unit"],
            row["floor_shortfall"],
        )
        for row in result.stats["units"]
    }


def test_the_craftsman_unit_cap_binds() -> None:
    # Without the cap unit 10's two excellent craftsmen take 4 of the 6 apprentices.
    free = solve_match(alliance(), MatchParams())
    assert shares(free)[10][0] == 4
    capped = solve_match(alliance(), MatchParams(max_pairs_per_craftsman_unit=3))
    assert shares(capped)[10][0] == 3 and shares(capped)[11][0] == 2
    assert capped.objective < free.objective
    assert capped.stats["method"] == "flow"
    # Apprentice 5 is left while craftsman 0 or 1 still has a slot: the cap, named, is why.
    reasons = dict(zip(capped.unmatched.tolist(), capped.unmatched_reason, strict=True))
    assert list(reasons.values()) == ["unit_cap"]
    where = capped.unmatched.tolist().index(next(iter(reasons)))
    assert capped.unmatched_caps[where] == [
        {"cap": "max_pairs_per_craftsman_unit", "craftsman_unit": 10, "apprentice_unit": None}
    ]
    assert set(capped.unmatched_blockers[where].tolist()) <= {0, 1}


def test_the_unit_pair_cap_binds() -> None:
    free = solve_match(alliance(), MatchParams())
    pairs_10_12 = sum(
        1 for c, a in zip(free.craftsman, free.apprentice, strict=True) if c in (0, 1) and a < 4
    )
    assert pairs_10_12 == 4
    capped = solve_match(alliance(), MatchParams(max_pairs_per_unit_pair=2))
    assert capped.stats["method"] == "milp"
    x = alliance().craftsman_unit[capped.craftsman]
    y = alliance().apprentice_unit[capped.apprentice]
    assert max(list(zip(x, y, strict=True)).count(p) for p in set(zip(x, y, strict=True))) <= 2
    # Unit 10 still teaches four: two to each apprentice unit.
    assert shares(capped)[10][0] == 4 and capped.apprentice.size == 6
    assert capped.objective < free.objective


def test_the_floor_comes_before_the_score() -> None:
    # Two slots: the best pairs are unit 12's apprentices 0 and 1 (a region bonus); a floor of 1
    # gives one of the slots to unit 13.
    problem = alliance(
        craftsman_free=np.array([2, 0, 0]),
        craftsman_region=np.array([7, -1, -1]),
        apprentice_region=np.array([7, 7, -1, -1, -1, -1]),
    )
    best = solve_match(problem, MatchParams())
    assert best.apprentice.tolist() == [0, 1]
    floored = solve_match(problem, MatchParams(min_pairs_per_apprentice_unit=1))
    assert floored.apprentice[0] in (0, 1) and floored.apprentice[1] in (4, 5)
    assert floored.objective < best.objective
    # Unit 14 has no apprentices at all and falls short by one: the floor is soft.
    assert shares(floored)[12] == (0, 1, 0)
    assert shares(floored)[13] == (0, 1, 0)
    assert shares(floored)[14] == (0, 0, 1)
    assert shares(floored)[10] == (2, 0, 1)
    assert floored.stats["floor_total"] == 2


def test_the_floor_comes_before_coverage() -> None:
    # Three slots for six apprentices: a floor of 2 asks for two pairs of each unit, which the
    # three slots cannot give; the floor total (3) comes first, then the count, then the score.
    problem = alliance(
        craftsman_free=np.array([1, 1, 1]),
        apprentice_wants=sp.csr_array(np.array([[5.0]] * 4 + [[5.0]] * 2)),
    )
    params = MatchParams(objective="coverage", min_pairs_per_apprentice_unit=2)
    result = solve_match(problem, params)
    expected = brute_force(problem, params)
    assert key_of(params, result)[:2] == expected[:2]
    assert shares(result)[12][1] == 2 and shares(result)[13][1] == 1


def test_pins_count_toward_the_caps_and_the_floor() -> None:
    pinned = alliance(pinned=np.array([[2, 4], [2, 5]]))
    result = solve_match(pinned, MatchParams(max_pairs_per_craftsman_unit=2))
    assert shares(result)[11][0] == 2 and shares(result)[10][0] == 2
    chosen = zip(result.apprentice.tolist(), result.craftsman.tolist(), strict=True)
    assert {(4, 2), (5, 2)} <= set(chosen)


def test_pins_that_break_a_cap_raise_naming_it_and_the_units() -> None:
    pinned = alliance(pinned=np.array([[0, 0], [1, 1], [0, 4]]))
    with pytest.raises(PinnedCapError, match="max_pairs_per_craftsman_unit = 2") as caught:
        solve_match(pinned, MatchParams(max_pairs_per_craftsman_unit=2))
    (breach,) = caught.value.breaches
    assert (breach.cap, breach.craftsman_unit, breach.apprentice_unit) == (
        "max_pairs_per_craftsman_unit",
        10,
        None,
    )
    with pytest.raises(PinnedCapError, match="unit 10 and apprentices of unit 12") as caught:
        solve_match(pinned, MatchParams(max_pairs_per_unit_pair=1))
    assert [(b.craftsman_unit, b.apprentice_unit, b.pairs) for b in caught.value.breaches] == [
        (10, 12, 2)
    ]


def test_runs_without_rules_keep_todays_path_and_report_units() -> None:
    result = solve_match(alliance(), MatchParams())
    assert result.stats["method"] == "dense"
    assert [row["unit_id"] for row in result.stats["units"]] == [10, 11, 12, 13, 14]
    assert all(row["floor_shortfall"] == 0 for row in result.stats["units"])
    assert sum(row["pairs_as_craftsman_unit"] for row in result.stats["units"]) == 6
