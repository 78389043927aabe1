"""Match parameters: one typed object, defaults written once, a run's JSON round-trips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from matcher.algorithms import MatchParams

ids = st.integers(1, 10**6)
params = st.builds(
    MatchParams,
    objective=st.sampled_from(["score", "coverage"]),
    min_fit=st.floats(0.01, 1),
    related_credit=st.floats(0, 1),
    region_bonus=st.floats(0, 1),
    include_mentored=st.booleans(),
    unit_ids=st.none() | st.lists(ids, min_size=1).map(tuple),
    pinned=st.lists(st.tuples(ids, ids)).map(tuple),
    excluded=st.lists(st.tuples(ids, ids)).map(tuple),
)


@given(params)
def test_stored_params_round_trip(value: MatchParams) -> None:
    assert MatchParams.from_json(value.to_json()) == value


def test_missing_params_take_their_defaults() -> None:
    """A run stored before a parameter existed reads it as its default."""
    assert MatchParams.from_json({}) == MatchParams()
    assert MatchParams.from_json({"min_fit": 0.4, "pinned": [[1, 2]]}) == MatchParams(
        min_fit=0.4, pinned=((1, 2),)
    )
