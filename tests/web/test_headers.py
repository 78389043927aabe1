"""The headers every response carries and the body limit chunked requests are held to
(security.md); ``matcher.security``."""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from matcher.extensions import state
from matcher.models import Apprentice, Craftsman
from matcher.security import PAGE_POLICY
from matcher.services.mentorships import create_mentorship
from matcher.services.summary_links import SummaryLink, make_token
from tests.web.conftest import Review, sign_in

API = "/api/v1"


def _assert_page_headers(response: TestResponse) -> None:
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    # No inline script or eval anywhere: not in script-src, nor in a default it falls back to.
    assert "unsafe-inline" not in directives.get("script-src", directives["default-src"])
    assert "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def _summary_url(app: Flask, session: Session, review: Review) -> str:
    world = review.world
    mentorship = create_mentorship(
        session,
        craftsman=session.get_one(Craftsman, world.craftsman_ids[world.sibling_unit.code]),
        apprentice=session.get_one(Apprentice, world.apprentice_ids[world.unit.code]),
        started_on=date(2026, 1, 1),
    )
    session.commit()
    link = SummaryLink(mentorship_id=mentorship.id, period=1, author="apprentice")
    return "/summary/" + make_token(state(app).settings.secret_key, link)


def test_every_html_page_carries_the_security_headers(
    app: Flask, client: FlaskClient, session: Session, review: Review
) -> None:
    signed_out = {
        "sign-in form": client.get("/"),
        "summary form": client.get(_summary_url(app, session, review)),
        "summary link not valid": client.get("/summary/forged-token"),
        "API docs": client.get("/docs"),
    }
    sign_in(client, review.email)
    signed_in = {
        "overview": client.get("/"),
        "run page": client.get(f"/runs/{review.run.id}"),
        "new run form": client.get("/runs/new"),
        "another alliance's run (404 page)": client.get(f"/runs/{review.foreign_run.id}"),
        "stale form (400 page)": client.post(f"/runs/{review.run.id}/commit", data={}),
    }
    pages = signed_out | signed_in
    assert {name: r.status_code for name, r in pages.items()} == {
        **dict.fromkeys(pages, 200),
        "summary link not valid": 404,
        "another alliance's run (404 page)": 404,
        "stale form (400 page)": 400,
    }
    for name, response in pages.items():
        try:
            _assert_page_headers(response)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{name}: {exc!r} in {dict(response.headers)}") from exc
    for name in ("sign-in form", "overview", "run page", "summary form", "API docs"):
        assert pages[name].headers["Content-Security-Policy"] == PAGE_POLICY, name


def test_the_docs_page_runs_no_inline_script(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)
    scripts = page.count("<script")
    assert scripts == page.count("<script src=") == 2  # Swagger UI and its start file
    start = client.get("/docs/start.js")
    assert start.mimetype == "text/javascript" and b"/api/v1/openapi.json" in start.data


def test_api_responses_carry_nosniff(client: FlaskClient, review: Review) -> None:
    coordinator = review.world.auth("coordinator")
    responses = {
        "json": client.get(f"{API}/match-runs/{review.run.id}", headers=coordinator),
        "problem": client.get(f"{API}/match-runs/{2**31 - 1}", headers=coordinator),
        "401 problem": client.get(f"{API}/alliances"),
        "unknown path": client.get("/nowhere"),
        "csv": client.get(f"{API}/match-runs/{review.run.id}/proposals.csv", headers=coordinator),
        "openapi": client.get(f"{API}/openapi.json"),
        "metrics": client.get("/metrics"),
        "health": client.get("/healthz"),
        "stylesheet": client.get("/static/matcher.css"),
        "docs asset": client.get("/docs/static/swagger-ui.css"),
    }
    for name, response in responses.items():
        assert response.status_code < 500, name
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        response.close()
    assert responses["problem"].mimetype == "application/problem+json"
    assert responses["csv"].mimetype == "text/csv"


# --- chunked bodies -------------------------------------------------------------------------

LIMIT = 5 * 1024 * 1024


def _people(count: int, pad: int = 0) -> bytes:
    items = [{"external_id": f"C-{i}", "name": "工匠" + "x" * pad} for i in range(count)]
    return json.dumps(items).encode()


def _chunked(
    client: FlaskClient,
    url: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """A POST as a server hands a chunked one to the app: no Content-Length, the body
    delimited by the server (``wsgi.input_terminated``)."""
    return client.post(
        url,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked", **(headers or {})},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_gets_413_on_the_api(
    client: FlaskClient, review: Review
) -> None:
    world = review.world
    url = f"{API}/units/{world.unit.id}/craftsmen/bulk"
    big = _people(12_000, pad=400)
    assert len(big) > LIMIT
    response = _chunked(client, url, big, "application/json", world.auth("hr"))
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 413

    # Under the limit a chunked body is read whole, as a sized one is.
    small = _people(3)
    response = _chunked(client, url, small, "application/json", world.auth("hr"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["created"] == 3


def test_a_chunked_form_over_the_limit_gets_413_on_the_web(
    client: FlaskClient, review: Review
) -> None:
    token = sign_in(client, review.email)
    url = f"/runs/{review.run.id}/approve-pending"
    big = f"csrf_token={token}&min_score=0.5&pad=".encode() + b"x" * LIMIT
    response = _chunked(client, url, big, "application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.mimetype == "text/html"


@pytest.fixture
def live_server(app: Flask) -> Iterator[int]:
    """The app behind Werkzeug's real HTTP server, which de-chunks bodies as gunicorn does."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_a_real_chunked_request_over_the_limit_gets_413(live_server: int, review: Review) -> None:
    world = review.world
    body = _people(12_000, pad=400)
    assert LIMIT < len(body) < LIMIT + 256 * 1024  # the unread rest fits the socket buffers
    connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=30)
    connection.request(
        "POST",
        f"{API}/units/{world.unit.id}/craftsmen/bulk",
        body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": "application/json", **world.auth("hr")},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    connection.close()
