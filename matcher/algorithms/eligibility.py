"""Pair eligibility: the hard constraints of matching.md on a (craftsman, apprentice) pair.

A pair is eligible when the two are of different units, its fit reaches ``min_fit`` and it is not
excluded (rejected before, or excluded by the run's parameters) nor avoided (on the apprentice's
avoid list: hard constraint 6; the masks take both as ``excluded``, ``MatchProblem.forbidden``).
Every caller asks here: the solver over its candidate pairs (1-D), the pruned solver over dense
blocks (2-D, broadcast), and one pair at a time (``pair_verdict``: pair-score and swap) through
:func:`broken_constraints`, which the tests hold equal to :func:`eligible_mask`. Pinned pairs skip
``min_fit`` and exclusion but must still be of :func:`other_unit` and not avoided.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FIT_TOLERANCE = 1e-9  # float sums must not flip a fit of exactly min_fit to ineligible
CONSTRAINTS = (
    "same_unit",
    "below_min_fit",
    "excluded",
    "avoided",
)  # in the order a verdict names them

# Excluded pairs as a boolean mask of the pairs' shape, or as index arrays into it.
Excluded = NDArray[np.bool_] | tuple[NDArray[np.int64], ...]


def other_unit(craftsman_unit: ArrayLike, apprentice_unit: ArrayLike) -> NDArray[np.bool_]:
    """Craftsman and apprentice belong to different units (arrays broadcast)."""
    return np.asarray(np.not_equal(craftsman_unit, apprentice_unit))


def reaches_min_fit(fit: ArrayLike, min_fit: float) -> NDArray[np.bool_]:
    """The fit reaches ``min_fit``; a zero fit never does (no skill in common is no pair)."""
    return np.asarray(
        np.greater_equal(fit, max(min_fit - FIT_TOLERANCE, float(np.finfo(float).tiny)))
    )


@dataclass(frozen=True)
class Eligibility:
    """Per pair (any shape): the constraints before exclusion, and after."""

    fits: NDArray[np.bool_]  # other unit and fit >= min_fit: eligible unless excluded
    eligible: NDArray[np.bool_]  # fits and not excluded


def eligible_mask(
    *,
    craftsman_unit: ArrayLike,
    apprentice_unit: ArrayLike,
    fit: ArrayLike,
    min_fit: float,
    excluded: Excluded | None = None,
) -> Eligibility:
    """Which pairs are eligible. The units broadcast against ``fit``: parallel (P,) arrays for
    a list of pairs, or ``(1, M)`` and ``(B, 1)`` for a dense (B, M) block."""
    fits = reaches_min_fit(fit, min_fit)
    fits &= other_unit(craftsman_unit, apprentice_unit)
    if excluded is None:
        return Eligibility(fits=fits, eligible=fits)
    eligible = fits.copy()
    eligible[excluded] = False
    return Eligibility(fits=fits, eligible=eligible)


def excluded_mask(
    excluded: NDArray[np.int64],
    craftsman: NDArray[np.int64],
    apprentice: NDArray[np.int64],
    n_apprentices: int,
) -> NDArray[np.bool_]:
    """(P,) which of the pairs (craftsman[i], apprentice[i]) are among ``excluded`` (K, 2)."""
    keys = pair_keys(craftsman, apprentice, n_apprentices)
    return np.isin(keys, pair_keys(excluded[:, 0], excluded[:, 1], n_apprentices))


def pair_keys(
    craftsman: NDArray[np.int64], apprentice: NDArray[np.int64], n_apprentices: int
) -> NDArray[np.int64]:
    """One integer per pair, for set operations on pairs."""
    return craftsman.astype(np.int64) * max(n_apprentices, 1) + apprentice.astype(np.int64)


def broken_constraints(
    *,
    craftsman_unit: ArrayLike,
    apprentice_unit: ArrayLike,
    fit: ArrayLike,
    min_fit: float,
    excluded: ArrayLike,
    avoided: ArrayLike,
) -> dict[str, NDArray[np.bool_]]:
    """Per constraint of :data:`CONSTRAINTS`, which pairs break it (``excluded`` and
    ``avoided`` as masks). A pair is eligible exactly when it breaks none: the same rule as
    :func:`eligible_mask` given the excluded and avoided pairs together."""
    return {
        "same_unit": ~other_unit(craftsman_unit, apprentice_unit),
        "below_min_fit": ~reaches_min_fit(fit, min_fit),
        "excluded": np.asarray(excluded, dtype=bool),
        "avoided": np.asarray(avoided, dtype=bool),
    }
