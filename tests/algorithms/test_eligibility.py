"""Pair eligibility has one home: every path that judges pairs agrees with the literal rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from matcher.algorithms import MatchParams, MatchProblem, eligible_pairs, pair_verdict
from matcher.algorithms.pruned import BlockScorer, scan
from matcher.algorithms.scoring import candidate_pairs
from tests.algorithms.strategies import Reference, params_strategy, problems


def _reference_pairs(problem: MatchProblem, params: MatchParams) -> set[tuple[int, int]]:
    reference = Reference(problem, params)
    return {
        (m, a)
        for m in range(problem.n_craftsmen)
        for a in range(problem.n_apprentices)
        if reference.eligible(m, a)
    }


@settings(max_examples=60, deadline=None)
@given(problems(), params_strategy)
def test_solver_pruned_blocks_and_single_pairs_judge_alike(
    problem: MatchProblem, params: MatchParams
) -> None:
    expected = _reference_pairs(problem, params)
    listed = eligible_pairs(problem, params)
    assert set(zip(listed.craftsman.tolist(), listed.apprentice.tolist(), strict=True)) == expected
    # The pruned solver's dense blocks (2-D, broadcast units) find the same pairs.
    scorer = BlockScorer(
        problem,
        params,
        open_craftsman=np.ones(problem.n_craftsmen, dtype=bool),
        open_apprentice=np.ones(problem.n_apprentices, dtype=bool),
        bonus=0.0,
    )
    blocks = scan(scorer, np.ones(problem.n_craftsmen, dtype=np.int64), cache="pairs")
    assert blocks.cached is not None
    in_blocks = {
        (int(c), int(a))
        for part in blocks.cached
        for c, a in zip(part.craftsman, part.apprentice, strict=True)
    }
    assert in_blocks == expected
    # One pair at a time (pair-score, swap): forbidden exactly when not eligible.
    pairs = candidate_pairs(problem, params)
    for m, a in zip(pairs.craftsman.tolist(), pairs.apprentice.tolist(), strict=True):
        verdict = pair_verdict(problem, params, m, a)
        assert (verdict.forbidden_by is None) == ((m, a) in expected)


def test_a_verdict_names_every_constraint_a_pair_breaks() -> None:
    """Swap refuses an excluded pair even when it is also below min_fit: the verdict lists both."""
    problem = MatchProblem(
        craftsman_unit=np.array([0]),
        craftsman_region=np.array([-1]),
        craftsman_free=np.array([1]),
        craftsman_skills=_row([0], [1.0], 2),
        apprentice_unit=np.array([1]),
        apprentice_region=np.array([-1]),
        apprentice_wants=_row([1], [5.0], 2),
        apprentice_weights=_row([1], [1.0], 2),
        skill_parent=np.array([-1, -1]),
        excluded=np.array([[0, 0]]),
    )
    verdict = pair_verdict(problem, MatchParams(), 0, 0)
    assert verdict.broken == ("below_min_fit", "excluded")
    assert verdict.forbidden_by == "below_min_fit"


def _row(cols: list[int], values: list[float], n: int) -> object:
    import scipy.sparse as sp

    return sp.csr_array((values, ([0] * len(cols), cols)), shape=(1, n))
