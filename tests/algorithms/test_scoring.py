"""Scores built by sparse products equal the formula of matching.md, pair by pair."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings

from matcher.algorithms import (
    MatchParams,
    MatchProblem,
    candidate_pairs,
    explain_pairs,
    relation_matrix,
)
from tests.algorithms.strategies import Reference, params_strategy, problems


@settings(max_examples=150, deadline=None)
@given(problems(), params_strategy)
def test_every_pair_scores_as_the_formula_says(problem: MatchProblem, params: MatchParams) -> None:
    pairs = candidate_pairs(problem, params)
    reference = Reference(problem, params)
    computed = {
        (int(m), int(a)): (f, s)
        for m, a, f, s in zip(
            pairs.craftsman, pairs.apprentice, pairs.fit, pairs.score, strict=True
        )
    }
    for m in range(problem.n_craftsmen):
        for a in range(problem.n_apprentices):
            fit = reference.fit(m, a)
            if fit > 0:
                assert computed[(m, a)][0] == pytest.approx(fit, abs=1e-12)
                assert computed[(m, a)][1] == pytest.approx(reference.score(m, a), abs=1e-12)
            else:
                assert computed.get((m, a), (0.0, 0.0))[0] == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(problems(), params_strategy)
def test_explanations_add_up_to_the_fit(problem: MatchProblem, params: MatchParams) -> None:
    m, a = np.meshgrid(np.arange(problem.n_craftsmen), np.arange(problem.n_apprentices))
    reference = Reference(problem, params)
    explained = explain_pairs(problem, params, m.ravel(), a.ravel())
    for i, (c, p) in enumerate(zip(m.ravel(), a.ravel(), strict=True)):
        assert explained.fit[i] == pytest.approx(reference.fit(int(c), int(p)), abs=1e-12)
        rows = explained.rows(i)
        assert len(rows) == sp.csr_array(problem.apprentice_wants)[[int(p)]].nnz
        for skill, wanted, _weight, given_skill, level, credit in rows:
            assert 0.0 <= credit <= 1.0
            if given_skill >= 0:
                assert level >= 1 and credit > 0
                assert (
                    given_skill == skill and credit == pytest.approx(min(1.0, level / wanted))
                ) or (credit == pytest.approx(params.related_credit * min(1.0, level / wanted)))


def test_related_credit_via_shared_parent_and_parent_child() -> None:
    # 0 = 焊接 (category), 1 = 氩弧焊 (child of 0), 2 = 钎焊 (child of 0), 3 = unrelated
    parent = np.array([-1, 0, 0, -1], dtype=np.int64)
    related = relation_matrix(parent).toarray()
    assert related.tolist() == [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    problem = MatchProblem(
        craftsman_unit=np.array([0, 0, 0]),
        craftsman_region=np.array([5, -1, 5]),
        craftsman_free=np.array([1, 1, 1]),
        craftsman_skills=sp.csr_array(
            np.array([[0, 0, 4, 0], [5, 0, 0, 0], [0, 2, 0, 5]], dtype=float)
        ),
        apprentice_unit=np.array([1]),
        apprentice_region=np.array([5]),
        apprentice_wants=sp.csr_array(np.array([[0, 4, 0, 5]], dtype=float)),
        apprentice_weights=sp.csr_array(np.array([[0, 3.0, 0, 1.0]])),
        skill_parent=parent,
    )
    params = MatchParams(related_credit=0.5, region_bonus=0.05)
    pairs = candidate_pairs(problem, params)
    got = {int(m): (f, s) for m, f, s in zip(pairs.craftsman, pairs.fit, pairs.score, strict=True)}
    assert got[0] == pytest.approx((0.75 * 0.5, 0.75 * 0.5 + 0.05))  # sibling 钎焊 L4 for 氩弧焊 L4
    assert got[1][0] == pytest.approx(0.75 * 0.5)  # the parent category 焊接
    # exact 氩弧焊 at L2 for target L4 gives 0.5, better than nothing related; 3 at L5 is exact
    assert got[2] == pytest.approx((0.75 * 0.5 + 0.25 * 1.0, 0.75 * 0.5 + 0.25 + 0.05))
