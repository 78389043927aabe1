"""The matching engine (``solve_match``) on generated alliances, against the naive way.

For each size (apprentices × craftsmen) a realistic alliance is generated with a seeded numpy
Generator: craftsman capacities 1–4, a taxonomy of 300 skill tags (30 parent categories, every
other tag a child of one), Zipf-skewed skill popularity, craftsmen with 2–6 skills at levels 1–5,
apprentices wanting 1–3 skills at target levels 1–5 (weight 1, sometimes 2), 12 to ~200 member
units and 10 region codes (a few unset). Default ``MatchParams()``.

- naive: Python loops over every (craftsman, apprentice) pair computing matching.md's fit, then
  one dense ``scipy.optimize.linear_sum_assignment`` over slots × apprentices (each craftsman
  repeated once per free slot). Skipped when it would be too big.
- ours: ``solve_match(problem, MatchParams())``, with its build (scoring/eligibility) and solve
  times from ``result.stats``.
- OR-Tools (a bench-only extra: ``pip install -e '.[bench]'``; never a runtime dependency):
  ``SimpleMinCostFlow`` on the same eligible graph (source -> craftsman, capacity its free
  slots; craftsman -> apprentice, cost -round(score * 1e6); apprentice -> sink; a zero-cost
  source -> sink bypass so that leaving a slot empty costs nothing), timed from adding the arcs
  to the solved flow; the eligible pairs come from the engine's own ``eligible_pairs`` and are
  not timed. Up to ``--ortools-max-cells`` apprentices × craftsmen.
- Fair shares (``--fair-sizes``, default 2,000 × 500): ``solve_match`` with the rules of
  ``--fair-rules`` against the same rules solved as one program over every eligible pair (no
  column generation; the way the rules were first solved), with ``--fair-timeout``.

Every measurement runs in a fresh subprocess (this script with the hidden ``--one``/``--way``
flags), so timings and peak memory do not leak between runs. Naive and ours also print their
CPU time (``time.process_time``): on a shared machine it moves far less with the load than the
wall time (the targets are wall times on an idle machine).

    .venv/bin/python bench/matching.py [--sizes 200x50,2000x500,20000x5000,50000x10000]
        [--seed 7] [--timeout 1800] [--method auto] [--memory-limit GIB]
        [--ortools-max-cells 100000000] [--fair-sizes 2000x500] [--fair-rules K=V,...]
        [--fair-timeout 300]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from matcher.algorithms import MatchParams, MatchProblem, fairness, solve_match
from matcher.algorithms.solver import eligible_pairs

DEFAULT_SIZES = "200x50,2000x500,20000x5000,50000x10000"
DEFAULT_FAIR_SIZES = "2000x500"
# Binding at 2,000 x 500 (38 units, ~1,220 slots, ~32 per unit): a unit's team gives at most
# 30 pairs, at most 2 pairs between any two units, and each unit's apprentices 40 if they can.
DEFAULT_FAIR_RULES = (
    "max_pairs_per_craftsman_unit=30,max_pairs_per_unit_pair=2,min_pairs_per_apprentice_unit=40"
)
ORTOOLS_COST_SCALE = 1_000_000  # OR-Tools costs are integers: scores in millionths
N_SKILLS = 300
N_PARENTS = 30
N_REGIONS = 10
ZIPF_EXPONENT = 1.1
MAX_CAPACITY = 4
FIT_TOLERANCE = 1e-9  # as the engine: a fit of exactly min_fit must survive float sums
NAIVE_MAX_PAIRS = 20_000_000  # Python-loop pairs the naive way is allowed to score
NAIVE_MAX_BYTES = 2 * 1024**3  # its dense slots × apprentices float64 matrix
OBJECTIVE_TOLERANCE = 1e-6
MEMORY_NOTE = (
    "peak MiB = ru_maxrss (getrusage RUSAGE_SELF) at the end of the measurement minus ru_maxrss "
    "right after generating the problem, in a fresh subprocess; before the baseline the "
    "high-water mark is reset to the current RSS (gc, malloc_trim, /proc/self/clear_refs 5)"
)


@dataclass(frozen=True)
class Size:
    """A benchmark size: A apprentices, M craftsmen, and the number of member units."""

    apprentices: int
    craftsmen: int

    @classmethod
    def parse(cls, text: str) -> Size:
        apprentices, _, craftsmen = text.lower().replace(",", "").replace("_", "").partition("x")
        return cls(int(apprentices), int(craftsmen))

    @property
    def label(self) -> str:
        return f"{self.apprentices:,}×{self.craftsmen:,}"

    @property
    def key(self) -> str:
        return f"{self.apprentices}x{self.craftsmen}"

    @property
    def units(self) -> int:
        """12 units for 200 apprentices, growing with the square root (120 for 20,000)."""
        return max(2, round(12 * math.sqrt(self.apprentices / 200)))

    def naive_skip_reason(self) -> str | None:
        pairs = self.apprentices * self.craftsmen
        matrix_bytes = MAX_CAPACITY * self.craftsmen * self.apprentices * 8
        if pairs > NAIVE_MAX_PAIRS:
            return f"{pairs:.1e} pairs to score in Python loops (limit {NAIVE_MAX_PAIRS:.0e})"
        if matrix_bytes > NAIVE_MAX_BYTES:
            return f"dense slots × apprentices matrix up to {matrix_bytes / 1024**3:.1f} GiB"
        return None


# --- Generation -------------------------------------------------------------------------------


def pick_skills(
    rng: np.random.Generator, log_p: NDArray[np.float64], n: int, low: int, high: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``low``..``high`` distinct skills per row, drawn by popularity (Gumbel top-k), as CSR."""
    counts = rng.integers(low, high + 1, size=n)
    columns = np.empty((n, high), dtype=np.int64)
    chunk = 8192
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        keys = log_p + rng.gumbel(size=(stop - start, log_p.size))
        top = np.argpartition(-keys, high - 1, axis=1)[:, :high]
        columns[start:stop] = top
    mask = np.arange(high) < counts[:, None]
    columns = np.sort(np.where(mask, columns, log_p.size), axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, columns[mask]


def generate(size: Size, seed: int) -> MatchProblem:
    """A realistic alliance of ``size``, the same for the same seed."""
    rng = np.random.default_rng([seed, size.apprentices, size.craftsmen])
    m, a = size.craftsmen, size.apprentices
    skill_parent = np.full(N_SKILLS, -1, dtype=np.int64)
    children = np.arange(N_PARENTS, N_SKILLS)
    skill_parent[children] = rng.permutation(children.size) % N_PARENTS
    rank = rng.permutation(N_SKILLS) + 1
    popularity = 1.0 / rank.astype(np.float64) ** ZIPF_EXPONENT
    log_p = np.log(popularity / popularity.sum())

    indptr, indices = pick_skills(rng, log_p, m, 2, 6)
    levels = rng.integers(1, 6, size=indices.size).astype(np.float64)
    craftsman_skills = sp.csr_array((levels, indices, indptr), shape=(m, N_SKILLS))

    indptr, indices = pick_skills(rng, log_p, a, 1, 3)
    targets = rng.integers(1, 6, size=indices.size).astype(np.float64)
    weights = np.where(rng.random(indices.size) < 0.2, 2.0, 1.0)
    wants = sp.csr_array((targets, indices, indptr), shape=(a, N_SKILLS))
    want_weights = sp.csr_array((weights, indices.copy(), indptr.copy()), shape=(a, N_SKILLS))

    def regions(n: int) -> NDArray[np.int64]:
        codes = rng.integers(0, N_REGIONS, size=n)
        return np.where(rng.random(n) < 0.05, -1, codes).astype(np.int64)

    return MatchProblem(
        craftsman_unit=rng.integers(0, size.units, size=m).astype(np.int64),
        craftsman_region=regions(m),
        craftsman_free=rng.integers(1, MAX_CAPACITY + 1, size=m).astype(np.int64),
        craftsman_skills=craftsman_skills,
        apprentice_unit=rng.integers(0, size.units, size=a).astype(np.int64),
        apprentice_region=regions(a),
        apprentice_wants=wants,
        apprentice_weights=want_weights,
        skill_parent=skill_parent,
    )


# --- The two ways -----------------------------------------------------------------------------


def naive_match(problem: MatchProblem, params: MatchParams) -> dict[str, Any]:
    """matching.md done the straightforward way: score every pair in Python, one dense LSA.

    Forbidden cells (same unit, fit below min_fit, excluded) are 0, not a large negative value:
    a rectangular LSA must fill min(slots, apprentices) cells, and a penalty would maximise the
    number of pairs first (the "coverage" objective). Cells at 0 that LSA picks are dropped.
    """
    started = time.perf_counter()
    parent = problem.skill_parent.tolist()
    skills = sp.csr_array(problem.craftsman_skills)
    wants = sp.csr_array(problem.apprentice_wants)
    weights = sp.csr_array(problem.apprentice_weights)
    skills_of = [
        list(zip(skills.indices[lo:hi].tolist(), skills.data[lo:hi].tolist(), strict=True))
        for lo, hi in zip(skills.indptr[:-1], skills.indptr[1:], strict=True)
    ]
    wants_of = [
        list(
            zip(
                wants.indices[lo:hi].tolist(),
                wants.data[lo:hi].tolist(),
                weights.data[lo:hi].tolist(),
                strict=True,
            )
        )
        for lo, hi in zip(wants.indptr[:-1], wants.indptr[1:], strict=True)
    ]
    craftsman_unit = problem.craftsman_unit.tolist()
    apprentice_unit = problem.apprentice_unit.tolist()
    craftsman_region = problem.craftsman_region.tolist()
    apprentice_region = problem.apprentice_region.tolist()
    free = problem.craftsman_free.tolist()
    excluded = {(int(c), int(p)) for c, p in problem.excluded.tolist()}
    n_apprentices = problem.n_apprentices
    matrix = np.zeros((sum(free), n_apprentices))
    first_slot = 0
    eligible = 0
    for m, mine in enumerate(skills_of):
        row = [0.0] * n_apprentices
        for a, wanted in enumerate(wants_of):
            if craftsman_unit[m] == apprentice_unit[a] or not wanted:
                continue
            earned = 0.0
            total = 0.0
            for t, target, weight in wanted:
                best = 0.0
                for s, level in mine:
                    if s == t:
                        sim = 1.0
                    elif (
                        (parent[s] >= 0 and parent[s] == parent[t])
                        or s == parent[t]
                        or (parent[s] == t)
                    ):
                        sim = params.related_credit
                    else:
                        continue
                    value = sim * min(1.0, level / target)
                    if value > best:
                        best = value
                earned += weight * best
                total += weight
            fit = min(1.0, earned / total)
            if fit < params.min_fit - FIT_TOLERANCE or (m, a) in excluded:
                continue
            eligible += 1
            same_region = craftsman_region[m] >= 0 and craftsman_region[m] == apprentice_region[a]
            row[a] = fit + (params.region_bonus if same_region else 0.0)
        matrix[first_slot : first_slot + free[m]] = row
        first_slot += free[m]
    score_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    chosen = matrix[rows, cols]
    chosen = chosen[chosen > 0]
    solve_seconds = time.perf_counter() - started
    return {
        "score_seconds": score_seconds,
        "solve_seconds": solve_seconds,
        "objective": float(chosen.sum()),
        "matched": int(chosen.size),
        "eligible_pairs": eligible,
        "cells": int(matrix.size),
    }


def ours_match(problem: MatchProblem, params: MatchParams, method: str) -> dict[str, Any]:
    """``solve_match`` and its own stats."""
    result = solve_match(problem, params, method=method)  # type: ignore[arg-type]
    stats = result.stats
    return {
        "build_seconds": stats["build_seconds"],
        "solve_seconds": stats["solve_seconds"],
        "objective": result.objective,
        "method": stats["method"],
        "components": stats["components"],
        "eligible_pairs": stats["eligible_pairs"],
        "matched": stats["matched"],
        "slots": stats["slots"],
    }


def ortools_match(problem: MatchProblem, params: MatchParams) -> dict[str, Any]:
    """OR-Tools' min-cost flow on the engine's eligible graph (pairs computed untimed)."""
    from ortools.graph.python import min_cost_flow

    eligible = eligible_pairs(problem, params)
    m, a = problem.n_craftsmen, problem.n_apprentices
    source, sink = m + a, m + a + 1
    free = problem.craftsman_free.astype(np.int64)
    started = time.perf_counter()
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.full(m, source), np.arange(m), free, np.zeros(m, dtype=np.int64)
    )
    first_pair = flow.num_arcs()
    flow.add_arcs_with_capacity_and_unit_cost(
        eligible.craftsman,
        m + eligible.apprentice,
        np.ones(eligible.craftsman.size, dtype=np.int64),
        -np.round(eligible.score * ORTOOLS_COST_SCALE).astype(np.int64),
    )
    flow.add_arcs_with_capacity_and_unit_cost(
        m + np.arange(a), np.full(a, sink), np.ones(a, dtype=np.int64), np.zeros(a, dtype=np.int64)
    )
    supply = int(min(free.sum(), a))
    flow.add_arc_with_capacity_and_unit_cost(source, sink, supply, 0)
    flow.set_node_supply(source, supply)
    flow.set_node_supply(sink, -supply)
    status = flow.solve()
    solve_seconds = time.perf_counter() - started
    if status != flow.OPTIMAL:
        raise RuntimeError(f"OR-Tools min-cost flow: status {status}")
    arcs = np.arange(first_pair, first_pair + eligible.craftsman.size)
    chosen = flow.flows(arcs) > 0
    return {
        "solve_seconds": solve_seconds,
        "objective": float(eligible.score[chosen].sum()),
        "matched": int(chosen.sum()),
        "eligible_pairs": int(eligible.craftsman.size),
    }


def fair_params(rules: str) -> MatchParams:
    """``--fair-rules`` as parameters."""
    values = dict(rule.split("=", 1) for rule in rules.split(",") if rule.strip())
    return MatchParams.from_json({name: int(value) for name, value in values.items()})


def fair_match(problem: MatchProblem, params: MatchParams, *, one_shot: bool) -> dict[str, Any]:
    """The fair-share solve; ``one_shot``: every eligible pair in the program from the start."""
    if one_shot:
        fairness.FIRST_PER_APPRENTICE = problem.n_craftsmen  # every pair of every apprentice
    result = solve_match(problem, params)
    units = result.stats["units"]
    return {
        "build_seconds": result.stats["build_seconds"],
        "solve_seconds": result.stats["solve_seconds"],
        "objective": result.objective,
        "method": result.stats["method"],
        "matched": result.stats["matched"],
        "eligible_pairs": result.stats["eligible_pairs"],
        "floor_total": result.stats.get("floor_total"),
        "most_given": max(row["pairs_as_craftsman_unit"] for row in units),
        "fewest_received": min(row["pairs_as_apprentice_unit"] for row in units),
    }


# --- One measurement in a fresh process ---------------------------------------------------------


def total_memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        return 16.0


def max_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak() -> bool:
    """Free what generation left behind and reset the RSS high-water mark to the current RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Options:
    """How each measurement runs."""

    seed: int
    method: str
    ortools_max_cells: int
    timeout: float  # seconds per measurement
    memory_limit_gib: float  # address-space limit of each measurement process, 0 = none
    fair_rules: str = DEFAULT_FAIR_RULES
    fair_timeout: float = 300.0


def measure_one(size: Size, way: str, options: Options) -> dict[str, Any]:
    if options.memory_limit_gib > 0:
        limit = int(options.memory_limit_gib * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    problem = generate(size, options.seed)
    generate_seconds = time.perf_counter() - started
    params = fair_params(options.fair_rules) if way.startswith("fair") else MatchParams()
    peak_was_reset = reset_peak()
    baseline = max_rss_kib()
    started = time.perf_counter()
    cpu_started = time.process_time()
    if way == "naive":
        measured = naive_match(problem, params)
    elif way == "ortools":
        measured = ortools_match(problem, params)
    elif way in ("fair", "fair-one-shot"):
        measured = fair_match(problem, params, one_shot=way == "fair-one-shot")
    else:
        measured = ours_match(problem, params, options.method)
    total_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak = max_rss_kib()
    return {
        **measured,
        "total_seconds": total_seconds,
        "cpu_seconds": cpu_seconds,
        "generate_seconds": generate_seconds,
        "peak_mib": (peak - baseline) / 1024,
        "rss_peak_mib": peak / 1024,
        "baseline_mib": baseline / 1024,
        "peak_was_reset": peak_was_reset,
        "slots": int(problem.craftsman_free.sum()),
        "units": size.units,
    }


def run_one(size: Size, way: str, options: Options) -> dict[str, Any]:
    """One measurement in a subprocess; ``{"error": ...}`` when it fails or times out."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--one", size.key, "--way", way, "--seed", str(options.seed)),
        *("--method", options.method, "--memory-limit", str(options.memory_limit_gib)),
        *("--fair-rules", options.fair_rules),
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=options.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {options.timeout:.0f} s"}
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit code {done.returncode} after {wall:.0f} s: {failure(done.stderr)}"}
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    result["process_seconds"] = wall
    return result


def failure(stderr: str) -> str:
    """The error line of a traceback and the innermost frame in this project, if any."""
    lines = [line.strip() for line in stderr.strip().splitlines()]
    if not lines:
        return "no output"
    frames = [line for line in lines if line.startswith("File ") and "/matcher/" in line]
    if not frames:
        return lines[-1]
    where = frames[-1].split("/matcher/", 1)[1].replace('"', "")
    return f"{lines[-1]} (in matcher/{where})"


# --- Report -------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def bench(size: Size, options: Options) -> dict[str, Any]:
    print(f"\n## {size.label} (apprentices × craftsmen), {size.units} units, seed {options.seed}")
    skip = size.naive_skip_reason()
    naive: dict[str, Any] | None = None
    if skip:
        print(f"  naive: skipped — {skip}")
    else:
        naive = run_one(size, "naive", options)
        if "error" in naive:
            print(f"  naive: failed — {naive['error']}")
        else:
            print(
                f"  naive: {naive['total_seconds']:.2f} s (CPU {naive['cpu_seconds']:.2f} s; pair"
                f" loop {naive['score_seconds']:.2f} s, dense LSA {naive['solve_seconds']:.2f} s"
                f" on {naive['cells']:,} cells),"
                f" peak +{naive['peak_mib']:.0f} MiB; eligible {naive['eligible_pairs']:,},"
                f" matched {naive['matched']:,}, objective {naive['objective']:.6f}"
            )
    ours = run_one(size, "ours", options)
    if "error" in ours:
        print(f"  ours:  failed — {ours['error']}")
    else:
        print(
            f"  ours:  {ours['total_seconds']:.2f} s (CPU {ours['cpu_seconds']:.2f} s; build"
            f" {ours['build_seconds']:.2f} s, solve {ours['solve_seconds']:.2f} s),"
            f" peak +{ours['peak_mib']:.0f} MiB"
            f" (RSS {ours['rss_peak_mib']:.0f} MiB); method {ours['method']},"
            f" {ours['components']:,} components; slots {ours['slots']:,}, eligible"
            f" {ours['eligible_pairs']:,}, matched {ours['matched']:,},"
            f" objective {ours['objective']:.6f}; generation {ours['generate_seconds']:.2f} s"
        )
    ortools: dict[str, Any] | None = None
    if size.apprentices * size.craftsmen <= options.ortools_max_cells:
        ortools = run_one(size, "ortools", options)
        if "error" in ortools:
            print(f"  OR-Tools: failed — {ortools['error']}")
        elif "error" not in ours:
            print(
                f"  OR-Tools SimpleMinCostFlow: {ortools['solve_seconds']:.2f} s (arcs + solve),"
                f" peak +{ortools['peak_mib']:.0f} MiB; matched {ortools['matched']:,},"
                f" objective {ortools['objective']:.6f} (ours − OR-Tools ="
                f" {ours['objective'] - ortools['objective']:+.3g}); ours/OR-Tools time"
                f" {ours['total_seconds'] / ortools['solve_seconds']:.2f}"
            )
    else:
        print(f"  OR-Tools: skipped (over --ortools-max-cells {options.ortools_max_cells:,})")
    ratio = None
    if naive and "error" not in naive and "error" not in ours:
        same = abs(naive["objective"] - ours["objective"]) <= OBJECTIVE_TOLERANCE * max(
            1.0, abs(naive["objective"])
        )
        ratio = naive["total_seconds"] / ours["total_seconds"]
        difference = ours["objective"] - naive["objective"]
        print(
            f"  same optimum: {'yes' if same else 'no'} (ours − naive = {difference:+.3g});"
            f" ratio naive/ours: {ratio:.1f}x"
        )
    return {
        "size": size,
        "naive": naive,
        "skip": skip,
        "ours": ours,
        "ratio": ratio,
        "ortools": ortools if ortools and "error" not in ortools else None,
    }


def bench_fair(size: Size, options: Options) -> None:
    """The fair-share rules: column generation against one program over every pair."""
    print(f"\n## fair shares at {size.label}, seed {options.seed}: {options.fair_rules}")
    ours = run_one(size, "fair", options)
    if "error" in ours:
        print(f"  ours: failed — {ours['error']}")
        return
    print(
        f"  ours:     {ours['total_seconds']:.2f} s (build {ours['build_seconds']:.2f} s, solve"
        f" {ours['solve_seconds']:.2f} s), peak +{ours['peak_mib']:.0f} MiB; method"
        f" {ours['method']}; matched {ours['matched']:,}, floor total {ours['floor_total']},"
        f" objective {ours['objective']:.6f}; most pairs given by a unit {ours['most_given']},"
        f" fewest received {ours['fewest_received']}"
    )
    one_shot = run_one(size, "fair-one-shot", replace(options, timeout=options.fair_timeout))
    if "error" in one_shot:
        print(
            f"  one program over every pair: {one_shot['error']} (ratio > "
            f"{options.fair_timeout / ours['total_seconds']:.1f}x)"
        )
        return
    same = abs(one_shot["objective"] - ours["objective"]) <= OBJECTIVE_TOLERANCE * max(
        1.0, abs(ours["objective"])
    )
    print(
        f"  one program over every pair: {one_shot['total_seconds']:.2f} s, objective"
        f" {one_shot['objective']:.6f}, floor total {one_shot['floor_total']}; same optimum:"
        f" {'yes' if same else 'no'};"
        f" ratio {one_shot['total_seconds'] / ours['total_seconds']:.1f}x"
    )


def table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| size | naive s | naive MiB | ours build s | ours solve s | ours total s"
        " | ours peak MiB | method | ratio | OR-Tools s | OR-Tools MiB | ours/OR-Tools |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|")
    for row in rows:
        naive = row["naive"] if row["naive"] and "error" not in row["naive"] else None
        ours = row["ours"] if "error" not in row["ours"] else None
        naive_s = fmt(naive["total_seconds"]) if naive else ("skipped" if row["skip"] else "failed")
        cells = [
            row["size"].label,
            naive_s,
            fmt(naive["peak_mib"], ".0f") if naive else "—",
            fmt(ours["build_seconds"]) if ours else "failed",
            fmt(ours["solve_seconds"]) if ours else "—",
            fmt(ours["total_seconds"]) if ours else "—",
            fmt(ours["peak_mib"], ".0f") if ours else "—",
            ours["method"] if ours else "—",
            fmt(row["ratio"], ".1f") + "x" if row["ratio"] else "—",
            fmt(row["ortools"]["solve_seconds"]) if row["ortools"] else "—",
            fmt(row["ortools"]["peak_mib"], ".0f") if row["ortools"] else "—",
            fmt(ours["total_seconds"] / row["ortools"]["solve_seconds"])
            if ours and row["ortools"]
            else "—",
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help="apprentices x craftsmen, comma-separated"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per measurement")
    parser.add_argument(
        "--method", default="auto", choices=["auto", "dense", "components", "sparse", "pruned"]
    )
    parser.add_argument(
        "--ortools-max-cells",
        type=int,
        default=100_000_000,
        # 20,000 x 5,000 (33 M arcs) takes it ~40-75 s and ~4 GiB, so ours has a peer there in
        # the same run; 50,000 x 10,000 (177 M arcs) would need ~20 GiB.
        help="largest apprentices × craftsmen given to OR-Tools (0 = never)",
    )
    parser.add_argument("--fair-sizes", default=DEFAULT_FAIR_SIZES, help="'' = none")
    parser.add_argument("--fair-rules", default=DEFAULT_FAIR_RULES)
    parser.add_argument("--fair-timeout", type=float, default=300.0)
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=round(0.75 * total_memory_gib(), 1),
        help="GiB of address space per measurement (RLIMIT_AS; 0 = none); default 75%% of RAM",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument(
        "--way",
        choices=["naive", "ours", "ortools", "fair", "fair-one-shot"],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    options = Options(
        args.seed,
        args.method,
        args.ortools_max_cells,
        args.timeout,
        args.memory_limit,
        args.fair_rules,
        args.fair_timeout,
    )
    if args.one:
        result = measure_one(Size.parse(args.one), args.way or "ours", options)
        print("RESULT " + json.dumps(result))
        return
    sizes = [Size.parse(text) for text in args.sizes.split(",") if text.strip()]
    print(
        f"Matching engine benchmark: default MatchParams(), method {args.method!r}; each"
        f" measurement in a fresh process, timeout {args.timeout:.0f} s, address space limit"
        f" {args.memory_limit:g} GiB."
    )
    print(f"Memory: {MEMORY_NOTE}.")
    rows = [bench(size, options) for size in sizes]
    if any(not row["ours"].get("peak_was_reset", True) for row in rows):
        print("\nNote: /proc/self/clear_refs was not writable; peaks may include generation.")
    table(rows)
    for text in args.fair_sizes.split(","):
        if text.strip():
            bench_fair(Size.parse(text), options)


if __name__ == "__main__":
    main()
