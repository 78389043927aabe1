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
  again by ``milp``.
- ``milp``: ``scipy.optimize.milp`` (HiGHS branch and bound, gaps 0). The unit-pair cap couples
  both ends of a pair, which no network can express, so it needs this.
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

FairMethod = Literal["flow", "milp"]
INTEGRAL_TOLERANCE = 1e-6  # a basic LP solution off an integer by more than this is fractional
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
    """The constraint rows of the fair-share problem over ``E`` pair and ``U`` floor variables."""

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
        n_edges, n_units = int(craftsman.size), index.size
        x_unit = index.position(problem.craftsman_unit[craftsman])
        y_unit = index.position(problem.apprentice_unit[apprentice])
        floor = params.min_pairs_per_apprentice_unit or 0
        self.n_edges = n_edges
        self.n_floor = n_units if floor else 0
        rows: list[sp.csr_array] = []
        limits: list[NDArray[np.float64]] = []

        def group_rows(keys: NDArray[np.int64], limit_of: NDArray[np.float64]) -> None:
            """One row ``sum_{e in group} x_e <= limit`` per distinct key (keys index limit_of)."""
            groups, row_of = np.unique(keys, return_inverse=True)
            rows.append(
                sp.csr_array(
                    (np.ones(n_edges), (row_of, np.arange(n_edges))),
                    shape=(groups.size, n_edges + self.n_floor),
                )
            )
            limits.append(limit_of[groups].astype(np.float64))

        group_rows(apprentice, np.ones(problem.n_apprentices))
        group_rows(craftsman, free.astype(np.float64))
        cap = params.max_pairs_per_craftsman_unit
        if cap is not None:
            group_rows(x_unit, (cap - pinned.as_craftsman_unit).astype(np.float64))
        cap = params.max_pairs_per_unit_pair
        if cap is not None:
            left = (cap - pinned.by_unit_pair).ravel().astype(np.float64)
            group_rows(x_unit * n_units + y_unit, left)
        self.floor_upper = np.zeros(self.n_floor)
        if floor:
            # f_u - sum_{e: apprentice of u} x_e <= 0
            rows.append(
                sp.csr_array(
                    (
                        np.concatenate([-np.ones(n_edges), np.ones(n_units)]),
                        (
                            np.concatenate([y_unit, np.arange(n_units)]),
                            np.concatenate([np.arange(n_edges), n_edges + np.arange(n_units)]),
                        ),
                    ),
                    shape=(n_units, n_edges + n_units),
                )
            )
            limits.append(np.zeros(n_units))
            self.floor_upper = np.maximum(floor - pinned.as_apprentice_unit, 0).astype(np.float64)
        self.rows = rows
        self.limits = limits

    @property
    def n_vars(self) -> int:
        """E + U (U = 0 without a floor)."""
        return self.n_edges + self.n_floor

    def keep_at_least(self, weights: NDArray[np.float64], value: int) -> None:
        """Add ``weights @ v >= value`` (a previous stage's optimum)."""
        self.rows.append(sp.csr_array(-weights[None, :]))
        self.limits.append(np.array([-float(value)]))

    def solve(self, gain: NDArray[np.float64], method: FairMethod) -> NDArray[np.float64] | None:
        """A maximiser of ``gain @ v`` (a vertex for ``flow``), or None if it is fractional."""
        matrix = sp.vstack(self.rows, format="csr")
        upper = np.concatenate([np.ones(self.n_edges), self.floor_upper])
        limits = np.concatenate(self.limits)
        if method == "flow":
            # Dual simplex: a basic (vertex) solution, integral on a network matrix.
            result = linprog(
                -gain,
                A_ub=matrix,
                b_ub=limits,
                bounds=np.column_stack([np.zeros(self.n_vars), upper]),
                method="highs-ds",
            )
        else:
            result = milp(
                -gain,
                constraints=LinearConstraint(matrix, -np.inf, limits),
                integrality=np.ones(self.n_vars),
                bounds=Bounds(np.zeros(self.n_vars), upper),
                options={"mip_rel_gap": 0.0},
            )
        if result.status != 0 or result.x is None:
            raise ArithmeticError(f"the fair-share {method} solve failed: {result.message}")
        values = np.asarray(result.x, dtype=np.float64)
        if np.abs(values - np.round(values)).max(initial=0.0) > INTEGRAL_TOLERANCE:
            return None
        rounded: NDArray[np.float64] = np.round(values)
        return rounded


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
    used = method
    n_e = program.n_edges

    def stage(gain: NDArray[np.float64]) -> NDArray[np.float64]:
        nonlocal used
        found = program.solve(gain, used)
        if found is None:  # only a faulty LP vertex gets here: the integer program is exact
            used = "milp"
            found = program.solve(gain, used)
        if found is None:
            raise ArithmeticError("the fair-share integer program returned a fractional point")
        return found

    floor_total = pairs = None
    if program.n_floor:
        weights = np.concatenate([np.zeros(n_e), np.ones(program.n_floor)])
        floor_total = int(round(float(weights @ stage(weights))))
        program.keep_at_least(weights, floor_total)
    if params.objective == "coverage":
        weights = np.concatenate([np.ones(n_e), np.zeros(program.n_floor)])
        pairs = int(round(float(weights @ stage(weights))))
        program.keep_at_least(weights, pairs)
    values = stage(np.concatenate([score, np.zeros(program.n_floor)]))
    picked = np.flatnonzero(values[:n_e] > 0.5).astype(np.int64)
    label = method if used == method else f"{method}+{used}"
    return FairSolution(picked, label, floor_total, pairs)
