"""Logs: JSON lines with the request id, the id echoed to the caller."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from matcher.logs import JsonFormatter, request_id
from tests.factories import World


def test_a_request_id_is_echoed_and_logged_on_the_access_line(
    client: FlaskClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="matcher.access")
    mine = client.get(
        "/api/v1/skills", headers={**world.auth("hr"), "X-Request-ID": "hr-sync-2026-11-27.42"}
    )
    assert mine.headers["X-Request-ID"] == "hr-sync-2026-11-27.42"
    made = client.get("/api/v1/skills", headers={**world.auth("hr"), "X-Request-ID": "bad id;"})
    assert made.headers["X-Request-ID"] != "bad id;" and len(made.headers["X-Request-ID"]) == 32
    access = [r for r in caplog.records if r.name == "matcher.access"]
    assert [r.status for r in access] == [200, 200]  # type: ignore[attr-defined]
    assert access[0].caller.startswith("hr-key:")  # type: ignore[attr-defined]
    unauthorised = client.get("/api/v1/skills")
    assert unauthorised.status_code == 401 and unauthorised.headers["X-Request-ID"]


def test_json_lines_carry_the_request_id_and_the_extra_fields() -> None:
    token = request_id.set("abc123")
    try:
        record = logging.makeLogRecord(
            {"name": "matcher.access", "levelname": "INFO", "msg": "GET %s", "args": ("/x",)}
        )
        record.status = 200
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "GET /x" and line["request_id"] == "abc123"
    assert line["status"] == 200 and line["level"] == "INFO"
