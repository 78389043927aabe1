"""Operation names a generated client can use: every operation of ``/api/v1/openapi.json`` has
an ``operationId``, unique, a camelCase verb phrase whose verb fits its HTTP method (a client's
``listCraftsmen()`` reads, its ``deactivateCraftsman()`` deletes)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

API = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}
CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)+")
# The verbs an operation's name may start with, by the HTTP method that carries it.
VERBS = {
    "get": {"get", "list", "export"},
    "post": {
        "create",
        "start",
        "bulkUpsert",
        "approve",
        "commit",
        "end",
        "submit",
        "rotate",
        "retry",
        "renew",
        "accept",  # an offer, for its craftsman
        "decline",
        "erase",
    },
    "put": {"upsert", "correct"},
    "patch": {"update", "review"},
    "delete": {"deactivate", "clear", "delete"},
}


def operations(client: FlaskClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get(f"{API}/openapi.json").get_json()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_every_operation_has_a_unique_camel_case_verb_for_an_id(client: FlaskClient) -> None:
    found = operations(client)
    assert len(found) > 40  # the whole API, not an empty document
    missing = [f"{method.upper()} {path}" for method, path, op in found if "operationId" not in op]
    assert missing == []
    ids = [op["operationId"] for _, _, op in found]
    assert sorted(i for i in ids if ids.count(i) > 1) == []
    for method, path, op in found:
        name = op["operationId"]
        assert CAMEL_CASE.fullmatch(name), (method, path, name)
        verb = next((v for v in VERBS[method] if re.match(f"{v}[A-Z]", name)), None)
        assert verb is not None, (
            f"{method.upper()} {path}: {name} starts with none of {VERBS[method]}"
        )


def test_people_operations_are_named_by_kind(client: FlaskClient) -> None:
    """The two kinds of person share one blueprint factory; their names still differ."""
    ids = {(method, path): op["operationId"] for method, path, op in operations(client)}
    for one, many in (("Craftsman", "Craftsmen"), ("Apprentice", "Apprentices")):
        plural = many.lower()
        assert ids[("put", f"{API}/units/{{unit_id}}/{plural}/{{external_id}}")] == f"upsert{one}"
        assert ids[("post", f"{API}/units/{{unit_id}}/{plural}/bulk")] == f"bulkUpsert{many}"
        assert ids[("get", f"{API}/units/{{unit_id}}/{plural}")] == f"list{many}"
        assert ids[("get", f"{API}/{plural}/{{person_id}}")] == f"get{one}"
        assert ids[("patch", f"{API}/{plural}/{{person_id}}")] == f"update{one}"
        assert ids[("delete", f"{API}/{plural}/{{person_id}}")] == f"deactivate{one}"
