"""Bad input never gets a 5xx (security.md): times that do not exist in UTC, JSON nested too
deeply or holding numbers too long to read, ids beyond what the database holds. Every operation
the OpenAPI document lists that takes such input is tried, so a new one is covered too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from matcher.api.base import MAX_JSON_DEPTH
from matcher.api.fields import MAX_ID
from tests.factories import World

API = "/api/v1"
PATH_ID = re.compile(r"\{\w+\}")


def _operations(client: FlaskClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of the OpenAPI document; paths carry the /api/v1 prefix."""
    spec = client.get(f"{API}/openapi.json").get_json()
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]


def _url(path: str, world: World) -> str:
    """A path of the document with its ids filled in: ids the admin key can reach."""
    values = {"{alliance_id}": world.alliance.id, "{unit_id}": world.unit.id}
    return PATH_ID.sub(lambda m: str(values.get(m.group(0), 1)), path)


def _problem(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01T13:59:59+14:00",
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "9999-12-31T10:00:00-14:00",
    ],
)
def test_times_that_do_not_exist_in_utc_are_field_errors(
    client: FlaskClient, world: World, moment: str
) -> None:
    tried = []
    for method, path, operation in _operations(client):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and parameter["schema"].get("format") == "date-time":
                response = client.open(
                    _url(path, world),
                    method=method,
                    query_string={parameter["name"]: moment},
                    headers=world.auth("admin"),
                )
                assert response.status_code == 422, (path, response.get_data(as_text=True))
                assert parameter["name"] in _problem(response)["errors"]
                tried.append(path)
    assert len(tried) >= 5  # alliances, units, craftsmen, apprentices, skills


def test_times_at_the_edges_of_utc_are_read(client: FlaskClient, world: World) -> None:
    for moment in ("0001-01-01T14:00:00+14:00", "9999-12-31T09:59:59-14:00"):
        response = client.get(
            f"{API}/units/{world.unit.id}/craftsmen",
            query_string={"updated_since": moment},
            headers=world.auth("admin"),
        )
        assert response.status_code == 200, response.get_data(as_text=True)


def _nested(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_json_nested_too_deeply_is_refused_before_parsing(
    client: FlaskClient, world: World, depth: int
) -> None:
    bodies = 0
    for method, path, operation in _operations(client):
        if "requestBody" not in operation:
            continue
        for body in ("[" * depth + "]" * depth, _nested(depth)):
            response = client.open(
                _url(path, world),
                method=method,
                data=body,
                content_type="application/json",
                headers=world.auth("admin") | {"If-Match": "*"},
            )
            assert response.status_code == 400, (path, response.get_data(as_text=True))
            problem = _problem(response)
            assert f"deeper than {MAX_JSON_DEPTH} levels" in problem["detail"]
            assert problem["errors"] == {"_body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]}
        bodies += 1
    assert bodies >= 15


def test_json_as_deep_as_the_limit_is_parsed(client: FlaskClient, world: World) -> None:
    # Brackets inside strings are text, not nesting.
    body = _nested(MAX_JSON_DEPTH).replace('"a"', '"[[[{{{"', 1)
    response = client.patch(
        f"{API}/units/{world.unit.id}",
        data=body,
        content_type="application/json",
        headers=world.auth("admin"),
    )
    assert response.status_code == 422  # parsed, then refused field by field
    assert "[[[{{{" in _problem(response)["errors"]


def test_numbers_too_long_to_read_are_refused(client: FlaskClient, world: World) -> None:
    for number in ("9" * 5_000, "-" + "1" * 10_000):
        response = client.patch(
            f"{API}/units/{world.unit.id}",
            data='{"region": ' + number + "}",
            content_type="application/json",
            headers=world.auth("admin"),
        )
        assert response.status_code == 400
        assert _problem(response)["errors"] == {"_body": ["Number too long."]}


def test_every_documented_id_lies_within_the_database_range(client: FlaskClient) -> None:
    """Ids in paths, query strings and bodies are one field (``matcher.api.fields.Id``) or one
    converter, bounded to what an INTEGER column holds; the document says so for each."""
    spec = client.get(f"{API}/openapi.json").get_json()
    found: list[str] = []

    components = spec["components"]["schemas"]

    def check(name: str, schema: dict[str, Any]) -> None:
        if "$ref" in schema:
            schema = components[schema["$ref"].rpartition("/")[2]]
        if schema.get("readOnly"):
            return
        if schema.get("type") == "array":
            check(name, schema.get("items", {}))
        for field, sub in schema.get("properties", {}).items():
            check(field, sub)
        if name.endswith(("_id", "ids")) and schema.get("type") == "integer":
            assert (schema.get("minimum"), schema.get("maximum")) == (1, MAX_ID), name
            found.append(name)

    for item in spec["paths"].values():
        shared = item.get("parameters", [])  # the path's own ids
        operations = [v for k, v in item.items() if k != "parameters"]
        for parameter in shared + [p for o in operations for p in o.get("parameters", [])]:
            check(parameter["name"], parameter["schema"])
        for operation in operations:  # request bodies, with what they nest
            for content in operation.get("requestBody", {}).get("content", {}).values():
                check("", content["schema"])
    assert {"craftsman_id", "apprentice_id", "unit_id", "alliance_id", "ids"} <= set(found)


@pytest.mark.parametrize("value", [MAX_ID + 1, 2**63, 2**64, 10**30])
def test_ids_beyond_the_database_range_are_refused(
    client: FlaskClient, world: World, value: int
) -> None:
    admin = world.auth("admin")
    for query in (
        f"/mentorships?unit_id={value}",
        f"/mentorships?alliance_id={value}",
        f"/reminders?mentorship_id={value}",
        f"/pair-score?craftsman_id={value}&apprentice_id=1",
        f"/alliances/{world.alliance.id}/audit-events?object_id={value}",
        f"/alliances?page={value}",
    ):
        response = client.get(API + query, headers=admin)
        assert response.status_code == 422, (query, response.get_data(as_text=True))
    for path in (f"/units/{value}", f"/match-runs/{value}", f"/proposals/{value}"):
        assert client.get(API + path, headers=admin).status_code == 404
    for method, path, body in (
        ("PATCH", "/proposals/1", {"craftsman_id": value}),
        ("POST", "/match-runs/1/proposals/bulk", {"ids": [1, value], "status": "approved"}),
        ("POST", f"/alliances/{world.alliance.id}/match-runs", {"params": {"unit_ids": [value]}}),
        (
            "POST",
            f"/alliances/{world.alliance.id}/match-runs",
            {"params": {"pinned": [[1, value]]}},
        ),
    ):
        response = client.open(
            API + path, method=method, json=body, headers=admin | {"If-Match": "*"}
        )
        assert response.status_code == 422, (path, response.get_data(as_text=True))
