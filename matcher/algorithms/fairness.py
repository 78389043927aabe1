"""Fair shares between member units: the three rules of matching.md, solved exactly.

Rules (each optional): at most ``max_pairs_per_craftsman_unit`` pairs with a craftsman of any one
unit; at most ``max_pairs_per_unit_pair`` pairs from craftsman unit X to apprentice unit Y; and a
soft floor ``min_pairs_per_apprentice_unit = k``. Pinned pairs count toward all three.

The objective is lexicographic: (1) the floor total ``sum_u min(n_u, k)``, (2) with objective
"coverage" the number of pairs, (3) the total score. Each stage is its own solve; the next one
keeps the previous optimum as a constraint (``sum f >= F*``, ``sum x >= P*``). Stages 1 and 2 are
integers, so fixing them is exact, and no big weight ever mixes two stages in one objective.

Variables: ``x_e`` in [0, 1] per eligible open pair, and per apprentice unit ``f_u`` in [0, k_u]
(the part of ``n_u`` that counts toward the floor: ``f_u <= n_u``, k_u = k minus the unit's pins).

- ``flow``: without the unit-pair cap this is a network flow (source -> floor/extra arcs -> unit
  u -> apprentice a -> craftsman m (cap free) -> craftsman unit X (cap C_X) -> sink; the stage
  constraints are lower bounds on arcs of a circulation). Its constraint matrix is totally
  unimodular, so a basic optimum of the LP (``scipy.optimize.linprog``, HiGHS simplex) is
  integral. The solution is checked: a fractional one (which would be a solver fault) is solved
  as an integer program.
- ``milp``: the unit-pair cap couples both ends of a pair, which no network can express. The LP
  relaxation is solved first; when its vertex is fractional, ``scipy.optimize.milp`` (HiGHS
  branch and bound, gap 0) finds the integer optimum.

Both work by column generation: a stage's LP starts from each side's best pairs and a pair joins
while its reduced gain (LP duals) is positive, so the restricted optimum is the optimum over every
pair (LP duality). The integer program then runs over the pairs that could still be in a solution
better than an incumbent: a pair whose reduced gain is below ``incumbent - LP bound`` is in none
(reduced-cost fixing), so leaving it out is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from matcher.algorithms.params import MatchParams
from matcher.algorithms.problem import CapBreach, MatchProblem
from matcher.algorithms.pruned import best_per_side

FairMethod = Literal["flow", "milp"]
INTEGRAL_TOLERANCE = 1e-6  # a basic LP solution off an integer by more than this is fractional
PRICE_TOLERANCE = 1e-7  # a reduced gain above this lets a column improve the LP (HiGHS' 1e-7)
GAP_TOLERANCE = 1e-6  # LP bound minus incumbent below this: the incumbent is optimal
MAX_ENTERING = 20_000  # columns added per pricing round, the most promising first
FIRST_PER_APPRENTICE = 8  # column generation starts from each apprentice's best pairs ...
FIRST_PER_CRAFTSMAN_EXTRA = 8  # ... and each craftsman's best (free slots + this many)
CAP_CRAFTSMAN_UNIT = "max_pairs_per_craftsman_unit"
CAP_UNIT_PAIR = "max_pairs_per_unit_pair"


def choose_fair_method(params: MatchParams) -> FairMethod:
    """``flow`` while the problem is a network (no unit-pair cap), else ``milp``."""
    return "milp" if params.max_pairs_per_unit_pair is not None else "flow"


def pin_cap_breaches(
    pin_craftsman_unit: NDArray[np.int64],
    pin_apprentice_unit: NDArray[np.int64],
    params: MatchParams,
) -> list[CapBreach]:
    """The caps that the pinned pairs alone exceed, given each pin's two units (ids)."""
    breaches: list[CapBreach] = []
    cap = params.max_pairs_per_craftsman_unit
    if cap is not None:
        units, counts = np.unique(pin_craftsman_unit, return_counts=True)
        for unit, count in zip(units.tolist(), counts.tolist(), strict=True):
            if count > cap:
                breaches.append(CapBreach(CAP_CRAFTSMAN_UNIT, int(unit), None, int(count), cap))
    cap = params.max_pairs_per_unit_pair
    if cap is not None and pin_craftsman_unit.size:
        pairs, counts = np.unique(
            np.column_stack([pin_craftsman_unit, pin_apprentice_unit]), axis=0, return_counts=True
        )
        for (x, y), count in zip(pairs.tolist(), counts.tolist(), strict=True):
            if count > cap:
                breaches.append(CapBreach(CAP_UNIT_PAIR, int(x), int(y), int(count), cap))
    return breaches


@dataclass(frozen=True)
class UnitIndex:
    """Units as positions 0..U-1 (``ids`` ascending), for counting per unit."""

    ids: NDArray[np.int64]

    @classmethod
    def of(cls, problem: MatchProblem) -> UnitIndex:
        """The considered units, and any unit someone taking part belongs to."""
        units = [problem.units, problem.craftsman_unit, problem.apprentice_unit]
        return cls(np.unique(np.concatenate(units)).astype(np.int64))

    @property
    def size(self) -> int:
        """U."""
        return int(self.ids.size)

    def position(self, unit_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Positions of unit ids (each one of ``ids``)."""
        return np.searchsorted(self.ids, unit_ids).astype(np.int64)


@dataclass(frozen=True)
class UnitCounts:
    """Pairs per unit: as the craftsman's (U,), as the apprentice's (U,), and per (X, Y) (U, U)."""

    as_craftsman_unit: NDArray[np.int64]
    as_apprentice_unit: NDArray[np.int64]
    by_unit_pair: NDArray[np.int64]


def unit_counts(
    index: UnitIndex,
    problem: MatchProblem,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> UnitCounts:
    """How many of the pairs (craftsman[i], apprentice[i]) each unit and unit pair has."""
    x = index.position(problem.craftsman_unit[craftsman])
    y = index.position(problem.apprentice_unit[apprentice])
    u = index.size
    by_pair = np.bincount(x * u + y, minlength=u * u).reshape(u, u) if u else np.zeros((0, 0))
    return UnitCounts(
        as_craftsman_unit=np.bincount(x, minlength=u).astype(np.int64),
        as_apprentice_unit=np.bincount(y, minlength=u).astype(np.int64),
        by_unit_pair=by_pair.astype(np.int64),
    )


def unit_shares(
    problem: MatchProblem,
    params: MatchParams,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
) -> list[dict[str, Any]]:
    """``stats.units``: per considered unit, pairs given and received and the floor shortfall."""
    index = UnitIndex.of(problem)
    counts = unit_counts(index, problem, craftsman, apprentice)
    floor = params.min_pairs_per_apprentice_unit or 0
    return [
        {
            "unit_id": int(unit),
            "pairs_as_craftsman_unit": int(counts.as_craftsman_unit[i]),
            "pairs_as_apprentice_unit": int(counts.as_apprentice_unit[i]),
            "floor_shortfall": max(0, floor - int(counts.as_apprentice_unit[i])),
        }
        for i, unit in enumerate(index.ids.tolist())
    ]


def blocking_caps(
    problem: MatchProblem,
    params: MatchParams,
    counts: UnitCounts,
    index: UnitIndex,
    craftsman: int,
    apprentice: int,
) -> list[dict[str, Any]]:
    """The caps, full after the run, that forbid adding the pair (craftsman, apprentice)."""
    x = int(index.position(problem.craftsman_unit[[craftsman]])[0])
    y = int(index.position(problem.apprentice_unit[[apprentice]])[0])
    x_id, y_id = int(index.ids[x]), int(index.ids[y])
    caps: list[dict[str, Any]] = []
    cap = params.max_pairs_per_craftsman_unit
    if cap is not None and counts.as_craftsman_unit[x] >= cap:
        caps.append({"cap": CAP_CRAFTSMAN_UNIT, "craftsman_unit": x_id, "apprentice_unit": None})
    cap = params.max_pairs_per_unit_pair
    if cap is not None and counts.by_unit_pair[x, y] >= cap:
        caps.append({"cap": CAP_UNIT_PAIR, "craftsman_unit": x_id, "apprentice_unit": y_id})
    return caps


@dataclass(frozen=True)
class FairSolution:
    """The chosen pairs (indices into the edges) and each stage's optimum."""

    picked: NDArray[np.int64]
    method: str  # "flow", "milp", or "flow+milp" when the LP came back fractional
    floor_total: int | None  # stage 1 optimum, None without a floor
    pairs: int | None  # stage 2 optimum, None unless objective "coverage"


class _Program:
    """The fair-share program: one column per eligible open pair (E) and per floor unit (U),
    rows in fixed families so that every row has the same index whatever columns are in use:

        apprentices (A) | craftsmen (M) | craftsman units (U, with the cap) |
        unit pairs (U*U, with the pair cap) | floor units (U, with a floor) | stage rows

    Each stage is solved over a subset of the pair columns and priced against all of them: a
    pair column whose reduced cost could improve the objective joins, until none does (column
    generation; the restricted optimum is then the optimum over every pair).
    """

    def __init__(
        self,
        problem: MatchProblem,
        params: MatchParams,
        *,
        craftsman: NDArray[np.int64],
        apprentice: NDArray[np.int64],
        free: NDArray[np.int64],
    ) -> None:
        index = UnitIndex.of(problem)
        pinned = unit_counts(index, problem, problem.pinned[:, 0], problem.pinned[:, 1])
        n_a, n_m, n_units = problem.n_apprentices, problem.n_craftsmen, index.size
        x_unit = index.position(problem.craftsman_unit[craftsman])
        y_unit = index.position(problem.apprentice_unit[apprentice])
        floor = params.min_pairs_per_apprentice_unit or 0
        self.n_edges = int(craftsman.size)
        self.n_floor = n_units if floor else 0
        none = np.full(self.n_edges, -1, dtype=np.int64)
        limits = [np.ones(n_a), free.astype(np.float64)]
        self.plus_rows = [apprentice.astype(np.int64), n_a + craftsman.astype(np.int64)]
        start = n_a + n_m
        cap = params.max_pairs_per_craftsman_unit
        if cap is not None:
            self.plus_rows.append(start + x_unit)
            limits.append((cap - pinned.as_craftsman_unit).astype(np.float64))
            start += n_units
        cap = params.max_pairs_per_unit_pair
        if cap is not None:
            self.plus_rows.append(start + x_unit * n_units + y_unit)
            limits.append((cap - pinned.by_unit_pair).ravel().astype(np.float64))
            start += n_units * n_units
        # f_u - sum_{e: apprentice of u} x_e <= 0
        self.floor_rows = start + y_unit if floor else none
        self.floor_start = start
        if floor:
            limits.append(np.zeros(n_units))
            start += n_units
        self.floor_upper = (
            np.maximum(floor - pinned.as_apprentice_unit, 0).astype(np.float64)
            if floor
            else np.zeros(0)
        )
        self.limits = np.concatenate(limits)
        self.keep_floor: int | None = None  # stage row: sum f >= keep_floor
        self.keep_pairs: int | None = None  # stage row: sum x >= keep_pairs

    def _matrix(self, columns: NDArray[np.int64]) -> tuple[sp.csr_array, NDArray[np.float64]]:
        """Rows × (the pair ``columns``, then the floor columns), and the rows' limits."""
        n = columns.size
        local = np.arange(n)
        rows = [family[columns] for family in self.plus_rows]
        cols = [local] * len(rows)
        data = [np.ones(n)] * len(rows)
        limits = [self.limits]
        n_rows = self.limits.size
        if self.n_floor:
            rows += [self.floor_rows[columns], self.floor_start + np.arange(self.n_floor)]
            cols += [local, n + np.arange(self.n_floor)]
            data += [-np.ones(n), np.ones(self.n_floor)]
        if self.keep_floor is not None:
            rows.append(np.full(self.n_floor, n_rows))
            cols.append(n + np.arange(self.n_floor))
            data.append(-np.ones(self.n_floor))
            limits.append(np.array([-float(self.keep_floor)]))
            n_rows += 1
        if self.keep_pairs is not None:
            rows.append(np.full(n, n_rows))
            cols.append(local)
            data.append(-np.ones(n))
            limits.append(np.array([-float(self.keep_pairs)]))
            n_rows += 1
        matrix = sp.csr_array(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_rows, n + self.n_floor),
        )
        return matrix, np.concatenate(limits)

    def reduced_gain(
        self, pair_gain: NDArray[np.float64], duals: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Per pair column, its gain minus the priced rows it uses (``duals`` >= 0, one per
        row): above 0, the column could still improve the objective."""
        used = sum(duals[family] for family in self.plus_rows)
        n_rows = self.limits.size
        if self.n_floor:
            used = used - duals[self.floor_rows]
        if self.keep_floor is not None:
            n_rows += 1
        if self.keep_pairs is not None:
            used = used - duals[n_rows]
        reduced: NDArray[np.float64] = pair_gain - used
        return reduced

    def _bounds(self, n_columns: int) -> NDArray[np.float64]:
        upper = np.concatenate([np.ones(n_columns), self.floor_upper])
        return np.column_stack([np.zeros(upper.size), upper])

    def relaxation(
        self, gain: NDArray[np.float64], columns: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], float, NDArray[np.float64]]:
        """The LP optimum of ``gain`` (pairs, then floor columns) over every pair column, by
        column generation from ``columns``: (columns used, their vertex solution, the optimum,
        every pair column's reduced gain)."""
        pair_gain, floor_gain = gain[: self.n_edges], gain[self.n_edges :]
        while True:
            matrix, limits = self._matrix(columns)
            # Dual simplex: a basic (vertex) solution, integral on a network matrix.
            result = linprog(
                -np.concatenate([pair_gain[columns], floor_gain]),
                A_ub=matrix,
                b_ub=limits,
                bounds=self._bounds(columns.size),
                method="highs-ds",
            )
            if result.status != 0:
                raise ArithmeticError(f"the fair-share LP failed: {result.message}")
            duals = -np.asarray(result.ineqlin.marginals, dtype=np.float64)
            reduced = self.reduced_gain(pair_gain, duals)
            outside = np.ones(self.n_edges, dtype=bool)
            outside[columns] = False
            entering = np.flatnonzero(outside & (reduced > PRICE_TOLERANCE))
            if entering.size == 0:
                return columns, np.asarray(result.x), -float(result.fun), reduced
            if entering.size > MAX_ENTERING:
                best = np.argpartition(-reduced[entering], MAX_ENTERING - 1)[:MAX_ENTERING]
                entering = entering[best]
            columns = np.union1d(columns, entering)

    def integer_optimum(
        self,
        gain: NDArray[np.float64],
        columns: NDArray[np.int64],
        bound: float,
        reduced: NDArray[np.float64],
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The integer optimum of ``gain`` over every pair column, given the LP ``bound`` and
        the reduced gains at it: an integer solution over ``columns`` is an incumbent, and a
        pair whose reduced gain is below ``incumbent - bound`` is in no better solution (LP
        duality), so the integer program over the others is exact."""
        incumbent_x, incumbent = self._milp(gain, columns)
        gap = bound - incumbent
        if gap > GAP_TOLERANCE:
            keep = np.flatnonzero(reduced >= -gap - GAP_TOLERANCE)
            columns = np.union1d(columns, keep)
            incumbent_x, incumbent = self._milp(gain, columns)
        return columns, incumbent_x

    def _milp(
        self, gain: NDArray[np.float64], columns: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], float]:
        matrix, limits = self._matrix(columns)
        bounds = self._bounds(columns.size)
        result = milp(
            -np.concatenate([gain[: self.n_edges][columns], gain[self.n_edges :]]),
            constraints=LinearConstraint(matrix, -np.inf, limits),
            integrality=np.ones(bounds.shape[0]),
            bounds=Bounds(bounds[:, 0], bounds[:, 1]),
            options={"mip_rel_gap": 0.0},
        )
        if result.status != 0 or result.x is None:
            raise ArithmeticError(f"the fair-share integer program failed: {result.message}")
        return np.round(np.asarray(result.x)), -float(result.fun)


def solve_fair(
    problem: MatchProblem,
    params: MatchParams,
    *,
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
    score: NDArray[np.float64],
    free: NDArray[np.int64],
    method: FairMethod,
) -> FairSolution:
    """The lexicographic optimum over the open eligible pairs ``(craftsman, apprentice, score)``
    with ``free`` slots left after the pins (which count toward every rule)."""
    if craftsman.size == 0:
        return FairSolution(np.zeros(0, dtype=np.int64), method, None, None)
    program = _Program(problem, params, craftsman=craftsman, apprentice=apprentice, free=free)
    used: FairMethod = method
    n_e, n_f = program.n_edges, program.n_floor
    # Column generation starts from each apprentice's best pairs and each craftsman's.
    columns = best_per_side(
        craftsman,
        apprentice,
        score,
        free,
        per_apprentice=FIRST_PER_APPRENTICE,
        per_craftsman_extra=FIRST_PER_CRAFTSMAN_EXTRA,
    )

    def stage(gain: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
        """The optimum of one stage: (every column's value, the objective)."""
        nonlocal used, columns
        columns, solution, bound, reduced = program.relaxation(gain, columns)
        fractional = np.abs(solution - np.round(solution)).max(initial=0.0) > INTEGRAL_TOLERANCE
        if fractional:  # never on the network (flow); the unit-pair cap can make it so
            used = "milp"
            columns, solution = program.integer_optimum(gain, columns, bound, reduced)
        values = np.zeros(n_e + n_f)
        values[columns] = np.round(solution[: columns.size])
        values[n_e:] = np.round(solution[columns.size :])
        return values, float(gain @ values)

    floor_total = pairs = None
    if n_f:
        _, value = stage(np.concatenate([np.zeros(n_e), np.ones(n_f)]))
        floor_total = int(round(value))
        program.keep_floor = floor_total
    if params.objective == "coverage":
        _, value = stage(np.concatenate([np.ones(n_e), np.zeros(n_f)]))
        pairs = int(round(value))
        program.keep_pairs = pairs
    values, _ = stage(np.concatenate([score, np.zeros(n_f)]))
    picked = np.flatnonzero(values[:n_e] > 0.5).astype(np.int64)
    label = method if used == method else f"{method}+{used}"
    return FairSolution(picked, label, floor_total, pairs)
