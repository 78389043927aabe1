"""Exact maximum-score assignment of apprentices to craftsman slots.

Every method reaches the optimum of the same problem: maximise the total gain over pairs, each
apprentice at most once, each craftsman at most ``free`` times, only eligible pairs. The gain is
the score (objective "score") or ``COVERAGE_BONUS + score`` (objective "coverage": the bonus,
larger than any total of scores, makes the count of matched apprentices come first).

- ``dense``: ``scipy.optimize.linear_sum_assignment`` on slots × apprentices, forbidden cells at
  gain 0 (the reference the tests compare against). Not a large negative value: a rectangular LSA
  must fill min(slots, apprentices) cells, and a penalty would make it maximise the count of real
  pairs before their gain, which is the "coverage" objective, not "score".
- ``components``: the eligibility graph split into connected components, each solved on its own
  (an optimum of the whole is the union of optima of the parts).
- ``sparse``: ``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` on eligible edges only,
  the smaller side (usually the slots) as rows, with one zero-gain dummy column per row so that a
  full matching always exists and "unmatched" costs nothing; weights ``offset - gain`` keep every
  edge positive.
- ``pruned`` (in ``pruned.py``): a pruned graph solved by the above, proven optimal for the whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

# Up to this many slot × apprentice cells dense LSA is the faster exact solver, above it the
# sparse one (auto's choice and each component's): measured by bench/matching.py (--method dense
# / sparse) on its generator, the two tie near 200 x 50 (~25,000 cells) and sparse is twice as
# fast from 600 x 150 (~225,000 cells) on; at 2,000 × 500 the pruned graph (78,000 pairs,
# 2.4 M cells) takes 0.42 s densely and 0.07 s sparsely.
DENSE_FASTER_MAX_CELLS = 50_000


@dataclass(frozen=True)
class Edges:
    """Eligible pairs with their gains, as parallel arrays (E,)."""

    craftsman: NDArray[np.int64]
    apprentice: NDArray[np.int64]
    gain: NDArray[np.float64]


def solve_dense(edges: Edges, free: NDArray[np.int64], n_apprentices: int) -> NDArray[np.int64]:
    """Indices into ``edges`` of an optimal assignment, by LSA on the full slot matrix."""
    slot_owner = np.repeat(np.arange(free.size), free)
    if slot_owner.size == 0 or n_apprentices == 0 or edges.gain.size == 0:
        return np.zeros(0, dtype=np.int64)
    first_slot = np.cumsum(free) - free
    matrix = np.zeros((slot_owner.size, n_apprentices))
    edge_of = np.full((free.size, n_apprentices), -1, dtype=np.int64)
    edge_of[edges.craftsman, edges.apprentice] = np.arange(edges.gain.size)
    for offset in range(int(free.max())):
        has_slot = free[edges.craftsman] > offset
        rows = first_slot[edges.craftsman[has_slot]] + offset
        matrix[rows, edges.apprentice[has_slot]] = edges.gain[has_slot]
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    found = edge_of[slot_owner[rows], cols]
    picked: NDArray[np.int64] = found[found >= 0]  # drop the non-edges LSA had to fill in
    return picked


def solve_sparse(edges: Edges, free: NDArray[np.int64], n_apprentices: int) -> NDArray[np.int64]:
    """Indices into ``edges`` of an optimal assignment, on the sparse graph of eligible slots.

    The smaller side are the rows (LAPJVsp augments once per row: with fewer slots than
    apprentices, slot rows are several times faster); the other side gets one zero-gain dummy
    column per row, so that a full matching always exists and "unmatched" costs nothing.
    """
    if edges.gain.size == 0:
        return np.zeros(0, dtype=np.int64)
    first_slot = np.cumsum(free) - free
    n_slots = int(free.sum())
    repeat = free[edges.craftsman]
    edge_index = np.repeat(np.arange(edges.gain.size), repeat)
    slot = first_slot[edges.craftsman[edge_index]] + _within(repeat)
    apprentice = edges.apprentice[edge_index]
    offset = float(edges.gain.max()) + 1.0
    weights = offset - edges.gain[edge_index]
    slot_rows = n_slots <= n_apprentices
    n_rows, n_cols = (n_slots, n_apprentices) if slot_rows else (n_apprentices, n_slots)
    rows, cols = (slot, apprentice) if slot_rows else (apprentice, slot)
    row_of, col_of = _full_matching(weights, rows, cols, n_rows, n_cols, offset=offset)
    real = col_of < n_cols
    chosen_slot, chosen_apprentice = (
        (row_of[real], col_of[real]) if slot_rows else (col_of[real], row_of[real])
    )
    owner = np.searchsorted(first_slot + free, chosen_slot, side="right")
    # Map (craftsman, apprentice) back to the edge index.
    keys = edges.craftsman * n_apprentices + edges.apprentice
    order = np.argsort(keys)
    found = order[np.searchsorted(keys[order], owner * n_apprentices + chosen_apprentice)]
    result: NDArray[np.int64] = found.astype(np.int64)
    return result


def _full_matching(
    weights: NDArray[np.float64],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    n_rows: int,
    n_cols: int,
    *,
    offset: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(row, column) of a min-weight matching of every row (``n_rows <= n_cols``), a row left
    unmatched costing ``offset`` (its dummy column, index ``n_cols + row``).

    When more pairs always beat fewer (every gain ``offset - weight`` exceeds what the other
    pairs' gains can differ by: the coverage bonus), an optimum matches as many rows as can be;
    if that is every row, the dummy columns are not needed, and LAPJVsp, whose every augmenting
    search scans all columns, is ~15% faster without them."""
    gain_low = offset - float(weights.max(initial=offset))
    gain_high = offset - float(weights.min(initial=offset))
    if weights.size and gain_low > n_rows * (gain_high - gain_low):
        try:
            found: tuple[NDArray[np.int64], NDArray[np.int64]] = min_weight_full_bipartite_matching(
                sp.csr_array((weights, (rows, cols)), shape=(n_rows, n_cols))
            )
            return found
        except ValueError:  # some row cannot be matched: the dummies decide which
            pass
    graph = sp.csr_array(
        (
            np.concatenate([weights, np.full(n_rows, offset)]),
            (
                np.concatenate([rows, np.arange(n_rows)]),
                np.concatenate([cols, n_cols + np.arange(n_rows)]),
            ),
        ),
        shape=(n_rows, n_cols + n_rows),
    )
    with_dummies: tuple[NDArray[np.int64], NDArray[np.int64]] = min_weight_full_bipartite_matching(
        graph
    )
    return with_dummies


def solve_components(
    edges: Edges,
    free: NDArray[np.int64],
    n_apprentices: int,
    progress: Callable[[float], None] | None = None,
) -> tuple[NDArray[np.int64], int, set[str]]:
    """Solve each connected component of the eligibility graph on its own."""
    n_craftsmen = free.size
    if edges.gain.size == 0:
        return np.zeros(0, dtype=np.int64), 0, set()
    graph = sp.coo_array(
        (np.ones(edges.gain.size), (edges.craftsman, n_craftsmen + edges.apprentice)),
        shape=(n_craftsmen + n_apprentices,) * 2,
    )
    count, labels = connected_components(graph, directed=False)
    edge_label = labels[edges.craftsman]
    order = np.argsort(edge_label, kind="stable")
    bounds = np.searchsorted(edge_label[order], np.arange(count + 1))
    chosen: list[NDArray[np.int64]] = []
    used: set[str] = set()
    solved_components = 0
    for label in range(count):
        part = order[bounds[label] : bounds[label + 1]]
        if part.size == 0:
            continue
        solved_components += 1
        craftsmen, local_c = np.unique(edges.craftsman[part], return_inverse=True)
        apprentices, local_a = np.unique(edges.apprentice[part], return_inverse=True)
        local = Edges(local_c.astype(np.int64), local_a.astype(np.int64), edges.gain[part])
        local_free = free[craftsmen]
        if int(local_free.sum()) * apprentices.size <= DENSE_FASTER_MAX_CELLS:
            picked = solve_dense(local, local_free, apprentices.size)
            used.add("dense")
        else:
            picked = solve_sparse(local, local_free, apprentices.size)
            used.add("sparse")
        chosen.append(part[picked])
        if progress is not None:
            progress(label / count)
    result = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return result, solved_components, used


def _within(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """0..count-1 for each count, concatenated."""
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - offsets
