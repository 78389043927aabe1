"""The matching problem and its result, as arrays (shapes and dtypes documented per field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Method = Literal["auto", "dense", "components", "sparse", "pruned", "flow", "milp"]
FAIR_METHODS = ("flow", "milp")  # the methods that honour the fair-share rules
REASONS = ("no_eligible_craftsman", "capacity_exhausted", "excluded", "unit_cap")


def _no_pairs() -> NDArray[np.int64]:
    return np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class MatchProblem:
    """M craftsmen, A apprentices and S skill tags; every index is a 0-based array position."""

    craftsman_unit: NDArray[np.int64]  # (M,)
    craftsman_region: NDArray[np.int64]  # (M,) -1 = not set
    craftsman_free: NDArray[np.int64]  # (M,) free slots >= 0
    craftsman_skills: sp.csr_array  # (M, S) float64 level 1..5 (absent = no entry)
    apprentice_unit: NDArray[np.int64]  # (A,)
    apprentice_region: NDArray[np.int64]  # (A,) -1 = not set
    apprentice_wants: sp.csr_array  # (A, S) float64 target level 1..5
    apprentice_weights: sp.csr_array  # (A, S) float64 > 0, same sparsity as apprentice_wants
    skill_parent: NDArray[np.int64]  # (S,) parent position or -1
    excluded: NDArray[np.int64] = field(default_factory=_no_pairs)  # (K, 2) [craftsman, apprentice]
    pinned: NDArray[np.int64] = field(default_factory=_no_pairs)  # (P, 2) [craftsman, apprentice]
    # (U,) the considered units' ids, for the per-unit report (a unit may have nobody taking
    # part); empty: the units the people belong to.
    units: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # (A,) days each apprentice has waited to be paired (since created, or since their last
    # mentorship ended), for ``params.waiting_bonus``; empty: nobody has waited.
    apprentice_waited_days: NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64)
    )
    # (A, M) sparse: the rank (1-3) at which each apprentice put a craftsman among its ranked
    # ones, for ``params.preference_bonus``; no entry: not ranked. None: nobody ranked anyone.
    # Sparse because it is (at most 3 entries a row; dense it would be 50,000 x 10,000).
    preference_rank: sp.csr_array | None = None
    # (V, 2) [craftsman, apprentice]: pairs on the apprentice's avoid list (hard constraint 6).
    avoided: NDArray[np.int64] = field(default_factory=_no_pairs)

    @property
    def forbidden(self) -> NDArray[np.int64]:
        """(K + V, 2) every pair hard constraints 4 and 6 forbid (excluded or avoided); both
        report ``excluded`` for an apprentice left without a pair by them."""
        if not self.avoided.size:
            return self.excluded
        return np.concatenate([self.excluded.reshape(-1, 2), self.avoided.reshape(-1, 2)])

    @property
    def n_craftsmen(self) -> int:
        """M."""
        return int(self.craftsman_unit.shape[0])

    @property
    def n_apprentices(self) -> int:
        """A."""
        return int(self.apprentice_unit.shape[0])

    @property
    def n_skills(self) -> int:
        """S."""
        return int(self.skill_parent.shape[0])


class PinnedPairError(ValueError):
    """A pinned pair breaks a hard constraint (same unit, or more pins than capacity).

    ``craftsman`` and ``apprentice`` are positions, so callers can name the pair in their terms.
    """

    def __init__(self, reason: str, *, craftsman: int, apprentice: int) -> None:
        super().__init__(f"Pinned pair [{craftsman}, {apprentice}]: {reason}")
        self.reason = reason
        self.craftsman = craftsman
        self.apprentice = apprentice


class PinnedCapError(ValueError):
    """The pinned pairs alone break a fair-share cap; ``breaches`` name each cap and its units."""

    def __init__(self, breaches: list[CapBreach]) -> None:
        super().__init__("; ".join(b.message() for b in breaches))
        self.breaches = breaches


@dataclass(frozen=True)
class CapBreach:
    """A fair-share cap that ``pairs`` pairs exceed (units as the problem gives them: ids)."""

    cap: str  # max_pairs_per_craftsman_unit or max_pairs_per_unit_pair
    craftsman_unit: int
    apprentice_unit: int | None  # None for the per-craftsman-unit cap
    pairs: int
    limit: int

    def message(self) -> str:
        """One sentence naming the cap and the units."""
        between = (
            f"craftsmen of unit {self.craftsman_unit}"
            if self.apprentice_unit is None
            else f"craftsmen of unit {self.craftsman_unit} and apprentices of unit "
            f"{self.apprentice_unit}"
        )
        return (
            f"The pinned pairs alone make {self.pairs} pairs with {between}, above "
            f"{self.cap} = {self.limit}."
        )


@dataclass(frozen=True)
class MatchResult:
    """The chosen pairs (sorted by apprentice) and the unmatched apprentices with reasons."""

    craftsman: NDArray[np.int64]  # (n,)
    apprentice: NDArray[np.int64]  # (n,) ascending
    score: NDArray[np.float64]  # (n,)
    fit: NDArray[np.float64]  # (n,)
    objective: float  # sum of score
    unmatched: NDArray[np.int64]  # (u,) apprentice positions, ascending
    unmatched_reason: list[str]  # (u,) one of REASONS
    unmatched_blockers: list[NDArray[np.int64]]  # (u,) craftsmen whose slots went elsewhere
    stats: dict[str, Any]
    # (u,) for unit_cap: the caps that block, as {cap, craftsman_unit, apprentice_unit}
    unmatched_caps: list[list[dict[str, Any]]] = field(default_factory=list)
