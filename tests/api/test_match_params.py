"""The request's match parameters load into ``MatchParams``; the schema restates no default."""

from __future__ import annotations

import dataclasses

import marshmallow as ma

from matcher.algorithms import MatchParams
from matcher.api.schemas import MatchParamsSchema


def test_a_request_loads_into_match_params_with_its_defaults() -> None:
    assert MatchParamsSchema().load({}) == MatchParams()
    loaded = MatchParamsSchema().load({"min_fit": 0.4, "unit_ids": [3], "excluded": [[1, 2]]})
    assert loaded == MatchParams(min_fit=0.4, unit_ids=(3,), excluded=((1, 2),))
    assert MatchParamsSchema().load(loaded.to_json() | {"unit_ids": [3]}) == loaded


def test_the_schema_names_every_parameter_and_restates_no_default() -> None:
    schema = MatchParamsSchema()
    assert set(schema.fields) == {f.name for f in dataclasses.fields(MatchParams)}
    assert all(f.load_default is ma.missing for f in schema.fields.values())
