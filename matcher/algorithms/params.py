"""``MatchParams``: the parameters of a match run, typed, with their defaults written once.

Built once from the validated request (``MatchParamsSchema`` loads into it), stored on the run as
JSON (``to_json``) and read back from it (``from_json``); the services and the solver take it as
it is. The solver reads the scoring fields only; ``unit_ids``, ``pinned`` and ``excluded`` are
database ids, which the services turn into array positions (``MatchProblem.pinned`` ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

Objective = Literal["score", "coverage"]
IdPair = tuple[int, int]  # (craftsman id, apprentice id)
FAIR_SHARE_PARAMS = (
    "max_pairs_per_craftsman_unit",
    "max_pairs_per_unit_pair",
    "min_pairs_per_apprentice_unit",
)


def _pairs(value: Iterable[Iterable[int]] | None) -> tuple[IdPair, ...]:
    pairs = []
    for pair in value or ():
        craftsman, apprentice = pair
        pairs.append((int(craftsman), int(apprentice)))
    return tuple(pairs)


@dataclass(frozen=True)
class MatchParams:
    """The scoring, objective and selection parameters of matching.md."""

    objective: Objective = "score"
    min_fit: float = 0.25  # > 0 (the API refuses 0): zero-fit pairs are never candidates
    related_credit: float = 0.5
    region_bonus: float = 0.05
    # Favour those who waited longest: + waiting_bonus · min(1, days waited / 180) (matching.md).
    waiting_bonus: float = 0.0
    # + preference_bonus · (4 - r) / 3 where the craftsman is at rank r (1-3) of the
    # apprentice's ranked craftsmen (matching.md, "Preferences and availability").
    preference_bonus: float = 0.1
    include_mentored: bool = False  # apprentices with an active mentorship take part too
    unit_ids: tuple[int, ...] | None = None  # None: every unit of the alliance
    pinned: tuple[IdPair, ...] = ()  # pairs that must be proposed
    excluded: tuple[IdPair, ...] = ()  # pairs that must not be
    # Fair shares between member units (matching.md); None: the rule is off.
    max_pairs_per_craftsman_unit: int | None = None  # >= 1: pairs whose craftsman is of a unit
    max_pairs_per_unit_pair: int | None = None  # >= 1: pairs from craftsman unit X to apprentice Y
    min_pairs_per_apprentice_unit: int | None = None  # >= 0: soft floor, maximised first

    @property
    def has_fair_shares(self) -> bool:
        """Whether any fair-share rule binds the run (a floor of 0 asks nothing)."""
        return (
            self.max_pairs_per_craftsman_unit is not None
            or self.max_pairs_per_unit_pair is not None
            or bool(self.min_pairs_per_apprentice_unit)
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MatchParams:
        """From a validated request or a run's stored params; a missing key takes its default
        (runs stored before a parameter existed read as if it had its default)."""
        known = {f.name for f in fields(cls)} & data.keys()
        values = {name: data[name] for name in known}
        if values.get("unit_ids") is not None:
            values["unit_ids"] = tuple(int(u) for u in values["unit_ids"])
        for name in ("pinned", "excluded"):
            if name in values:
                values[name] = _pairs(values[name])
        for name in FAIR_SHARE_PARAMS:
            if values.get(name) is not None:
                values[name] = int(values[name])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The run's stored form: every parameter, pairs as ``[craftsman_id, apprentice_id]``."""
        return {
            "objective": self.objective,
            "min_fit": self.min_fit,
            "related_credit": self.related_credit,
            "region_bonus": self.region_bonus,
            "waiting_bonus": self.waiting_bonus,
            "preference_bonus": self.preference_bonus,
            "include_mentored": self.include_mentored,
            "unit_ids": list(self.unit_ids) if self.unit_ids is not None else None,
            "pinned": [list(pair) for pair in self.pinned],
            "excluded": [list(pair) for pair in self.excluded],
            "max_pairs_per_craftsman_unit": self.max_pairs_per_craftsman_unit,
            "max_pairs_per_unit_pair": self.max_pairs_per_unit_pair,
            "min_pairs_per_apprentice_unit": self.min_pairs_per_apprentice_unit,
        }
