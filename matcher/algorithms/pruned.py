"""Large problems: solve a pruned candidate graph, then prove its optimum is the full optimum.

The full eligibility graph of a big alliance is dense (with related-skill credit, a third of all
craftsmen can be eligible for an apprentice), far too large to hold or solve at 20,000 × 5,000.
So, in blocks of apprentices scored as dense (block × craftsmen) arrays:

1. keep each apprentice's best ``k`` eligible craftsmen (a top-k of its row) and each
   craftsman's best ``capacity + k`` eligible apprentices (``CraftsmenBest``: a running threshold
   per craftsman, so later blocks only look at the few cells above it);
2. solve that pruned graph exactly (``solve_components``);
3. compute node potentials ``h`` of the solution's residual graph (Bellman-Ford from a virtual
   source, vectorised; the solution is optimal on the pruned graph, so there is no negative
   cycle and ``h`` exists);
4. scan every eligible pair again: a dropped pair (m, a) with gain ``g <= h[a] - h[m]`` cannot
   create a negative cycle (``h`` stays a feasible potential), so if every dropped pair passes,
   no augmenting path or cycle improves the solution and it is optimal for the whole graph.
   Otherwise the graph changes and the loop repeats: after the first round, once, it becomes
   the pairs whose reduced cost ``h[a] - h[m] - g`` is below ``Pruning.active_margin`` (the
   chosen ones, the near-tight ones, the violations; the first solve's potentials are nearly
   optimal, so this is a small graph and the next solves are cheap); after that the violating
   pairs join it, and those below ``Pruning.grow_margin`` (it only grows, so the loop ends).
   Which pairs the graph holds never matters to the proof. How hard to prune (``Pruning``)
   depends on the size: one block, or many. Small problems keep their scored blocks for the
   pricings; where the eligible pairs are too many to cache, the first pricing keeps those
   within ``KEEP_SLACK`` of violating, and later pricings look only at them as long as the
   potentials moved less than that (``nearby_suffices``), instead of re-scoring every block.

Residual graph (min-cost form, cost = -gain), nodes: apprentices, craftsmen, a root ``R`` that
stands for "unmatched / free capacity":
    a -> m  cost -g   (eligible pair not chosen)       m -> a  cost +g  (chosen pair)
    m -> R  cost 0    (m has a free slot left)         R -> m  cost 0   (m has a chosen pair)
    R -> a  cost 0    (a unmatched)                    a -> R  cost 0   (a matched)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matcher.algorithms.assignment import Edges, solve_components
from matcher.algorithms.eligibility import eligible_mask
from matcher.algorithms.params import MatchParams
from matcher.algorithms.problem import MatchProblem
from matcher.algorithms.scoring import (
    LEVELS,
    credit_tables,
    rank_bonus,
    same_region,
    waiting_bonus,
)

BLOCK_CELLS = 2_000_000  # apprentices per block × craftsmen: 16 MB per float64 array
POTENTIAL_TOLERANCE = 1e-7  # float noise of summed gains along paths is far below this
MAX_ROUNDS = 50
# Pricing without the cache keeps the pairs whose slack is below KEEP_SLACK (the potentials of
# later rounds move by about 0.1 at 20,000 x 5,000: 0.05 up for craftsmen, 0.05 down for
# apprentices), up to NEARBY_MAX_PAIRS (16 bytes each); NEARBY_SAFETY absorbs float noise.
KEEP_SLACK = 0.25
NEARBY_MAX_PAIRS = 30_000_000
NEARBY_SAFETY = 1e-9
# A block whose cells over their craftsman's threshold outnumber this many times the kept pairs
# is first cut to each craftsman's best by a top-k of the transposed block (cheaper than a sort).
DENSE_SELECT_FACTOR = 4
NOT_ELIGIBLE = -1e12  # gains are >= 0; "not eligible" is anything below half of this
CACHE_MAX_CELLS = 150_000_000  # up to 20,000 × 7,500: eligible pairs kept between rounds
# Up to this many cells (32 MB of gains: 2,000 x 2,000) the scored blocks themselves are kept:
# pricing them costs what pricing their eligible pairs does, and listing those pairs once cost
# 10 ms of the 2,000 x 500 scan.
KEEP_BLOCKS_MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Pruning:
    """How hard the first graph is pruned, and how the graph changes between proof rounds."""

    keep_per_apprentice: int = 40  # each apprentice's best pairs
    keep_per_craftsman_extra: int = 8  # each craftsman's best free + this many
    # After the first round the graph becomes the pairs whose reduced cost is below this
    # (gains are scores, about 0..1): at 20,000 x 5,000 that is 574,000 of 828,000 pairs and
    # the next round is the last but one.
    active_margin: float = 0.03
    # Later rounds add the pairs whose slack is below this (the default: the violations only).
    grow_margin: float = -POTENTIAL_TOLERANCE


# Problems of many blocks: a first graph near enough the optimum that few, cheap rounds follow
# (at 20,000 x 5,000, 8 per apprentice made the later graphs 1.9 M pairs and the run 1.7x
# slower).
MANY_BLOCKS = Pruning()
# Problems scored in one block: a solve costs several milliseconds whatever the graph, pricing
# the kept block ~3 ms, the first solve over 40 per apprentice (78,000 pairs at 2,000 x 500)
# 45 ms. So a small first graph (17,600 pairs), and later rounds that also take the near pairs
# (3 rounds, not 4): solve_pruned 0.108-0.118 s against 0.157 s (process time, min of 12,
# interleaved, shared machine).
ONE_BLOCK = Pruning(
    keep_per_apprentice=8, keep_per_craftsman_extra=4, active_margin=0.02, grow_margin=0.02
)


def pruning_for(cells: int) -> Pruning:
    """The pruning of a problem of ``cells`` apprentice × craftsman cells."""
    return ONE_BLOCK if cells <= BLOCK_CELLS else MANY_BLOCKS


# What the scan keeps for later pricings: the scored blocks, every eligible pair, or nothing
# (every pricing re-scores the blocks).
Cache = Literal["blocks", "pairs", "none"]


@dataclass(frozen=True)
class Block:
    """Gains of one block of apprentices against every craftsman; -inf where not eligible."""

    apprentices: slice
    gain: NDArray[np.float64]  # (B, M); below NOT_ELIGIBLE / 2 where not eligible
    fit_any: NDArray[np.bool_]  # (B,) some other-unit craftsman reaches min_fit
    excluded_any: NDArray[np.bool_]  # (B,) some such pair is excluded
    eligible_any: NDArray[np.bool_]  # (B,) some pair is eligible (free slots or not)
    eligible_count: int  # eligible pairs in the block (free slots or not)


class BlockScorer:
    """Dense block scoring from the per-level credit tables (sparse wants × dense tables)."""

    def __init__(
        self,
        problem: MatchProblem,
        params: MatchParams,
        *,
        open_craftsman: NDArray[np.bool_],
        open_apprentice: NDArray[np.bool_],
        bonus: float,
        block_cells: int = BLOCK_CELLS,
    ) -> None:
        self.problem, self.params, self.bonus = problem, params, bonus
        self.open_craftsman, self.open_apprentice = open_craftsman, open_apprentice
        self.all_craftsmen_open = bool(open_craftsman.all())
        tables = credit_tables(problem, params.related_credit).by_level
        wants = sp.csr_array(problem.apprentice_wants, dtype=np.float64)
        weights = sp.csr_array(problem.apprentice_weights, dtype=np.float64)
        self.total_weight = np.asarray(weights.sum(axis=1)).ravel()
        # One product per block: the wants at level L are columns L·S + skill of a stacked
        # (A, 5·S) matrix, against the per-level tables stacked as one C-ordered (5·S, M) array
        # (five products, each copying an F-ordered table, took twice as long).
        n_skills = problem.n_skills
        level_index = np.searchsorted(np.asarray(LEVELS, dtype=np.float64), wants.data)
        at_a_level = np.isin(wants.data, LEVELS)
        stacked_column = level_index * n_skills + wants.indices
        row_of = np.repeat(np.arange(problem.n_apprentices), np.diff(wants.indptr))
        self.stacked_weights = sp.csr_array(
            (
                weights.data[at_a_level],
                (row_of[at_a_level], stacked_column[at_a_level]),
            ),
            shape=(problem.n_apprentices, len(LEVELS) * n_skills),
        )
        self.stacked_tables = np.empty((len(LEVELS) * n_skills, problem.n_craftsmen))
        for index, level in enumerate(LEVELS):
            rows_of_level = slice(index * n_skills, (index + 1) * n_skills)
            self.stacked_tables[rows_of_level] = tables[level].T.toarray()
        excluded = problem.forbidden  # excluded or avoided: both forbid the pair
        self.excluded = excluded[np.argsort(excluded[:, 1], kind="stable")]
        m = problem.n_craftsmen
        self.block_size = max(1, min(problem.n_apprentices, block_cells // max(m, 1)))
        # Not eligible: NOT_ELIGIBLE - (row · M + column), written where needed by broadcasting
        # (building a (B, M) array of them cost ~3 ms a run at 2,000 x 500).
        self._fill_rows = NOT_ELIGIBLE - np.arange(self.block_size, dtype=np.float64) * m
        self._fill_columns = np.arange(m, dtype=np.float64)
        self._scratch: NDArray[np.float64] | None = None

    def scratch(self, rows: int) -> NDArray[np.float64]:
        """A (rows, M) array, the same memory every time: for a pricing's slacks and the
        transposed block of the craftsmen's best (a fresh 8 MB array each time cost ~2.5 ms of
        page faults at 2,000 x 500)."""
        if self._scratch is None:
            self._scratch = np.empty(self.block_size * self.problem.n_craftsmen)
        m = self.problem.n_craftsmen
        return self._scratch[: rows * m].reshape(rows, m)

    def blocks(self) -> Iterator[Block]:
        """Every block of apprentices, in order."""
        for start in range(0, self.problem.n_apprentices, self.block_size):
            yield self.block(slice(start, min(start + self.block_size, self.problem.n_apprentices)))

    def block(self, rows: slice) -> Block:
        """Gains of apprentices ``rows`` (rows are positions start..stop-1)."""
        problem, params = self.problem, self.params
        fit = np.asarray(self.stacked_weights[rows] @ self.stacked_tables, dtype=np.float64)
        total = self.total_weight[rows]
        with np.errstate(divide="ignore"):
            fit *= np.where(total > 0, 1.0 / total, 0.0)[:, None]
        np.minimum(fit, 1.0, out=fit)
        lo, hi = np.searchsorted(self.excluded[:, 1], [rows.start, rows.stop])
        excluded_rows = self.excluded[lo:hi, 1] - rows.start
        excluded_cols = self.excluded[lo:hi, 0]
        checked = eligible_mask(
            craftsman_unit=problem.craftsman_unit[None, :],
            apprentice_unit=problem.apprentice_unit[rows, None],
            fit=fit,
            min_fit=params.min_fit,
            excluded=(excluded_rows, excluded_cols),
        )
        fit_any: NDArray[np.bool_] = np.asarray(checked.fits.any(axis=1))
        was_eligible = checked.fits[excluded_rows, excluded_cols]
        excluded_any = np.zeros(fit_any.size, dtype=bool)
        excluded_any[excluded_rows[was_eligible]] = True
        fits = checked.eligible
        eligible_any: NDArray[np.bool_] = np.asarray(fits.any(axis=1))
        eligible_count = int(np.count_nonzero(fits))
        if not self.all_craftsmen_open:
            fits &= self.open_craftsman[None, :]
        if not self.open_apprentice[rows].all():
            fits &= self.open_apprentice[rows, None]
        gain = fit  # in place from here on: one (B, M) array instead of several
        if params.region_bonus:
            # The bonus added where it is earned, with no (B, M) array of bonuses.
            same = same_region(
                problem.craftsman_region[None, :], problem.apprentice_region[rows, None]
            )
            np.add(gain, params.region_bonus, out=gain, where=same)
        if params.waiting_bonus:  # one bonus per apprentice: a column, added across the row
            gain += waiting_bonus(problem, params, np.arange(rows.start, rows.stop))[:, None]
        if params.preference_bonus and problem.preference_rank is not None:
            ranked = sp.coo_array(problem.preference_rank[rows])  # a few cells a row
            gain[ranked.row, ranked.col] += rank_bonus(params, ranked.data)
        if self.bonus:
            gain += self.bonus
        # Not eligible: distinct, very negative values (ties make numpy's argpartition crawl).
        np.subtract(
            self._fill_rows[: gain.shape[0], None],
            self._fill_columns[None, :],
            out=gain,
            where=np.logical_not(fits, out=fits),
        )
        return Block(rows, gain, fit_any, excluded_any, eligible_any, eligible_count)


@dataclass
class Scan:
    """What the first pass learnt: the kept pairs and, per apprentice, what exists at all."""

    edges: Edges
    eligible_pairs: int
    has_edge: NDArray[np.bool_]
    fit_any: NDArray[np.bool_]
    excluded_any: NDArray[np.bool_]
    # Every open eligible pair, block by block (one concatenation would double the peak
    # memory), when they fit in memory: re-scans then need no re-scoring.
    cached: list[Edges] | None
    # Or, for small problems, the scored blocks themselves.
    blocks: list[Block] | None = None


@dataclass(frozen=True)
class CraftsmenBest:
    """Each craftsman's best ``keep[m]`` pairs seen so far (in no particular order)."""

    keep: NDArray[np.int64]  # (M,)
    craftsman: NDArray[np.int64]
    apprentice: NDArray[np.int64]
    gain: NDArray[np.float64]
    # (M,) the gain a pair must beat to be kept: the keep[m]-th best once there are keep[m].
    threshold: NDArray[np.float64]

    @classmethod
    def empty(cls, keep: NDArray[np.int64]) -> CraftsmenBest:
        none = np.zeros(0, dtype=np.int64)
        threshold = np.where(keep > 0, NOT_ELIGIBLE, np.inf)
        return cls(keep, none, none, np.zeros(0), threshold)

    def merged(
        self,
        gain: NDArray[np.float64],
        start: int,
        scratch: NDArray[np.float64] | None = None,
    ) -> CraftsmenBest:
        """With a block's (B, M) gains (apprentices from ``start``). Only the cells above their
        craftsman's threshold are looked at: after the first blocks those are few, where a
        per-block top-k of every column cost a third of the scan. ``scratch``: (M, B) memory
        for the transposed block, if any."""
        over = gain > self.threshold[None, :]
        over_count = int(np.count_nonzero(over))
        if over_count == 0:
            return self
        most = int(self.keep.max())
        if over_count > DENSE_SELECT_FACTOR * most * self.keep.size:
            # Most of the block is over (the first blocks): each column's best ``most`` first,
            # by a top-k of the transposed block, instead of sorting every cell over (nor
            # listing them: 354,000 at 2,000 x 500).
            if scratch is None:
                by_craftsman = np.ascontiguousarray(gain.T)
            else:
                by_craftsman = scratch
                np.copyto(by_craftsman, gain.T)
            local = _top(by_craftsman, min(most, gain.shape[0]))
            over_col = np.repeat(np.arange(self.keep.size), local.shape[1])
            over_row = local.ravel()
            above = gain[over_row, over_col] > self.threshold[over_col]
            over_row, over_col = over_row[above], over_col[above]
        else:
            _, over_row, over_col = cells_where(over)
        # Only the craftsmen with a cell over are merged again; the others' pairs stay as they
        # are (later blocks touch a few hundred pairs, where re-sorting every kept pair, 100,000
        # at 50,000 x 10,000, took 20-40 ms a block).
        touched = np.zeros(self.keep.size, dtype=bool)
        touched[over_col] = True
        again = touched[self.craftsman]
        stay = ~again
        craftsman = np.concatenate([self.craftsman[again], over_col.astype(np.int64)])
        apprentice = np.concatenate([self.apprentice[again], over_row.astype(np.int64) + start])
        value = np.concatenate([self.gain[again], gain[over_row, over_col]])
        # Ties broken by a fixed scramble of the apprentice, not its position: the lowest
        # positions for every craftsman would give all of them the same few apprentices.
        scramble = (apprentice * 2654435761) % 4294967291
        order = np.lexsort((scramble, -value, craftsman))
        craftsman, apprentice, value = craftsman[order], apprentice[order], value[order]
        first = np.searchsorted(craftsman, craftsman)
        kept = np.arange(craftsman.size) - first < self.keep[craftsman]
        craftsman, apprentice, value = craftsman[kept], apprentice[kept], value[kept]
        count = np.bincount(craftsman, minlength=self.keep.size)
        full = np.flatnonzero(touched & (count >= self.keep) & (self.keep > 0))
        threshold = self.threshold.copy()
        starts = np.searchsorted(craftsman, full)
        threshold[full] = value[starts + self.keep[full] - 1]
        craftsman = np.concatenate([self.craftsman[stay], craftsman])
        apprentice = np.concatenate([self.apprentice[stay], apprentice])
        value = np.concatenate([self.gain[stay], value])
        return CraftsmenBest(self.keep, craftsman, apprentice, value, threshold)


def scan(
    scorer: BlockScorer,
    free: NDArray[np.int64],
    keep_per_apprentice: int = MANY_BLOCKS.keep_per_apprentice,
    keep_per_craftsman_extra: int = MANY_BLOCKS.keep_per_craftsman_extra,
    cache: Cache | None = None,
) -> Scan:
    """Keep the best pairs of each apprentice and of each craftsman."""
    problem = scorer.problem
    n_a, n_m = problem.n_apprentices, problem.n_craftsmen
    keep_a = min(keep_per_apprentice, n_m)
    keep_m = np.minimum(free + keep_per_craftsman_extra, n_a)
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    gains: list[NDArray[np.float64]] = []
    best = CraftsmenBest.empty(keep_m)
    has_edge = np.zeros(n_a, dtype=bool)
    fit_any = np.zeros(n_a, dtype=bool)
    excluded_any = np.zeros(n_a, dtype=bool)
    eligible = 0
    kind = cache or cache_for(n_a * n_m)
    pairs: list[Edges] | None = [] if kind == "pairs" else None
    kept: list[Block] | None = [] if kind == "blocks" else None
    for block in scorer.blocks():
        gain, start = block.gain, block.apprentices.start
        if pairs is not None:
            pairs.append(_eligible_edges(block))
        if kept is not None:
            kept.append(block)
        eligible += block.eligible_count
        has_edge[block.apprentices] = block.eligible_any
        fit_any[block.apprentices] = block.fit_any
        excluded_any[block.apprentices] = block.excluded_any
        # Each apprentice's best (its row holds every craftsman, so this is exact).
        best_cols = _top(gain, keep_a)
        values = np.take_along_axis(gain, best_cols, axis=1)
        ok = values > NOT_ELIGIBLE / 2
        rows.append(np.nonzero(ok)[0] + start)
        cols.append(best_cols[ok])
        gains.append(values[ok])
        best = best.merged(gain, start, scorer.scratch(gain.shape[0]).reshape(gain.shape[::-1]))
    apprentice, craftsman, gain = _unique_pairs(
        np.concatenate([*rows, best.apprentice]),
        np.concatenate([*cols, best.craftsman]),
        np.concatenate([*gains, best.gain]),
        n_a,
    )
    edges = Edges(craftsman.astype(np.int64), apprentice.astype(np.int64), gain)
    return Scan(edges, eligible, has_edge, fit_any, excluded_any, pairs, kept)


def cache_for(cells: int) -> Cache:
    """What the scan of ``cells`` apprentice × craftsman cells keeps for later pricings."""
    if cells <= KEEP_BLOCKS_MAX_CELLS:
        return "blocks"
    return "pairs" if cells <= CACHE_MAX_CELLS else "none"


def potentials(
    edges: Edges, picked: NDArray[np.int64], free: NDArray[np.int64], n_apprentices: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Feasible node potentials (apprentices, craftsmen) of the solution's residual graph."""
    n_m = free.size
    root = n_apprentices + n_m
    chosen = np.zeros(edges.gain.size, dtype=bool)
    chosen[picked] = True
    used = np.bincount(edges.craftsman[picked], minlength=n_m)
    matched = np.zeros(n_apprentices, dtype=bool)
    matched[edges.apprentice[picked]] = True
    a_node, m_node = edges.apprentice, n_apprentices + edges.craftsman
    all_m = np.arange(n_m) + n_apprentices
    all_a = np.arange(n_apprentices)
    src = np.concatenate(
        [
            a_node[~chosen],
            m_node[chosen],
            all_m[used < free],
            np.full(int((used > 0).sum()), root),
            np.full(int((~matched).sum()), root),
            all_a[matched],
        ]
    )
    dst = np.concatenate(
        [
            m_node[~chosen],
            a_node[chosen],
            np.full(int((used < free).sum()), root),
            all_m[used > 0],
            all_a[~matched],
            np.full(int(matched.sum()), root),
        ]
    )
    cost = np.concatenate(
        [-edges.gain[~chosen], edges.gain[chosen], np.zeros(src.size - edges.gain.size)]
    )
    distance = _bellman_ford(src, dst, cost, root + 1)
    return distance[:n_apprentices], distance[n_apprentices:root]


def _bellman_ford(
    src: NDArray[np.int64], dst: NDArray[np.int64], cost: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """Shortest distances from a virtual source joined to every node at cost 0 (Johnson's
    start), by synchronous relaxation rounds over all arcs until nothing changes."""
    order = np.argsort(dst, kind="stable")
    src, dst, cost = src[order], dst[order], cost[order]
    targets, starts = np.unique(dst, return_index=True)
    distance = np.zeros(n)
    for _ in range(n + 1):
        best = np.minimum.reduceat(distance[src] + cost, starts)
        improved = best < distance[targets] - 1e-12
        if not improved.any():
            return distance
        distance[targets[improved]] = best[improved]
    raise ArithmeticError("negative cycle in a residual graph: the pruned solve was not optimal")


@dataclass(frozen=True)
class Priced:
    """Eligible pairs outside the graph whose slack ``h[a] - h[m] - gain`` is below a margin."""

    edges: Edges
    slack: NDArray[np.float64]  # (E,); below -POTENTIAL_TOLERANCE: a violation
    near_complete: bool = False  # every pair below the asked margin is here (not just violations)
    nearby: list[Edges] | None = None  # every eligible pair with slack below keep_slack

    @property
    def violating(self) -> NDArray[np.bool_]:
        """The pairs that could still improve the solution."""
        found: NDArray[np.bool_] = self.slack < -POTENTIAL_TOLERANCE
        return found


def violations(
    scorer: BlockScorer,
    h_apprentice: NDArray[np.float64],
    h_craftsman: NDArray[np.float64],
    present: Edges,
    cached: list[Edges] | None = None,
    margin: float = -POTENTIAL_TOLERANCE,
    blocks: list[Block] | None = None,
    near_limit: int | None = None,
    keep_slack: float | None = None,
) -> Priced:
    """Eligible pairs not in the graph yet whose gain exceeds ``h[a] - h[m] - margin``; with
    the default margin, those that could still improve the solution (pairs already in the graph
    are covered by its residual arcs). One pass over every pair prices both the violations and,
    with a positive margin, the pairs that come near them: at most ``near_limit`` of those
    (beyond it only the violations, and ``Priced.near_complete`` is False). With
    ``keep_slack``, every eligible pair whose slack is below it is kept too (``Priced.nearby``,
    in the graph or not; None beyond NEARBY_MAX_PAIRS), for :func:`nearby_suffices`. The pairs
    come from ``cached``, else from ``blocks`` (scored before), else from re-scored blocks."""
    n_a = scorer.problem.n_apprentices
    present_keys = np.sort(present.craftsman * n_a + present.apprentice)
    found: list[Edges] = []
    slacks: list[NDArray[np.float64]] = []
    nearby: list[Edges] | None = [] if keep_slack is not None else None
    nearby_count = 0
    near_found = 0
    looked_at = margin if keep_slack is None else max(margin, keep_slack)
    for c, r, gain, slack in _priced_parts(
        scorer, h_apprentice, h_craftsman, cached, blocks, looked_at
    ):
        if nearby is not None and keep_slack is not None:
            close = slack < keep_slack
            nearby.append(Edges(c[close].astype(np.int32), r[close].astype(np.int32), gain[close]))
            nearby_count += int(close.sum())
            if nearby_count > NEARBY_MAX_PAIRS:
                nearby = None
        below = slack < margin
        c, r, gain, slack = c[below], r[below], gain[below], slack[below]
        new = ~_contains(present_keys, c * n_a + r)
        found.append(Edges(c[new], r[new], gain[new]))
        slacks.append(slack[new])
        near_found += int(new.sum())
        if near_limit is not None and near_found > near_limit and margin > -POTENTIAL_TOLERANCE:
            # Too many near pairs to be worth a smaller graph: keep the violations only.
            margin = -POTENTIAL_TOLERANCE
            violating = [one < margin for one in slacks]
            found = [_select(e, v) for e, v in zip(found, violating, strict=True)]
            slacks = [one[v] for one, v in zip(slacks, violating, strict=True)]
    return Priced(
        Edges(
            np.concatenate([e.craftsman for e in found]) if found else np.zeros(0, np.int64),
            np.concatenate([e.apprentice for e in found]) if found else np.zeros(0, np.int64),
            np.concatenate([e.gain for e in found]) if found else np.zeros(0),
        ),
        np.concatenate(slacks) if slacks else np.zeros(0),
        near_complete=margin > -POTENTIAL_TOLERANCE,
        nearby=nearby,
    )


def nearby_suffices(
    h_apprentice: NDArray[np.float64],
    h_craftsman: NDArray[np.float64],
    then_apprentice: NDArray[np.float64],
    then_craftsman: NDArray[np.float64],
    keep_slack: float,
) -> bool:
    """Whether the pairs kept with slack below ``keep_slack`` under the ``then`` potentials hold
    every possible violation under the new ones. A pair left out had slack >= keep_slack; its
    slack now is that plus ``dh[a] - dh[m]`` (dh: the change of each potential), so it is at least
    ``keep_slack + min dh[a] - max dh[m]``; if that is not negative, no left-out pair violates."""
    if h_craftsman.size == 0 or h_apprentice.size == 0:
        return True
    rise_craftsman = float((h_craftsman - then_craftsman).max())
    rise_apprentice = float((h_apprentice - then_apprentice).min())
    return keep_slack + rise_apprentice - rise_craftsman >= NEARBY_SAFETY


# (craftsman, apprentice, gain, slack) of some priced pairs
PricedPart = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]


def _priced_parts(
    scorer: BlockScorer,
    h_apprentice: NDArray[np.float64],
    h_craftsman: NDArray[np.float64],
    cached: list[Edges] | None,
    blocks: list[Block] | None,
    margin: float,
) -> Iterator[PricedPart]:
    """(craftsman, apprentice, gain, slack) of the eligible pairs with slack below ``margin``,
    part by part: from the cached pairs, or from each block (kept or re-scored) as a whole (a
    non-eligible cell's gain is so low that its slack never is; no compacting of it first)."""
    if cached is not None:
        for part in cached:
            slack = h_apprentice[part.apprentice] - h_craftsman[part.craftsman] - part.gain
            hit = np.flatnonzero(slack < margin)
            yield (
                part.craftsman[hit].astype(np.int64),
                part.apprentice[hit].astype(np.int64),
                part.gain[hit],
                slack[hit],
            )
        return
    for block in scorer.blocks() if blocks is None else blocks:
        rows = block.apprentices
        slack_block = np.subtract(
            h_apprentice[rows, None], h_craftsman[None, :], out=scorer.scratch(block.gain.shape[0])
        )
        slack_block -= block.gain
        flat, r, c = cells_where(slack_block < margin)
        yield c, r + rows.start, block.gain.reshape(-1)[flat], slack_block.reshape(-1)[flat]


def cells_where(
    mask: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(flat positions, rows, columns) of the True cells of a C-ordered 2-D mask, row-major:
    ``np.nonzero``'s rows and columns, from the flat positions (2-D ``np.nonzero`` took 1.9 ms
    on a 2,000 x 500 block, this 0.6 ms; and a flat take is twice as fast as ``a[rows, cols]``)."""
    flat = np.flatnonzero(mask).astype(np.int64, copy=False)
    rows, columns = np.divmod(flat, max(mask.shape[1], 1))
    return flat, rows, columns


def _contains(sorted_keys: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """``np.isin`` for an already sorted haystack (isin would sort it again for every block)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    where = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    found: NDArray[np.bool_] = sorted_keys[where] == keys
    return found


def _eligible_edges(block: Block) -> Edges:
    """The block's open eligible pairs, compactly (int32 positions)."""
    flat, r, c = cells_where(block.gain > NOT_ELIGIBLE / 2)
    return Edges(
        c.astype(np.int32),
        (r + block.apprentices.start).astype(np.int32),
        block.gain.reshape(-1)[flat],
    )


@dataclass(frozen=True)
class PrunedSolution:
    """The optimal pairs (indices into ``edges``) and how the proof went."""

    edges: Edges
    picked: NDArray[np.int64]
    scan: Scan
    rounds: int
    components: int
    inner: set[str]
    scan_seconds: float
    reshaped: bool  # the graph was replaced by the pairs near tight (``active_margin``)


def solve_pruned(
    problem: MatchProblem,
    params: MatchParams,
    *,
    free: NDArray[np.int64],
    open_apprentice: NDArray[np.bool_],
    bonus: float,
    progress: Callable[[float], None] | None = None,
    pruning: Pruning | None = None,
    cache: Cache | None = None,
    keep_slack: float = KEEP_SLACK,
) -> PrunedSolution:
    """The exact optimum over all eligible pairs, found on a pruned graph and proven optimal."""
    settings = pruning or pruning_for(problem.n_apprentices * problem.n_craftsmen)
    active_margin = settings.active_margin
    report = progress or (lambda _f: None)
    started = time.perf_counter()
    scorer = BlockScorer(
        problem, params, open_craftsman=free > 0, open_apprentice=open_apprentice, bonus=bonus
    )
    first = scan(
        scorer, free, settings.keep_per_apprentice, settings.keep_per_craftsman_extra, cache
    )
    scan_seconds = time.perf_counter() - started
    edges = first.edges
    report(0.3)
    reshaped = False
    # Without the cache every pricing re-scores every block: the first keeps the pairs within
    # KEEP_SLACK of violating, and later ones price only those while the potentials moved less
    # than that (nearby_suffices: exact), at 50,000 x 10,000 a few million of 177 million.
    nearby: tuple[list[Edges], NDArray[np.float64], NDArray[np.float64]] | None = None
    rescoring = first.cached is None and first.blocks is None
    for rounds in range(1, MAX_ROUNDS + 1):
        picked, components, inner = solve_components(edges, free, problem.n_apprentices)
        h_a, h_m = potentials(edges, picked, free, problem.n_apprentices)
        report(min(0.3 + 0.2 * rounds, 0.9))
        first_round = rounds == 1
        parts = first.cached
        if nearby is not None and nearby_suffices(h_a, h_m, nearby[1], nearby[2], keep_slack):
            parts = nearby[0]
        priced = violations(
            scorer,
            h_a,
            h_m,
            edges,
            parts,
            margin=active_margin if first_round else settings.grow_margin,
            near_limit=edges.gain.size,
            keep_slack=keep_slack if first_round and rescoring else None,
            blocks=first.blocks,
        )
        if priced.nearby is not None:
            nearby = (priced.nearby, h_a, h_m)
        violating = priced.violating
        if not violating.any():
            return PrunedSolution(
                edges, picked, first, rounds, components, inner, scan_seconds, reshaped
            )
        # Later rounds add what they priced (the violations, and the near pairs of a positive
        # grow_margin): the graph only grows, so the loop ends.
        grown = _select(priced.edges, violating) if first_round else priced.edges
        if first_round and priced.near_complete:
            # Once: the next graph is every pair whose reduced cost under these (near-optimal)
            # potentials is below the margin, plus the chosen pairs; far smaller than the
            # first graph, so the next solves are cheap (the proof never depends on which
            # pairs the graph holds).
            reduced = h_a[edges.apprentice] - h_m[edges.craftsman] - edges.gain
            keep = reduced < active_margin
            keep[picked] = True
            # Only when it is smaller (degenerate gains can put every pair near tight).
            reshaped = int(keep.sum()) + priced.slack.size <= edges.gain.size
            if reshaped:
                edges, grown = _select(edges, keep), priced.edges
        merged = _unique_pairs(
            np.concatenate([edges.apprentice, grown.apprentice]),
            np.concatenate([edges.craftsman, grown.craftsman]),
            np.concatenate([edges.gain, grown.gain]),
            problem.n_apprentices,
        )
        edges = Edges(merged[1].astype(np.int64), merged[0].astype(np.int64), merged[2])
    raise ArithmeticError("the pruned graph did not reach a proven optimum")


def _select(edges: Edges, which: NDArray[np.bool_]) -> Edges:
    """The pairs ``which`` of ``edges``."""
    return Edges(edges.craftsman[which], edges.apprentice[which], edges.gain[which])


def best_per_side(
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
    gain: NDArray[np.float64],
    free: NDArray[np.int64],
    *,
    per_apprentice: int,
    per_craftsman_extra: int,
) -> NDArray[np.int64]:
    """Indices (ascending) of each apprentice's ``per_apprentice`` best pairs and each
    craftsman's best ``free + per_craftsman_extra``, among parallel pair arrays."""
    order = np.lexsort((-gain, apprentice))
    rank = np.arange(order.size) - np.searchsorted(apprentice[order], apprentice[order])
    by_apprentice = order[rank < per_apprentice]
    order = np.lexsort((-gain, craftsman))
    rank = np.arange(order.size) - np.searchsorted(craftsman[order], craftsman[order])
    by_craftsman = order[rank < free[craftsman[order]] + per_craftsman_extra]
    return np.union1d(by_apprentice, by_craftsman).astype(np.int64)


def _top(gain: NDArray[np.float64], count: int) -> NDArray[np.int64]:
    """Column indices of the ``count`` largest values of each row (unordered)."""
    size = gain.shape[1]
    if count <= 0:
        return np.zeros((gain.shape[0], 0), dtype=np.int64)
    if count >= size:
        return np.broadcast_to(np.arange(size), gain.shape).copy()
    # Contiguous rows and a small kth: what numpy's introselect does fast (a kth near the end is
    # twice as slow). Negated in place and back (exact), not into a new (B, M) array, whose page
    # faults a fresh process pays for every block.
    np.negative(gain, out=gain)
    try:
        return np.argpartition(gain, count - 1, axis=1)[:, :count]
    finally:
        np.negative(gain, out=gain)


def _unique_pairs(
    apprentice: NDArray[np.int64],
    craftsman: NDArray[np.int64],
    gain: NDArray[np.float64],
    n_apprentices: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Each (apprentice, craftsman) once, sorted by (craftsman, apprentice)."""
    keys = craftsman.astype(np.int64) * max(n_apprentices, 1) + apprentice
    keys, first = np.unique(keys, return_index=True)
    return apprentice[first], craftsman[first], gain[first]
