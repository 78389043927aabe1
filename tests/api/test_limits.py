"""Limits: per-key rate limits (429 + Retry-After) and one match run at a time per alliance.

The rate limit's window clock is the limiter's ``clock``, replaced here: no test sleeps. Bodies
over 5 MiB (413) and ``page_size`` over 500 are asserted in ``test_people.py``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.app import create_app
from matcher.config import ConfigError, Settings
from matcher.db import utcnow
from matcher.errors import Conflict
from matcher.extensions import state
from matcher.models import ApiKey, MatchRun, RateLimitWindow
from matcher.rate_limits import RateLimiter, rate_limiter
from matcher.services import matching
from tests.factories import World

API = "/api/v1"
WINDOW = 60 * 29_000_000  # a window start (Unix seconds), far from the real clock
PROBLEM = "application/problem+json"


class Clock:
    """A settable clock for the limiter."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The app's limiter with a budget of 3 requests a minute and a clock 45.5 s into a window."""
    fake = Clock(WINDOW + 45.5)
    limiter = rate_limiter(app)
    monkeypatch.setattr(limiter, "clock", fake)
    monkeypatch.setattr(limiter, "per_minute", 3)
    return fake


def units_url(world: World) -> str:
    return f"{API}/alliances/{world.alliance.id}/units"


def test_a_key_over_its_budget_gets_429_with_retry_after_until_the_next_window(
    client: FlaskClient, session: Session, world: World, clock: Clock
) -> None:
    coordinator = world.auth("coordinator")
    for _ in range(3):
        assert client.get(units_url(world), headers=coordinator).status_code == 200

    refused = client.get(units_url(world), headers=coordinator)
    assert refused.status_code == 429
    assert refused.content_type == PROBLEM
    assert refused.headers["Retry-After"] == str(math.ceil(WINDOW + 60 - clock.now)) == "15"
    body = refused.get_json()
    assert body["status"] == 429
    assert body["type"] == "urn:matcher:problem:rate-limited"
    assert body["title"] == "Too Many Requests"
    assert "3 requests of this minute" in body["detail"] and "15 s" in body["detail"]

    # Another key has a budget of its own.
    assert client.get(units_url(world), headers=world.auth("admin")).status_code == 200

    clock.now = WINDOW + 59.2  # still the same window: still refused, Retry-After at least 1
    late = client.get(units_url(world), headers=coordinator)
    assert (late.status_code, late.headers["Retry-After"]) == (429, "1")

    clock.now = WINDOW + 60  # the next window: a fresh budget
    for _ in range(3):
        assert client.get(units_url(world), headers=coordinator).status_code == 200
    assert client.get(units_url(world), headers=coordinator).status_code == 429

    # Exact counts (refused requests count too); a key's first request of a new window deletes
    # its older windows, so the table holds about one row per key.
    assert windows(session) == [(WINDOW, 1), (WINDOW + 60, 4)]  # admin's old, coordinator's new
    assert client.get(units_url(world), headers=world.auth("admin")).status_code == 200
    assert windows(session) == [(WINDOW + 60, 1), (WINDOW + 60, 4)]


def windows(session: Session) -> list[tuple[int, int]]:
    session.rollback()  # a fresh read
    rows = session.execute(select(RateLimitWindow.window_start, RateLimitWindow.count)).all()
    return sorted((start, count) for start, count in rows)


def test_a_refused_request_changes_nothing(
    client: FlaskClient, world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limiter(client.application), "per_minute", 1)
    hr = world.auth("hr")
    url = f"{API}/units/{world.unit.id}/apprentices"
    body = {"name": "陈晓", "wants": [{"name": "焊接", "level": 3}]}
    assert client.put(f"{url}/A-NEW-1", json=body, headers=hr).status_code == 201
    refused = client.put(f"{url}/A-NEW-2", json=body, headers=hr)
    assert refused.status_code == 429
    clock.now += 60
    listed = client.get(url, headers=hr).get_json()
    assert {p["external_id"] for p in listed} == {f"A-{world.unit.code}", "A-NEW-1"}


def test_the_budget_is_shared_by_every_worker_through_the_database(
    app: Flask, client: FlaskClient, world: World, clock: Clock
) -> None:
    # A second app on the same database stands for another gunicorn worker or another host.
    other_worker = create_app(
        {
            "env": "testing",
            "database_url": state(app).engine.url.render_as_string(hide_password=False),
            "secret_key": "test-secret-key-" + "x" * 32,
        }
    )
    other = rate_limiter(other_worker)
    other.clock, other.per_minute = clock, 3
    try:
        coordinator = world.auth("coordinator")
        assert client.get(units_url(world), headers=coordinator).status_code == 200
        other_client = other_worker.test_client()
        assert other_client.get(units_url(world), headers=coordinator).status_code == 200
        assert client.get(units_url(world), headers=coordinator).status_code == 200
        assert other_client.get(units_url(world), headers=coordinator).status_code == 429
        assert client.get(units_url(world), headers=coordinator).status_code == 429
    finally:
        state(other_worker).engine.dispose()  # the limiter's own engine with it


@pytest.mark.usefixtures("clock")
def test_concurrent_requests_are_counted_exactly(
    app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limiter(app), "per_minute", 10)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def burst() -> None:
        client = app.test_client()
        barrier.wait()
        for _ in range(4):
            response = client.get(units_url(world), headers=world.auth("coordinator"))
            statuses.append(response.status_code)

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 10 + [429] * 6
    assert windows(session) == [(WINDOW, 16)]


@pytest.mark.usefixtures("clock")
def test_a_budget_of_zero_turns_the_limit_off(
    client: FlaskClient, session: Session, world: World, app: Flask
) -> None:
    rate_limiter(app).per_minute = 0  # restored by the clock fixture's monkeypatch
    for _ in range(5):
        assert client.get(units_url(world), headers=world.auth("coordinator")).status_code == 200
    assert client.get(units_url(world), headers={"Authorization": "Bearer x"}).status_code == 401
    assert session.scalars(select(RateLimitWindow)).all() == []


def test_the_limit_comes_from_the_environment() -> None:
    assert Settings.from_env({}).rate_limit_per_minute == 1200
    assert Settings.from_env({"MATCHER_RATE_LIMIT_PER_MINUTE": "0"}).rate_limit_per_minute == 0
    with pytest.raises(ConfigError, match="RATE_LIMIT"):
        Settings.from_env({"MATCHER_RATE_LIMIT_PER_MINUTE": "-1"})


def test_a_limiter_that_cannot_count_leaves_the_request_to_the_usual_authentication() -> None:
    limiter = RateLimiter("sqlite:////nonexistent-folder/x.db", per_minute=1)
    assert [limiter.authenticate("Bearer mk_whatever") for _ in range(3)] == [None] * 3
    limiter.dispose()


@pytest.mark.usefixtures("clock")
def test_unknown_and_revoked_keys_are_401_at_once_and_not_counted(
    client: FlaskClient, session: Session, world: World
) -> None:
    url = units_url(world)
    for header in ("Bearer mk_unknown", "Basic abc", "Bearer "):
        response = client.get(url, headers={"Authorization": header})
        assert response.status_code == 401
        assert response.content_type == PROBLEM
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="matcher"'
    assert client.get(url, headers=world.auth("coordinator")).status_code == 200
    session.execute(update(ApiKey).values(revoked_at=utcnow()))
    session.commit()
    revoked = client.get(url, headers=world.auth("coordinator"))
    assert revoked.status_code == 401
    assert revoked.get_json()["detail"] == "The key is unknown or revoked."
    assert windows(session) == [(WINDOW, 1)]


def test_a_dropped_counter_connection_fails_one_count_open_then_is_replaced(
    app: Flask, world: World
) -> None:
    url = state(app).engine.url.render_as_string(hide_password=False)
    limiter = RateLimiter(url, per_minute=5)
    authorization = world.auth("hr")["Authorization"]
    try:
        first = limiter.authenticate(authorization)
        assert first is not None
        assert (first.count, first.principal.role, first.principal.unit_id) == (
            1,
            "hr",
            world.unit.id,
        )
        pooled = limiter.engine().raw_connection()
        dbapi_connection = pooled.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.close()  # as a server restart or an idle timeout would
        pooled.close()
        assert limiter.authenticate(authorization) is None  # the usual authentication, uncounted
        again = limiter.authenticate(authorization)  # a fresh connection
        assert again is not None and again.count == 2
    finally:
        limiter.dispose()


def test_every_api_operation_documents_the_429(client: FlaskClient) -> None:
    spec = client.get(f"{API}/openapi.json").get_json()
    operations = [
        operation
        for path, item in spec["paths"].items()
        if path.startswith(f"{API}/")
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]
    assert operations
    assert all(
        op["responses"]["429"] == {"$ref": "#/components/responses/RATE_LIMITED"}
        for op in operations
    )
    documented = spec["components"]["responses"]["RATE_LIMITED"]
    assert "Retry-After" in documented["headers"]


# --- One match run at a time per alliance ---------------------------------------------------


@pytest.fixture
def queue_everything(app: Flask) -> Iterator[None]:
    """Every run counts as large: the API queues it for the scheduler."""
    original = app.extensions["matcher"]
    settings = dataclasses.replace(original.settings, match_inline_max_cells=0)
    app.extensions["matcher"] = dataclasses.replace(original, settings=settings)
    yield
    app.extensions["matcher"] = original


def start(client: FlaskClient, world: World, who: str = "coordinator") -> Any:
    alliance = world.other_alliance if who.startswith("foreign") else world.alliance
    return client.post(
        f"{API}/alliances/{alliance.id}/match-runs", json={"params": {}}, headers=world.auth(who)
    )


@pytest.mark.usefixtures("queue_everything")
def test_a_second_run_while_one_is_queued_is_a_409(
    client: FlaskClient, session: Session, world: World
) -> None:
    first = start(client, world)
    assert first.status_code == 202
    run_id = first.get_json()["id"]

    second = start(client, world)
    assert second.status_code == 409
    assert second.content_type == PROBLEM
    detail = second.get_json()["detail"]
    assert f"Match run {run_id} of this alliance is still queued" in detail
    assert f"/api/v1/match-runs/{run_id}" in detail
    assert len(session.scalars(select(MatchRun)).all()) == 1

    # Another alliance is not held up.
    assert start(client, world, "foreign_coordinator").status_code == 202

    # Once the run is done, the next one may start.
    session.execute(update(MatchRun).where(MatchRun.id == run_id).values(status="failed"))
    session.commit()
    assert start(client, world).status_code == 202


@pytest.mark.usefixtures("queue_everything")
def test_two_concurrent_starts_give_one_run_and_one_409(app: Flask, world: World) -> None:
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(start(client, world).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 409]


def test_the_database_refuses_a_second_active_run_even_past_the_check(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = matching.create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="t"
    )
    session.commit()
    # The race the index is for: the check ran before the other run was committed.
    real_check = matching._active_run_conflict
    calls: list[int] = []

    def check_too_early(session: Session, alliance: Any) -> Conflict | None:
        calls.append(1)
        return None if len(calls) == 1 else real_check(session, alliance)

    monkeypatch.setattr(matching, "_active_run_conflict", check_too_early)
    with pytest.raises(Conflict, match=f"Match run {first.id} of this alliance is still queued"):
        matching.create_match_run(
            session, alliance=world.alliance, params=MatchParams(), created_by="t"
        )
    session.rollback()

    with pytest.raises(IntegrityError):
        session.execute(
            insert(MatchRun).values(
                alliance_id=world.alliance.id, status="running", params={}, stats={}, progress={}
            )
        )
    session.rollback()
    # Finished runs do not count.
    session.execute(
        insert(MatchRun),
        [
            {"alliance_id": world.alliance.id, "status": s, "params": {}, "stats": {}}
            for s in ("proposed", "proposed", "committed", "failed")
        ],
    )
    session.commit()


def test_an_inline_run_counts_as_running_while_it_solves(
    app: Flask, client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[Any] = []
    real_execute = matching.execute_match_run

    def execute(session: Session, *, run: MatchRun, **kwargs: Any) -> MatchRun:
        during.append(start(app.test_client(), world))  # another request while this one solves
        return real_execute(session, run=run, **kwargs)

    monkeypatch.setattr(matching, "execute_match_run", execute)
    first = start(client, world)
    assert first.status_code == 201
    assert first.get_json()["status"] == "proposed"
    assert during[0].status_code == 409
    assert "is still running" in during[0].get_json()["detail"]
    # Done: the next run may start.
    assert start(client, world).status_code == 201


def test_a_crash_while_solving_inline_fails_the_run_and_frees_the_alliance(
    client: FlaskClient, session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: Any, **_kwargs: Any) -> MatchRun:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(matching, "execute_match_run", crash)
    assert start(client, world).status_code == 500
    run = session.scalars(select(MatchRun)).one()
    assert run.status == "failed"
    assert run.error and "Internal error" in run.error
    monkeypatch.undo()
    assert start(client, world).status_code == 201
