"""The matching engine: numpy/scipy only, arrays in and arrays out (no database, no I/O)."""

from matcher.algorithms.params import MatchParams
from matcher.algorithms.problem import (
    REASONS,
    CapBreach,
    MatchProblem,
    MatchResult,
    PinnedCapError,
    PinnedPairError,
)
from matcher.algorithms.scoring import Explanation, candidate_pairs, explain_pairs, relation_matrix
from matcher.algorithms.solver import PairVerdict, eligible_pairs, pair_verdict, solve_match

__all__ = [
    "REASONS",
    "CapBreach",
    "Explanation",
    "MatchParams",
    "MatchProblem",
    "MatchResult",
    "PairVerdict",
    "PinnedCapError",
    "PinnedPairError",
    "candidate_pairs",
    "eligible_pairs",
    "explain_pairs",
    "pair_verdict",
    "relation_matrix",
    "solve_match",
]
