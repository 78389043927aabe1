"""Every method reaches the exact optimum of dense LSA; all hard constraints hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.algorithms import MatchParams, MatchProblem, PinnedPairError, solve_match
from matcher.algorithms.assignment import Edges, solve_dense, solve_sparse
from matcher.algorithms.pruned import (
    BLOCK_CELLS,
    MANY_BLOCKS,
    ONE_BLOCK,
    BlockScorer,
    Cache,
    CraftsmenBest,
    Pruning,
    cells_where,
    nearby_suffices,
    pruning_for,
    solve_pruned,
)
from matcher.algorithms.solver import coverage_bonus
from tests.algorithms.strategies import Reference, params_strategy, problems

METHODS = ("dense", "components", "sparse", "pruned")


def check_constraints(problem: MatchProblem, params: MatchParams, result: object) -> None:
    craftsman, apprentice = result.craftsman, result.apprentice  # type: ignore[attr-defined]
    assert len(set(apprentice.tolist())) == apprentice.size  # each apprentice at most once
    used = np.bincount(craftsman, minlength=problem.n_craftsmen)
    assert (used <= problem.craftsman_free).all()  # capacity
    reference = Reference(problem, params)
    pinned = {(int(c), int(a)) for c, a in problem.pinned}
    for c, a, s in zip(craftsman, apprentice, result.score, strict=True):  # type: ignore[attr-defined]
        if (int(c), int(a)) not in pinned:
            assert reference.eligible(int(c), int(a))
        assert s == pytest.approx(reference.score(int(c), int(a)), abs=1e-9)
    assert pinned <= set(zip(craftsman.tolist(), apprentice.tolist(), strict=True))


@settings(max_examples=200, deadline=None)
@given(problems(), params_strategy)
def test_every_method_reaches_the_dense_optimum(problem: MatchProblem, params: MatchParams) -> None:
    results = {method: solve_match(problem, params, method=method) for method in METHODS}
    reference = results["dense"]
    for method, result in results.items():
        check_constraints(problem, params, result)
        assert result.objective == pytest.approx(reference.objective, abs=1e-9), method
        if params.objective == "coverage":
            assert result.apprentice.size == reference.apprentice.size, method


@settings(max_examples=120, deadline=None)
@given(problems(max_craftsmen=3, max_apprentices=5, max_skills=5), params_strategy)
def test_the_optimum_matches_brute_force(problem: MatchProblem, params: MatchParams) -> None:
    matched, total = Reference(problem, params).brute_force()
    for method in METHODS:
        result = solve_match(problem, params, method=method)
        assert result.objective == pytest.approx(total, abs=1e-9), method
        if params.objective == "coverage":
            assert result.apprentice.size == matched, method


@settings(max_examples=60, deadline=None)
@given(problems(), st.data())
def test_pinned_pairs_are_kept_and_the_rest_optimised(
    problem: MatchProblem, data: st.DataObject
) -> None:
    avoided = {(int(c), int(a)) for c, a in problem.avoided}
    candidates = [
        (c, a)
        for c in range(problem.n_craftsmen)
        for a in range(problem.n_apprentices)
        if problem.craftsman_unit[c] != problem.apprentice_unit[a]
        and problem.craftsman_free[c] > 0
        and (c, a) not in avoided
    ]
    if not candidates:
        return
    pin = data.draw(st.sampled_from(candidates))
    pinned = MatchProblem(**{**problem.__dict__, "pinned": np.array([pin], dtype=np.int64)})
    params = MatchParams()
    results = [solve_match(pinned, params, method=m) for m in METHODS]
    for result in results:
        check_constraints(pinned, params, result)
        assert result.objective == pytest.approx(results[0].objective, abs=1e-9)


def tiny(**overrides: object) -> MatchProblem:
    base: dict[str, object] = {
        "craftsman_unit": np.array([0, 1]),
        "craftsman_region": np.array([-1, -1]),
        "craftsman_free": np.array([1, 1]),
        "craftsman_skills": sp.csr_array(np.array([[5.0, 0.0], [0.0, 5.0]])),
        "apprentice_unit": np.array([1, 0, 1]),
        "apprentice_region": np.array([-1, -1, -1]),
        "apprentice_wants": sp.csr_array(np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])),
        "apprentice_weights": sp.csr_array(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])),
        "skill_parent": np.array([-1, -1]),
    }
    base.update(overrides)
    return MatchProblem(**base)  # type: ignore[arg-type]


def test_reason_codes() -> None:
    # Apprentice 1 wants skill 0, taught only by craftsman 0 of its own unit; apprentice 2 wants
    # skill 1, taught only by craftsman 1 of its own unit.
    result = solve_match(tiny(), MatchParams())
    assert result.apprentice.tolist() == [0] and result.craftsman.tolist() == [0]
    assert dict(zip(result.unmatched.tolist(), result.unmatched_reason, strict=True)) == {
        1: "no_eligible_craftsman",
        2: "no_eligible_craftsman",
    }
    excluded = solve_match(tiny(excluded=np.array([[0, 0]])), MatchParams())
    assert (
        dict(zip(excluded.unmatched.tolist(), excluded.unmatched_reason, strict=True))[0]
        == "excluded"
    )
    # Two apprentices of unit 1 want skill 0; craftsman 0 has one slot.
    crowded = tiny(
        apprentice_unit=np.array([1, 1, 1]),
        apprentice_wants=sp.csr_array(np.array([[3.0, 0], [4.0, 0], [0, 3.0]])),
    )
    result = solve_match(crowded, MatchParams())
    reasons = dict(zip(result.unmatched.tolist(), result.unmatched_reason, strict=True))
    assert "capacity_exhausted" in reasons.values()
    loser = next(a for a, r in reasons.items() if r == "capacity_exhausted")
    assert result.unmatched_blockers[result.unmatched.tolist().index(loser)].tolist() == [0]


def test_coverage_places_more_apprentices_than_score() -> None:
    # Craftsman 0 teaches both skills; craftsman 1 only skill 1 at a low level. "score" gives
    # craftsman 0 to the best pair; "coverage" places both apprentices.
    problem = tiny(
        craftsman_unit=np.array([0, 0]),
        craftsman_skills=sp.csr_array(np.array([[5.0, 5.0], [0.0, 2.0]])),
        apprentice_unit=np.array([1, 1, 1]),
        apprentice_wants=sp.csr_array(np.array([[5.0, 5.0], [0.0, 0.0], [0.0, 5.0]])),
        apprentice_weights=sp.csr_array(np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])),
    )
    by_score = solve_match(problem, MatchParams(objective="score", min_fit=0.2))
    by_coverage = solve_match(problem, MatchParams(objective="coverage", min_fit=0.2))
    assert by_coverage.apprentice.size >= by_score.apprentice.size
    assert by_coverage.apprentice.size == 2


def test_impossible_pins_raise_naming_the_pair() -> None:
    with pytest.raises(PinnedPairError, match=r"\[0, 1\].*same unit") as caught:
        solve_match(tiny(pinned=np.array([[0, 1]])), MatchParams())
    assert (caught.value.craftsman, caught.value.apprentice) == (0, 1)
    with pytest.raises(PinnedPairError, match="no free slot"):
        solve_match(tiny(pinned=np.array([[0, 0], [0, 2]])), MatchParams())
    with pytest.raises(PinnedPairError, match="more than once"):
        solve_match(
            tiny(craftsman_unit=np.array([0, 2]), pinned=np.array([[0, 0], [1, 0]])), MatchParams()
        )


@settings(max_examples=30, deadline=None)
@given(problems(), params_strategy)
def test_same_input_same_pairs(problem: MatchProblem, params: MatchParams) -> None:
    first = solve_match(problem, params)
    second = solve_match(problem, params)
    assert first.craftsman.tolist() == second.craftsman.tolist()
    assert first.apprentice.tolist() == second.apprentice.tolist()


def pruned_against_dense(problem: MatchProblem, params: MatchParams, **options: Any) -> Any:
    """The pruned solver with every slot and apprentice open and ``options``, its objective
    checked against dense LSA's (the coverage bonus taken off again); its result."""
    bonus = coverage_bonus(problem, params) if params.objective == "coverage" else 0.0
    pruned = solve_pruned(
        problem,
        params,
        free=problem.craftsman_free.astype(np.int64),
        open_apprentice=np.ones(problem.n_apprentices, dtype=bool),
        bonus=bonus,
        **options,
    )
    reference = solve_match(problem, params, method="dense")
    assert float((pruned.edges.gain[pruned.picked] - bonus).sum()) == pytest.approx(
        reference.objective, abs=1e-9
    )
    if params.objective == "coverage":
        assert pruned.picked.size == reference.apprentice.size
    return pruned


@settings(max_examples=150, deadline=None)
@given(
    problems(max_craftsmen=10, max_apprentices=16),
    params_strategy,
    st.sampled_from(["blocks", "pairs", "none"]),
)
def test_a_tightly_pruned_graph_is_repaired_until_proven_optimal(
    problem: MatchProblem, params: MatchParams, cache: Cache
) -> None:
    # Keep one pair per apprentice and none extra per craftsman: the proof must find and add
    # every pair the optimum needs.
    pruned_against_dense(
        problem,
        params,
        pruning=Pruning(keep_per_apprentice=1, keep_per_craftsman_extra=0),
        cache=cache,  # re-scans the kept blocks, the cached pairs, or re-scored blocks
    )


def random_alliance(seed: int, apprentices: int, craftsmen: int) -> MatchProblem:
    """A mid-sized seeded alliance (12 skills under 3 parents, 4 units, capacities 1-3)."""
    rng = np.random.default_rng(seed)
    n_skills = 12
    parent = np.where(np.arange(n_skills) < 3, -1, np.arange(n_skills) % 3).astype(np.int64)

    def levels(rows: int, per_row: int) -> sp.csr_array:
        dense = np.zeros((rows, n_skills))
        for row in range(rows):
            chosen = rng.choice(n_skills, size=rng.integers(1, per_row + 1), replace=False)
            dense[row, chosen] = rng.integers(1, 6, size=chosen.size)
        return sp.csr_array(dense)

    wants = levels(apprentices, 3)
    weights = wants.copy()
    weights.data = rng.choice([1.0, 2.0], size=weights.data.size)
    return MatchProblem(
        craftsman_unit=rng.integers(0, 4, size=craftsmen).astype(np.int64),
        craftsman_region=rng.integers(-1, 3, size=craftsmen).astype(np.int64),
        craftsman_free=rng.integers(1, 4, size=craftsmen).astype(np.int64),
        craftsman_skills=levels(craftsmen, 4),
        apprentice_unit=rng.integers(0, 4, size=apprentices).astype(np.int64),
        apprentice_region=rng.integers(-1, 3, size=apprentices).astype(np.int64),
        apprentice_wants=wants,
        apprentice_weights=weights,
        skill_parent=parent,
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["score", "coverage"])
def test_the_graph_reshaped_to_near_tight_pairs_keeps_the_optimum(
    seed: int, objective: str
) -> None:
    # A tightly pruned first graph leaves violations; the second graph is then the pairs near
    # tight under the first potentials (smaller than the first graph), and the proof still holds.
    problem = random_alliance(seed, apprentices=80, craftsmen=24)
    params = MatchParams(objective=objective)  # type: ignore[arg-type]
    pruned = pruned_against_dense(
        problem, params, pruning=Pruning(keep_per_apprentice=3, keep_per_craftsman_extra=1)
    )
    assert pruned.reshaped


@settings(max_examples=100, deadline=None)
@given(
    problems(max_craftsmen=10, max_apprentices=16),
    params_strategy,
    st.sampled_from([0.0, 0.03, 0.3, 100.0]),
)
def test_any_active_margin_reaches_the_optimum(
    problem: MatchProblem, params: MatchParams, margin: float
) -> None:
    # The margin only decides which pairs the second graph holds (none near: the chosen and the
    # violating ones; all of them: no reshaping); the proof over every pair decides the end.
    pruned_against_dense(
        problem,
        params,
        pruning=Pruning(keep_per_apprentice=1, keep_per_craftsman_extra=0, active_margin=margin),
    )


@settings(max_examples=100, deadline=None)
@given(
    problems(max_craftsmen=10, max_apprentices=16),
    params_strategy,
    st.sampled_from([0.0, 0.02, 0.3, 100.0]),
    st.sampled_from(["blocks", "pairs", "none"]),
)
def test_any_grow_margin_reaches_the_optimum(
    problem: MatchProblem, params: MatchParams, grow_margin: float, cache: Cache
) -> None:
    # Later rounds that add the pairs near violating too (as one-block problems do) only grow
    # the graph faster; the proof over every pair still decides the end.
    pruned_against_dense(
        problem,
        params,
        pruning=Pruning(keep_per_apprentice=1, keep_per_craftsman_extra=0, grow_margin=grow_margin),
        cache=cache,
    )


@pytest.mark.parametrize("seed", range(6))
def test_one_block_and_many_blocks_pruning_reach_the_same_optimum(seed: int) -> None:
    # The two sizes' settings, each on a mid-sized alliance, against dense LSA.
    problem = random_alliance(seed, apprentices=80, craftsmen=24)
    for pruning in (ONE_BLOCK, MANY_BLOCKS):
        pruned_against_dense(problem, MatchParams(), pruning=pruning)
    assert pruning_for(80 * 24) is ONE_BLOCK
    assert pruning_for(BLOCK_CELLS + 1) is MANY_BLOCKS


@pytest.mark.parametrize("seed", range(4))
def test_each_craftsmans_best_pairs_are_the_same_scanned_in_small_blocks(seed: int) -> None:
    # Block by block, only cells above a craftsman's running threshold are looked at; the kept
    # gains must be each craftsman's best over all apprentices, as one block sees them.
    problem = random_alliance(seed, apprentices=90, craftsmen=24)
    params = MatchParams()
    free = problem.craftsman_free.astype(np.int64)

    def kept_gains(block_cells: int) -> list[list[float]]:
        scorer = BlockScorer(
            problem,
            params,
            open_craftsman=free > 0,
            open_apprentice=np.ones(problem.n_apprentices, dtype=bool),
            bonus=0.0,
            block_cells=block_cells,
        )
        best = CraftsmenBest.empty(np.minimum(free + 1, problem.n_apprentices))
        blocks = 0
        for block in scorer.blocks():
            best = best.merged(block.gain, block.apprentices.start)
            blocks += 1
        assert blocks == -(-problem.n_apprentices // max(1, block_cells // problem.n_craftsmen))
        return [sorted(best.gain[best.craftsman == m].tolist()) for m in range(free.size)]

    assert kept_gains(5 * problem.n_craftsmen) == kept_gains(10**9)


@settings(max_examples=100, deadline=None)
@given(
    problems(max_craftsmen=10, max_apprentices=16),
    params_strategy,
    st.sampled_from([0.0, 0.01, 0.25, 100.0]),
)
def test_pricing_only_the_pairs_kept_near_violating_reaches_the_optimum(
    problem: MatchProblem, params: MatchParams, keep_slack: float
) -> None:
    # Without the cache, later rounds price only the pairs kept within keep_slack of violating
    # while the potentials moved less than that, and re-score every block otherwise.
    pruned_against_dense(
        problem,
        params,
        pruning=Pruning(keep_per_apprentice=1, keep_per_craftsman_extra=0),
        cache="none",
        keep_slack=keep_slack,
    )


def test_the_kept_pairs_suffice_only_while_the_potentials_move_less_than_their_slack() -> None:
    then_a, then_m = np.array([1.0, 2.0]), np.array([0.5, 0.0])
    # Apprentices down by 0.1, craftsmen up by 0.1: a pair left out with slack 0.25 keeps 0.05.
    assert nearby_suffices(then_a - 0.1, then_m + 0.1, then_a, then_m, 0.25)
    # One apprentice down by 0.2: that pair could now be at -0.05, a violation.
    assert not nearby_suffices(then_a - [0.1, 0.2], then_m + 0.1, then_a, then_m, 0.25)
    # A common shift of every potential changes no slack.
    assert nearby_suffices(then_a + 7.0, then_m + 7.0, then_a, then_m, 0.01)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 8),
    st.data(),
    st.sampled_from([0.0, 100.0]),
)
def test_the_sparse_solver_with_and_without_dummy_columns_matches_dense_lsa(
    n_craftsmen: int, n_apprentices: int, data: st.DataObject, bonus: float
) -> None:
    # With a bonus larger than any spread of scores (coverage), every row matched is tried
    # without dummy columns first; rows that cannot all be matched fall back to them. Either
    # way: dense LSA's optimum.
    free = np.array(
        data.draw(st.lists(st.integers(0, 3), min_size=n_craftsmen, max_size=n_craftsmen))
    )
    cells = [(m, a) for m in range(n_craftsmen) for a in range(n_apprentices)]
    chosen = data.draw(st.lists(st.sampled_from(cells), unique=True, max_size=len(cells)))
    scores = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(chosen), max_size=len(chosen)))
    edges = Edges(
        np.array([m for m, _ in chosen], dtype=np.int64),
        np.array([a for _, a in chosen], dtype=np.int64),
        np.array(scores, dtype=np.float64) + bonus,
    )
    sparse = solve_sparse(edges, free, n_apprentices)
    dense = solve_dense(edges, free, n_apprentices)
    assert edges.gain[sparse].sum() == pytest.approx(edges.gain[dense].sum(), abs=1e-9)
    assert (np.bincount(edges.craftsman[sparse], minlength=n_craftsmen) <= free).all()
    assert np.unique(edges.apprentice[sparse]).size == sparse.size


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 7), st.integers(0, 9), st.data())
def test_the_cells_of_a_mask_are_numpys_nonzero_in_the_same_order(
    n_rows: int, n_columns: int, data: st.DataObject
) -> None:
    # Pricing and the pair cache list a block's cells from flat positions; they must be
    # np.nonzero's rows and columns, row-major, and the flat positions must address the cells.
    cells = data.draw(
        st.lists(st.booleans(), min_size=n_rows * n_columns, max_size=n_rows * n_columns)
    )
    mask = np.array(cells, dtype=bool).reshape(n_rows, n_columns)
    values = np.arange(mask.size, dtype=np.float64).reshape(mask.shape) * 0.5
    flat, rows, columns = cells_where(mask)
    expected_rows, expected_columns = np.nonzero(mask)
    assert rows.tolist() == expected_rows.tolist()
    assert columns.tolist() == expected_columns.tolist()
    assert values.reshape(-1)[flat].tolist() == values[expected_rows, expected_columns].tolist()
