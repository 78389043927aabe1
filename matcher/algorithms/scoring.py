"""Fit and score of every craftsman × apprentice pair, as sparse matrix products.

For a wanted skill ``t`` at target level ``L`` the credit of a craftsman is
``max(exact, related_credit * related)`` with ``exact = min(1, l_t / L)`` and
``related = max over skills s related to t of min(1, l_s / L)``. Levels are integers 1..5, so
the related maximum is a sum of nested thresholds: ``sum_k (min(1, k/L) - min(1, (k-1)/L)) *
[some related skill at level >= k]``, and every "some related skill at level >= k" is one
sparse product with the relation matrix. The fit numerator is then one product per target level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.algorithms.eligibility import pair_keys
from matcher.algorithms.params import MatchParams
from matcher.algorithms.problem import MatchProblem

LEVELS = (1, 2, 3, 4, 5)


def relation_matrix(skill_parent: NDArray[np.int64]) -> sp.csr_array:
    """(S, S) 0/1: skills that share a parent, or where one is the other's parent (no diagonal)."""
    n = skill_parent.shape[0]
    child = np.flatnonzero(skill_parent >= 0)
    parent_of = sp.csr_array(
        (np.ones(child.size), (child, skill_parent[child])), shape=(n, n), dtype=np.float64
    )
    related = parent_of @ parent_of.T + parent_of + parent_of.T
    related = sp.csr_array(related)
    related.setdiag(0)
    related.eliminate_zeros()
    related.data[:] = 1.0
    return related


def skill_family(skill_parent: NDArray[np.int64]) -> sp.csr_array:
    """(S, S) 0/1: the skills that earn credit for a wanted skill, itself and its related ones."""
    n = skill_parent.shape[0]
    family = relation_matrix(skill_parent) + sp.eye_array(n, format="csr")
    return sp.csr_array(family)


def wants_covered(
    craftsman_skills: sp.csr_array, apprentice_wants: sp.csr_array, skill_parent: NDArray[np.int64]
) -> NDArray[np.int64]:
    """(A, M): how many of each apprentice's wanted skills each craftsman knows, or a related
    one (any level). ``craftsman_skills`` (M, S) and ``apprentice_wants`` (A, S): non-zero =
    has / wants."""
    has = sp.csr_array(craftsman_skills, dtype=np.float64, copy=True)
    has.data[:] = 1.0
    wants = sp.csr_array(apprentice_wants, dtype=np.float64, copy=True)
    wants.data[:] = 1.0
    reach = sp.csr_array(has @ skill_family(skill_parent))  # (M, S): credit for skill s
    reach.data[:] = 1.0
    counts: NDArray[np.int64] = np.rint((wants @ reach.T).toarray()).astype(np.int64)
    return counts


@dataclass(frozen=True)
class CreditTables:
    """Per target level L: the (M, S) credit a craftsman gives for each wanted skill."""

    by_level: dict[int, sp.csr_array]


def credit_tables(problem: MatchProblem, related_credit: float) -> CreditTables:
    """Credits of every craftsman for every skill tag, one sparse (M, S) matrix per level."""
    skills = sp.csr_array(problem.craftsman_skills, dtype=np.float64)
    skills.sum_duplicates()
    related = relation_matrix(problem.skill_parent)
    # best_related[m, t]: for how many levels k = 1..5 craftsman m has a skill related to t at
    # level >= k (the best related level, counted in whole levels).
    best_related = sp.csr_array(skills.shape, dtype=np.float64)
    for k in LEVELS:
        at_least = skills.copy()
        at_least.data = (at_least.data >= k).astype(np.float64)
        at_least.eliminate_zeros()
        reach = sp.csr_array(at_least @ related)
        reach.data[:] = 1.0
        best_related = best_related + reach
    tables = {}
    for level in LEVELS:
        exact = skills.copy()
        exact.data = np.minimum(1.0, exact.data / level)
        # Credit min(1, k / level) for a related skill at level k, times related_credit.
        near = best_related.copy()
        near.data = related_credit * (np.minimum(near.data, level) / level)
        tables[level] = sp.csr_array(exact.maximum(near))
    return CreditTables(by_level=tables)


@dataclass(frozen=True)
class CandidatePairs:
    """Pairs with a positive fit, as parallel arrays (P,), sorted by (apprentice, craftsman)."""

    craftsman: NDArray[np.int64]
    apprentice: NDArray[np.int64]
    fit: NDArray[np.float64]
    score: NDArray[np.float64]


def candidate_pairs(problem: MatchProblem, params: MatchParams) -> CandidatePairs:
    """Fit and score of every pair sharing an exact or related skill (any unit)."""
    tables = credit_tables(problem, params.related_credit)
    wants = sp.csr_array(problem.apprentice_wants, dtype=np.float64)
    weights = sp.csr_array(problem.apprentice_weights, dtype=np.float64)
    total_weight = np.asarray(weights.sum(axis=1)).ravel()
    numerator = sp.csr_array((problem.n_apprentices, problem.n_craftsmen), dtype=np.float64)
    for level, table in tables.by_level.items():
        at_level = weights.copy()
        at_level.data = np.where(wants.data == level, at_level.data, 0.0)
        at_level.eliminate_zeros()
        if at_level.nnz:
            numerator = numerator + at_level @ table.T
    coo = sp.coo_array(numerator)
    apprentice = coo.row.astype(np.int64)
    craftsman = coo.col.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(total_weight[apprentice] > 0, coo.data / total_weight[apprentice], 0.0)
    order = np.lexsort((craftsman, apprentice))
    apprentice, craftsman, fit = apprentice[order], craftsman[order], np.minimum(fit[order], 1.0)
    return CandidatePairs(
        craftsman=craftsman,
        apprentice=apprentice,
        fit=fit,
        score=fit + pair_bonus(problem, params, craftsman, apprentice),
    )


WAITING_FULL_DAYS = 180  # after this many days waited, the whole waiting bonus (matching.md)


def pair_bonus(
    problem: MatchProblem,
    params: MatchParams,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> NDArray[np.float64]:
    """What a pair's score adds to its fit (``min_fit`` never sees it): the region bonus, the
    waiting bonus and the preference bonus. ``craftsman`` and ``apprentice`` broadcast against
    each other."""
    return (
        region_bonus(problem, params, craftsman, apprentice)
        + waiting_bonus(problem, params, apprentice)
        + preference_bonus(problem, params, craftsman, apprentice)
    )


PREFERENCE_RANKS = 3  # an apprentice ranks at most this many craftsmen (programme.md)


def rank_bonus(params: MatchParams, rank: NDArray[np.int64]) -> NDArray[np.float64]:
    """The preference bonus of ranks 1..3: ``preference_bonus · (4 - r) / 3``; 0 for rank 0
    (not ranked)."""
    rank = np.asarray(rank, dtype=np.int64)
    bonus: NDArray[np.float64] = np.where(
        rank > 0, params.preference_bonus * (PREFERENCE_RANKS + 1 - rank) / PREFERENCE_RANKS, 0.0
    )
    return bonus


def preference_ranks(
    problem: MatchProblem, craftsman: NDArray[np.int64], apprentice: NDArray[np.int64]
) -> NDArray[np.int64]:
    """The rank (1-3) at which each pair's apprentice put its craftsman; 0 where it did not
    (looked up in the sparse ranks by sorted pair keys, never a dense (A, M) array)."""
    craftsman, apprentice = np.broadcast_arrays(
        np.asarray(craftsman, dtype=np.int64), np.asarray(apprentice, dtype=np.int64)
    )
    ranks = problem.preference_rank
    if ranks is None or ranks.nnz == 0 or craftsman.size == 0:
        return np.zeros(craftsman.shape, dtype=np.int64)
    coo = sp.coo_array(ranks)
    keys = pair_keys(coo.col.astype(np.int64), coo.row.astype(np.int64), problem.n_apprentices)
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], coo.data[order].astype(np.int64)
    wanted = pair_keys(craftsman, apprentice, problem.n_apprentices)
    where = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    found: NDArray[np.int64] = np.where(keys[where] == wanted, values[where], 0)
    return found


def preference_bonus(
    problem: MatchProblem,
    params: MatchParams,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> NDArray[np.float64]:
    """The preference bonus of each pair (:func:`rank_bonus` of its rank)."""
    if not params.preference_bonus or problem.preference_rank is None:
        return np.zeros(np.broadcast(craftsman, apprentice).shape)
    return rank_bonus(params, preference_ranks(problem, craftsman, apprentice))


def waiting_bonus(
    problem: MatchProblem, params: MatchParams, apprentice: NDArray[np.int64]
) -> NDArray[np.float64]:
    """The waiting bonus of each apprentice: ``waiting_bonus · min(1, days waited / 180)``."""
    if not params.waiting_bonus or not problem.apprentice_waited_days.size:
        return np.zeros(np.shape(apprentice))
    waited = problem.apprentice_waited_days[apprentice]
    bonus: NDArray[np.float64] = params.waiting_bonus * np.minimum(1.0, waited / WAITING_FULL_DAYS)
    return bonus


def max_pair_bonus(params: MatchParams) -> float:
    """The most :func:`pair_bonus` can add to one pair (a rank-1 preference earns the whole
    preference bonus)."""
    return params.region_bonus + params.waiting_bonus + params.preference_bonus


def region_bonus(
    problem: MatchProblem,
    params: MatchParams,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> NDArray[np.float64]:
    """The region bonus of each pair: both regions set and equal."""
    same = same_region(problem.craftsman_region[craftsman], problem.apprentice_region[apprentice])
    return np.where(same, params.region_bonus, 0.0)


def same_region(
    craftsman_region: NDArray[np.int64], apprentice_region: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which pairs earn the region bonus: both regions set and equal (arrays broadcast)."""
    same: NDArray[np.bool_] = (craftsman_region >= 0) & (craftsman_region == apprentice_region)
    return same


@dataclass(frozen=True)
class Explanation:
    """Per pair and wanted skill: which craftsman skill gave the credit. Flat arrays (R,)."""

    pair: NDArray[np.int64]  # which input pair the row belongs to, ascending
    skill: NDArray[np.int64]
    wanted_level: NDArray[np.int64]
    weight: NDArray[np.float64]
    given_skill: NDArray[np.int64]  # -1 when no skill of the craftsman gives credit
    given_level: NDArray[np.int64]  # 0 when none
    credit: NDArray[np.float64]
    fit: NDArray[np.float64]  # (pairs,)
    score: NDArray[np.float64]  # (pairs,)
    preference_rank: NDArray[np.int64]  # (pairs,) 1-3, 0 = the craftsman is not ranked

    def rows(self, index: int) -> list[tuple[int, int, float, int, int, float]]:
        """The rows of pair ``index``: (skill, wanted level, weight, given skill, level, credit)."""
        lo, hi = np.searchsorted(self.pair, [index, index + 1])
        return [
            (
                int(self.skill[r]),
                int(self.wanted_level[r]),
                float(self.weight[r]),
                int(self.given_skill[r]),
                int(self.given_level[r]),
                float(self.credit[r]),
            )
            for r in range(lo, hi)
        ]


def explain_pairs(
    problem: MatchProblem,
    params: MatchParams,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> Explanation:
    """The per-skill credit of each given pair, vectorised over pairs × wants × skills."""
    craftsman = np.asarray(craftsman, dtype=np.int64)
    apprentice = np.asarray(apprentice, dtype=np.int64)
    wants = sp.csr_array(problem.apprentice_wants)
    weights = sp.csr_array(problem.apprentice_weights)
    skills = sp.csr_array(problem.craftsman_skills)
    # Expand each pair into its apprentice's wanted skills.
    n_wants = np.diff(wants.indptr)[apprentice]
    want_pair = np.repeat(np.arange(craftsman.size), n_wants)
    want_index = _ranges(wants.indptr[apprentice], n_wants)
    want_skill = wants.indices[want_index].astype(np.int64)
    want_level = wants.data[want_index]
    want_weight = weights.data[want_index]
    # Expand each (pair, want) into the craftsman's skills.
    owner = craftsman[want_pair]
    n_skills = np.diff(skills.indptr)[owner]
    row = np.repeat(np.arange(want_pair.size), n_skills)
    skill_index = _ranges(skills.indptr[owner], n_skills)
    given = skills.indices[skill_index].astype(np.int64)
    level = skills.data[skill_index]
    target = want_skill[row]
    related = relation_matrix(problem.skill_parent)
    related_keys = np.sort(
        related.tocoo().row.astype(np.int64) * max(problem.n_skills, 1) + related.tocoo().col
    )
    keys = target * max(problem.n_skills, 1) + given
    is_related = np.isin(keys, related_keys, assume_unique=False)
    sim = np.where(given == target, 1.0, np.where(is_related, params.related_credit, 0.0))
    value = sim * np.minimum(1.0, level / want_level[row])
    # Best skill per (pair, want): sort by row then value descending, take the first.
    order = np.lexsort((given, -value, row))
    first = np.ones(order.size, dtype=bool)
    first[1:] = row[order][1:] != row[order][:-1]
    best = order[first & (value[order] > 0)]
    given_skill = np.full(want_pair.size, -1, dtype=np.int64)
    given_level = np.zeros(want_pair.size, dtype=np.int64)
    credit = np.zeros(want_pair.size, dtype=np.float64)
    given_skill[row[best]] = given[best]
    given_level[row[best]] = level[best].astype(np.int64)
    credit[row[best]] = value[best]
    total = np.bincount(want_pair, weights=want_weight, minlength=craftsman.size)
    earned = np.bincount(want_pair, weights=want_weight * credit, minlength=craftsman.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(total > 0, earned / total, 0.0)
    return Explanation(
        pair=want_pair,
        skill=want_skill,
        wanted_level=want_level.astype(np.int64),
        weight=want_weight,
        given_skill=given_skill,
        given_level=given_level,
        credit=credit,
        fit=fit,
        score=fit + pair_bonus(problem, params, craftsman, apprentice),
        preference_rank=preference_ranks(problem, craftsman, apprentice),
    )


def _ranges(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenated ``arange(start, start + count)`` for each pair, without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(np.asarray(starts, dtype=np.int64), counts) + np.arange(total) - offsets
