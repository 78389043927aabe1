"""What apprentices' choices cost the matching engine (issue 13): ``solve_match`` on the
generated alliances of ``bench/matching.py``, with and without every apprentice ranking 3 and
avoiding 5 craftsmen of other units, in the same process, best of ``--repeats`` (process time).

The choices enter as matching.md says: the preference bonus in the score (a sparse A × M rank
array), avoided pairs as hard constraint 6. The script checks what it measures: no avoided pair
is chosen, and at sizes dense LSA can take (``--check-cells``) the optimum with choices equals
dense LSA's.

    .venv/bin/python bench/preferences.py [--sizes 2000x500,20000x5000] [--seed 7] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from matching import Size, generate

from matcher.algorithms import MatchParams, MatchProblem, solve_match

RANKED, AVOIDED = 3, 5


def with_choices(problem: MatchProblem, seed: int) -> MatchProblem:
    """Each apprentice ranks 3 and avoids 5 distinct craftsmen of other units, at random."""
    rng = np.random.default_rng(seed)
    a, m = problem.n_apprentices, problem.n_craftsmen
    draws = rng.integers(0, m, size=(a, 8 * (RANKED + AVOIDED)))
    chosen = np.empty((a, RANKED + AVOIDED), dtype=np.int64)
    for apprentice, row in enumerate(draws):  # untimed set-up: distinct, of other units
        row = row[problem.craftsman_unit[row] != problem.apprentice_unit[apprentice]]
        _, first = np.unique(row, return_index=True)
        chosen[apprentice] = row[np.sort(first)][: RANKED + AVOIDED]
    rows = np.repeat(np.arange(a), RANKED)
    ranks = np.tile(np.arange(1, RANKED + 1), a).astype(np.float64)
    rank = sp.csr_array((ranks, (rows, chosen[:, :RANKED].ravel())), shape=(a, m))
    avoided = np.column_stack(
        [chosen[:, RANKED:].ravel(), np.repeat(np.arange(a), AVOIDED)]
    ).astype(np.int64)
    return replace(problem, preference_rank=rank, avoided=avoided)


def best_seconds(problem: MatchProblem, repeats: int) -> tuple[float, float, str]:
    """Best process time of ``solve_match`` over ``repeats``, its objective and method."""
    best, objective, method = float("inf"), 0.0, ""
    for _ in range(repeats):
        started = time.process_time()
        result = solve_match(problem, MatchParams())
        best = min(best, time.process_time() - started)
        objective, method = result.objective, str(result.stats["method"])
    return best, objective, method


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="2000x500,20000x5000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-cells", type=int, default=1_000_000)
    args = parser.parse_args()
    print("| size | without choices | with choices | with / without | method | checked |")
    print("| --- | --: | --: | --: | --- | --- |")
    for text in args.sizes.split(","):
        size = Size.parse(text)
        plain = generate(size, args.seed)
        chosen = with_choices(plain, args.seed)
        repeats = args.repeats if size.apprentices * size.craftsmen <= 10_000_000 else 1
        without, _, _ = best_seconds(plain, repeats)
        with_, objective, method = best_seconds(chosen, repeats)
        result = solve_match(chosen, MatchParams())
        pairs = set(zip(result.craftsman.tolist(), result.apprentice.tolist(), strict=True))
        assert not pairs & set(map(tuple, chosen.avoided.tolist())), "an avoided pair was chosen"
        checked = "no avoided pair"
        if size.apprentices * size.craftsmen <= args.check_cells:
            dense = solve_match(chosen, MatchParams(), method="dense")
            assert abs(dense.objective - objective) < 1e-6, (dense.objective, objective)
            checked += ", same optimum as dense LSA"
        print(
            f"| {size.label} | {without:.3f} s | {with_:.3f} s | {with_ / without:.2f} "
            f"| {method} | {checked} |"
        )


if __name__ == "__main__":
    main()
