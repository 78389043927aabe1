"""Random matching problems for property tests, plus a per-pair Python reference of the formula."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from matcher.algorithms import MatchParams, MatchProblem


@st.composite
def problems(
    draw: Any,
    max_craftsmen: int = 8,
    max_apprentices: int = 12,
    max_skills: int = 8,
    max_free: int = 3,
) -> MatchProblem:
    """A small random alliance: units, regions, a taxonomy with parents, skills and wants."""
    n_skills = draw(st.integers(2, max_skills))
    parent = np.full(n_skills, -1, dtype=np.int64)
    for s in range(1, n_skills):
        if draw(st.booleans()):
            parent[s] = draw(st.integers(0, s - 1))  # parents come first: no cycles
    m = draw(st.integers(1, max_craftsmen))
    a = draw(st.integers(1, max_apprentices))
    units = draw(st.integers(1, 4))

    def people(count: int, per: tuple[int, int], with_weights: bool) -> tuple[Any, ...]:
        rows, cols, levels, weights = [], [], [], []
        for i in range(count):
            chosen = draw(
                st.lists(
                    st.integers(0, n_skills - 1), min_size=per[0], max_size=per[1], unique=True
                )
            )
            for s in chosen:
                rows.append(i)
                cols.append(s)
                levels.append(float(draw(st.integers(1, 5))))
                weights.append(draw(st.sampled_from([0.5, 1.0, 2.0])) if with_weights else 1.0)
        shape = (count, n_skills)
        return (
            sp.csr_array((levels, (rows, cols)), shape=shape),
            sp.csr_array((weights, (rows, cols)), shape=shape),
        )

    skills, _ = people(m, (0, 4), False)
    wants, weights = people(a, (0, 3), True)
    excluded = draw(
        st.lists(st.tuples(st.integers(0, m - 1), st.integers(0, a - 1)), max_size=4, unique=True)
    )
    # Each apprentice ranks up to 3 distinct craftsmen (any unit: the solver must not care) and
    # avoids a few others; or nobody ranks anyone (None).
    rank_rows, rank_cols, rank_values, avoided = [], [], [], []
    with_preferences = draw(st.booleans())
    for apprentice in range(a):
        if not with_preferences:
            break
        chosen = draw(st.permutations(range(m)))
        ranked = chosen[: draw(st.integers(0, min(3, m)))]
        for rank, craftsman in enumerate(ranked, start=1):
            rank_rows.append(apprentice)
            rank_cols.append(craftsman)
            rank_values.append(rank)
        rest = chosen[len(ranked) :]
        avoided += [(c, apprentice) for c in rest[: draw(st.integers(0, min(2, len(rest))))]]
    preference_rank = (
        sp.csr_array((rank_values, (rank_rows, rank_cols)), shape=(a, m), dtype=np.int64)
        if with_preferences
        else None
    )
    return MatchProblem(
        craftsman_unit=np.array(
            draw(st.lists(st.integers(0, units - 1), min_size=m, max_size=m)), dtype=np.int64
        ),
        craftsman_region=np.array(
            draw(st.lists(st.integers(-1, 2), min_size=m, max_size=m)), dtype=np.int64
        ),
        craftsman_free=np.array(
            draw(st.lists(st.integers(0, max_free), min_size=m, max_size=m)), dtype=np.int64
        ),
        craftsman_skills=skills,
        apprentice_unit=np.array(
            draw(st.lists(st.integers(0, units - 1), min_size=a, max_size=a)), dtype=np.int64
        ),
        apprentice_region=np.array(
            draw(st.lists(st.integers(-1, 2), min_size=a, max_size=a)), dtype=np.int64
        ),
        apprentice_wants=wants,
        apprentice_weights=weights,
        skill_parent=parent,
        excluded=np.array(excluded, dtype=np.int64).reshape(-1, 2),
        # Days waited: none known (empty), or some, across the bonus's ramp and beyond it.
        apprentice_waited_days=np.array(
            draw(
                st.one_of(
                    st.just([]),
                    st.lists(st.sampled_from([0, 45, 90, 179, 180, 400]), min_size=a, max_size=a),
                )
            ),
            dtype=np.float64,
        ),
        preference_rank=preference_rank,
        avoided=np.array(avoided, dtype=np.int64).reshape(-1, 2),
    )


params_strategy = st.builds(
    MatchParams,
    objective=st.sampled_from(["score", "coverage"]),
    min_fit=st.sampled_from([0.01, 0.25, 0.5, 0.8]),
    related_credit=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    region_bonus=st.sampled_from([0.0, 0.05, 0.2]),
    waiting_bonus=st.sampled_from([0.0, 0.1, 0.3]),
    preference_bonus=st.sampled_from([0.0, 0.1, 0.4]),
)


class Reference:
    """matching.md's formula and hard constraints, literally, pair by pair, on dense copies."""

    def __init__(self, problem: MatchProblem, params: MatchParams) -> None:
        self.problem, self.params = problem, params
        self.skills = sp.csr_array(problem.craftsman_skills).toarray()
        self.wants = sp.csr_array(problem.apprentice_wants).toarray()
        self.weights = sp.csr_array(problem.apprentice_weights).toarray()
        self.excluded = {(int(c), int(p)) for c, p in problem.excluded}
        self.avoided = {(int(c), int(p)) for c, p in problem.avoided}
        ranks = problem.preference_rank
        self.rank = sp.csr_array(ranks).toarray() if ranks is not None else None

    def similarity(self, t: int, s: int) -> float:
        parent = self.problem.skill_parent
        if s == t:
            return 1.0
        if (parent[t] >= 0 and parent[t] == parent[s]) or parent[t] == s or parent[s] == t:
            return self.params.related_credit
        return 0.0

    def fit(self, m: int, a: int) -> float:
        have = [(s, lv) for s, lv in enumerate(self.skills[m]) if lv > 0]
        total = earned = 0.0
        for t, level in enumerate(self.wants[a]):
            if level == 0:
                continue
            w = self.weights[a, t]
            credit = max(
                (self.similarity(t, s) * min(1.0, lv / level) for s, lv in have), default=0.0
            )
            total += w
            earned += w * credit
        return earned / total if total else 0.0

    def score(self, m: int, a: int) -> float:
        """Fit plus the region bonus plus the waiting bonus (full at 180 days waited) plus the
        preference bonus of the craftsman's rank r: preference_bonus · (4 - r) / 3."""
        region = self.problem.craftsman_region
        same = region[m] >= 0 and region[m] == self.problem.apprentice_region[a]
        waited = self.problem.apprentice_waited_days
        days = float(waited[a]) if waited.size else 0.0
        waiting = self.params.waiting_bonus * min(1.0, days / 180)
        rank = int(self.rank[a, m]) if self.rank is not None else 0
        preference = self.params.preference_bonus * (4 - rank) / 3 if rank else 0.0
        return self.fit(m, a) + (self.params.region_bonus if same else 0.0) + waiting + preference

    def eligible(self, m: int, a: int) -> bool:
        """The hard constraints 1, 3, 4 and 6 for one pair."""
        return bool(
            (self.wants[a] > 0).any()
            and self.problem.craftsman_unit[m] != self.problem.apprentice_unit[a]
            and self.fit(m, a) >= self.params.min_fit - 1e-9
            and (m, a) not in self.excluded
            and (m, a) not in self.avoided
        )

    def brute_force(self) -> tuple[int, float]:
        """(matched, total) of the best assignment by enumeration; lexicographic for coverage."""
        problem = self.problem
        m, a = problem.n_craftsmen, problem.n_apprentices
        options = [[None] + [c for c in range(m) if self.eligible(c, p)] for p in range(a)]
        scores = {(c, p): self.score(c, p) for p in range(a) for c in options[p][1:]}
        best: tuple[int, float] = (0, 0.0)
        for choice in itertools.product(*options):
            used = np.bincount([c for c in choice if c is not None], minlength=m)
            if (used > problem.craftsman_free).any():
                continue
            total = sum(scores[(c, p)] for p, c in enumerate(choice) if c is not None)
            count = sum(c is not None for c in choice)
            key = (count, total) if self.params.objective == "coverage" else (0, total)
            if key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + 1e-12):
                best = (key[0], total)
        return best
