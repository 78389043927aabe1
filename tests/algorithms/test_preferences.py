"""Preferences and availability in the engine (matching.md): the preference bonus in every
method, avoided pairs as hard constraint 6, the rank in the explanation. The property tests of
test_solver.py, test_fairness.py and test_eligibility.py draw ranks and avoid lists too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings

from matcher.algorithms import (
    MatchParams,
    MatchProblem,
    PinnedPairError,
    eligible_pairs,
    explain_pairs,
    pair_verdict,
    solve_match,
)
from matcher.algorithms.pruned import NOT_ELIGIBLE, BlockScorer
from matcher.algorithms.scoring import max_pair_bonus, pair_bonus
from tests.algorithms.strategies import params_strategy, problems

# Every method; flow and milp only solve with a fair-share rule, so they get one that never binds.
METHODS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {}),
    ("components", {}),
    ("sparse", {}),
    ("pruned", {}),
    ("flow", {"max_pairs_per_craftsman_unit": 100}),
    ("milp", {"max_pairs_per_craftsman_unit": 100}),
]


def two_craftsmen(rank: int | None = None, avoided: bool = False) -> MatchProblem:
    """One apprentice (unit 1) and two craftsmen of unit 0 with one slot each.

    The apprentice wants skill 0 (weight 1) and skill 1 (weight 3), both at level 5. Craftsman 0
    has both at level 5 (fit 1); craftsman 1 has skill 0 at level 4 (fit (0.8 + 3) / 4 = 0.95):
    a slightly worse fit. ``rank``: where the apprentice ranked craftsman 1; ``avoided``: the
    apprentice avoids craftsman 0."""
    ranks = (
        sp.csr_array(([rank], ([0], [1])), shape=(1, 2), dtype=np.int64)
        if rank is not None
        else None
    )
    return MatchProblem(
        craftsman_unit=np.array([0, 0]),
        craftsman_region=np.array([-1, -1]),
        craftsman_free=np.array([1, 1]),
        craftsman_skills=sp.csr_array(np.array([[5.0, 5.0], [4.0, 5.0]])),
        apprentice_unit=np.array([1]),
        apprentice_region=np.array([-1]),
        apprentice_wants=sp.csr_array(np.array([[5.0, 5.0]])),
        apprentice_weights=sp.csr_array(np.array([[1.0, 3.0]])),
        skill_parent=np.array([-1, -1]),
        preference_rank=ranks,
        avoided=np.array([[0, 0]] if avoided else [], dtype=np.int64).reshape(-1, 2),
    )


FIT_BEST, FIT_RANKED = 1.0, (0.8 * 1 + 1.0 * 3) / 4  # the fits two_craftsmen describes


@pytest.mark.parametrize(("method", "rules"), METHODS)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("bonus", [0.1, 0.04])
def test_a_ranked_craftsman_wins_exactly_when_the_formula_says(
    method: str, rules: dict[str, Any], rank: int, bonus: float
) -> None:
    params = MatchParams(preference_bonus=bonus, **rules)
    ranked_score = FIT_RANKED + bonus * (4 - rank) / 3  # matching.md, literally
    expected = 1 if ranked_score > FIT_BEST else 0
    result = solve_match(two_craftsmen(rank=rank), params, method=method)  # type: ignore[arg-type]
    assert result.craftsman.tolist() == [expected], (ranked_score, FIT_BEST)
    assert result.score[0] == pytest.approx(max(ranked_score, FIT_BEST), abs=1e-12)
    assert result.fit[0] == pytest.approx([FIT_BEST, FIT_RANKED][expected], abs=1e-12)
    assert result.objective == pytest.approx(max(ranked_score, FIT_BEST), abs=1e-12)


def test_the_cases_above_go_both_ways() -> None:
    """The parametrised cases are not all won by one side: rank 1 at 0.1 beats the better fit,
    rank 3 at 0.1 and every rank at 0.04 do not."""
    assert FIT_RANKED + 0.1 * 3 / 3 > FIT_BEST
    assert FIT_RANKED + 0.1 * 1 / 3 < FIT_BEST
    assert FIT_RANKED + 0.04 * 3 / 3 < FIT_BEST


def test_min_fit_never_sees_the_bonus() -> None:
    """A ranked craftsman whose fit is below min_fit stays ineligible, bonus or not."""
    params = MatchParams(min_fit=0.96, preference_bonus=1.0)
    for method, rules in METHODS:
        result = solve_match(
            two_craftsmen(rank=1),
            MatchParams(**{**params.to_json(), **rules}),
            method=method,  # type: ignore[arg-type]
        )
        assert result.craftsman.tolist() == [0], method


@pytest.mark.parametrize(("method", "rules"), METHODS)
def test_an_avoided_pair_is_never_proposed(method: str, rules: dict[str, Any]) -> None:
    result = solve_match(
        two_craftsmen(avoided=True),
        MatchParams(**rules),
        method=method,  # type: ignore[arg-type]
    )
    assert result.craftsman.tolist() == [1]  # the better fit is avoided


@pytest.mark.parametrize(("method", "rules"), METHODS)
def test_an_apprentice_who_avoids_every_eligible_craftsman_is_excluded(
    method: str, rules: dict[str, Any]
) -> None:
    problem = MatchProblem(
        **{**two_craftsmen().__dict__, "avoided": np.array([[0, 0], [1, 0]], dtype=np.int64)}
    )
    result = solve_match(problem, MatchParams(**rules), method=method)  # type: ignore[arg-type]
    assert result.apprentice.size == 0
    assert result.unmatched_reason == ["excluded"]


def test_a_pin_of_an_avoided_pair_is_refused_naming_it() -> None:
    problem = MatchProblem(
        **{**two_craftsmen(avoided=True).__dict__, "pinned": np.array([[0, 0]], dtype=np.int64)}
    )
    with pytest.raises(PinnedPairError) as raised:
        solve_match(problem, MatchParams())
    assert (raised.value.craftsman, raised.value.apprentice) == (0, 0)
    assert "avoid" in raised.value.reason


def test_a_pin_of_an_excluded_pair_still_holds() -> None:
    """Pins override exclusion (hard constraint 5), never an avoid list: the two differ."""
    problem = MatchProblem(
        **{
            **two_craftsmen().__dict__,
            "excluded": np.array([[1, 0]], dtype=np.int64),
            "pinned": np.array([[1, 0]], dtype=np.int64),
        }
    )
    assert solve_match(problem, MatchParams()).craftsman.tolist() == [1]


def test_the_verdict_names_the_avoid_list_and_the_explanation_the_rank() -> None:
    avoided = pair_verdict(two_craftsmen(avoided=True), MatchParams(), 0, 0)
    assert avoided.broken == ("avoided",)
    ranked = pair_verdict(two_craftsmen(rank=2), MatchParams(), 1, 0)
    assert ranked.forbidden_by is None
    assert ranked.explanation.preference_rank.tolist() == [2]
    assert ranked.score == pytest.approx(FIT_RANKED + 0.1 * 2 / 3, abs=1e-12)
    unranked = pair_verdict(two_craftsmen(rank=2), MatchParams(), 0, 0)
    assert unranked.explanation.preference_rank.tolist() == [0]


def test_the_bonus_bound_holds_for_every_pair() -> None:
    """``max_pair_bonus`` (the coverage bonus and the pruned proof rely on it) bounds what
    ``pair_bonus`` adds, with every bonus at work."""
    problem = MatchProblem(
        **{
            **two_craftsmen(rank=1).__dict__,
            "craftsman_region": np.array([3, 3]),
            "apprentice_region": np.array([3]),
            "apprentice_waited_days": np.array([400.0]),
        }
    )
    params = MatchParams(region_bonus=0.2, waiting_bonus=0.3, preference_bonus=0.4)
    added = pair_bonus(problem, params, np.array([0, 1]), np.array([0, 0]))
    assert added.max() == pytest.approx(max_pair_bonus(params))
    assert (added <= max_pair_bonus(params) + 1e-12).all()


def test_result_explanations_carry_the_rank_of_each_chosen_pair() -> None:
    result = solve_match(two_craftsmen(rank=1), MatchParams())
    explained = explain_pairs(
        two_craftsmen(rank=1), MatchParams(), result.craftsman, result.apprentice
    )
    assert explained.preference_rank.tolist() == [1]


@settings(max_examples=60, deadline=None)
@given(problems(), params_strategy)
def test_pruned_blocks_of_one_apprentice_score_as_the_pair_list(
    problem: MatchProblem, params: MatchParams
) -> None:
    """The pruned scan adds each block's own rows of the sparse ranks: with one apprentice per
    block every row is its own slice, and the gains equal the scores of the eligible pairs."""
    scorer = BlockScorer(
        problem,
        params,
        open_craftsman=np.ones(problem.n_craftsmen, dtype=bool),
        open_apprentice=np.ones(problem.n_apprentices, dtype=bool),
        bonus=0.0,
        block_cells=problem.n_craftsmen,
    )
    gains = np.vstack([block.gain for block in scorer.blocks()])
    listed = eligible_pairs(problem, params)
    np.testing.assert_allclose(gains[listed.apprentice, listed.craftsman], listed.score, atol=1e-12)
    assert int((gains > NOT_ELIGIBLE / 2).sum()) == listed.craftsman.size
