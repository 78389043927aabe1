"""Large runs are queued by the API and solved by the scheduler process, never by a web worker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from jobs import registry
from jobs.scheduler import LeaderLock, build_scheduler, run_job
from matcher.algorithms import MatchParams
from matcher.db import utcnow
from matcher.extensions import state
from matcher.models import MatchRun
from matcher.services.matching import claim_queued_run, create_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


@pytest.fixture
def people(session: Session, world: World) -> None:
    """Three craftsmen and five apprentices per unit of the home alliance."""
    for unit in (world.unit, world.sibling_unit):
        upsert_people(
            session,
            kind=CRAFTSMAN,
            unit=unit,
            items=[
                factories.craftsman_item(
                    f"M-{unit.code}-{i}", skills=[{"name": "氩弧焊", "level": 2 + i}], capacity=1
                )
                for i in range(3)
            ],
        )
        upsert_people(
            session,
            kind=APPRENTICE,
            unit=unit,
            items=[
                factories.apprentice_item(
                    f"L-{unit.code}-{i}", wants=[{"name": "氩弧焊", "level": 1 + i, "weight": 1.0}]
                )
                for i in range(5)
            ],
        )
    session.commit()


@contextmanager
def every_run_queued(app: Flask) -> Iterator[None]:
    """Every run counts as large: the API queues it."""
    original = app.extensions["matcher"]
    settings = dataclasses.replace(original.settings, match_inline_max_cells=0)
    app.extensions["matcher"] = dataclasses.replace(original, settings=settings)
    try:
        yield
    finally:
        app.extensions["matcher"] = original


@pytest.fixture
def queue_everything(app: Flask) -> Iterator[None]:
    with every_run_queued(app):
        yield


def start_run(client: FlaskClient, world: World, params: dict[str, Any]) -> Any:
    return client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs",
        json={"params": params},
        headers=world.auth("coordinator"),
    )


def pairs(client: FlaskClient, world: World, run_id: int) -> list[tuple[int, int, float]]:
    response = client.get(f"{API}/match-runs/{run_id}/proposals", headers=world.auth("coordinator"))
    return sorted(
        (p["craftsman"]["id"], p["apprentice"]["id"], p["score"]) for p in response.get_json()
    )


def solve_queued(app: Flask) -> dict[str, Any]:
    matcher_state = state(app)
    return run_job(
        registry()["match_runs"],
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=Path(app.instance_path),
    )


@pytest.mark.usefixtures("people")
def test_a_large_run_is_queued_then_solved_by_the_job_like_an_inline_run(
    app: Flask, client: FlaskClient, world: World
) -> None:
    inline = start_run(client, world, {"min_fit": 0.3})
    assert inline.status_code == 201

    with every_run_queued(app):
        queued = start_run(client, world, {"min_fit": 0.3})
    assert queued.status_code == 202
    location = queued.headers["Location"]
    assert location.endswith(f"/match-runs/{queued.get_json()['id']}")
    before = client.get(location, headers=world.auth("coordinator")).get_json()
    assert before["status"] == "queued"
    assert pairs(client, world, before["id"]) == []

    assert solve_queued(app) == {"solved": 1, "failed": 0}
    after = client.get(location, headers=world.auth("coordinator")).get_json()
    assert after["status"] == "proposed"
    assert after["progress"]["stage"] == "done"
    assert after["objective"] == pytest.approx(inline.get_json()["objective"])
    assert pairs(client, world, after["id"]) == pairs(client, world, inline.get_json()["id"])
    assert solve_queued(app) == {"solved": 0, "failed": 0}  # nothing left to do


@pytest.mark.usefixtures("people", "queue_everything")
def test_a_queued_run_that_cannot_be_solved_fails_with_its_reason(
    app: Flask, client: FlaskClient, world: World
) -> None:
    same_unit = [world.craftsman_ids["HZDJ"], world.apprentice_ids["HZDJ"]]
    queued = start_run(client, world, {"pinned": [same_unit]})
    assert queued.status_code == 202
    assert solve_queued(app) == {"solved": 0, "failed": 1}
    run = client.get(queued.headers["Location"], headers=world.auth("coordinator")).get_json()
    assert run["status"] == "failed"
    assert "same unit" in run["error"]


def test_a_run_is_claimed_once_and_a_dead_solvers_run_is_taken_over(
    app: Flask, session: Session, world: World
) -> None:
    run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    session.commit()
    factory = state(app).session_factory
    with factory() as first, factory() as second:
        claimed = claim_queued_run(first)
        assert claimed is not None and claimed.id == run.id
        first.commit()  # the caller's boundary
        assert claim_queued_run(second) is None  # running and fresh: not claimable
    with factory() as third:
        # The solver died long ago: its run is stale and claimable again.
        third.execute(
            update(MatchRun)
            .where(MatchRun.id == run.id)
            .values(updated_at=utcnow() - timedelta(hours=2))
        )
        third.commit()
        retaken = claim_queued_run(third)
        assert retaken is not None and retaken.id == run.id


def test_only_one_scheduler_holds_the_leader_lock(app: Flask) -> None:
    engine = state(app).engine
    leader, standby = LeaderLock(engine), LeaderLock(engine)
    assert leader.try_acquire()
    try:
        assert leader.still_held()
        assert not standby.try_acquire()
    finally:
        leader.release()
    assert standby.try_acquire()
    standby.release()


def test_the_outbox_runs_right_after_the_first_reminders_scan(app: Flask, tmp_path: Path) -> None:
    lock = LeaderLock(state(app).engine)
    assert lock.try_acquire()
    try:
        scheduler = build_scheduler(
            session_factory=state(app).session_factory,
            settings=state(app).settings,
            instance_path=tmp_path,
            lock=lock,
        )
        registered = {job.id: job for job in scheduler.get_jobs()}
        assert set(registered) == set(registry())
        assert getattr(registered["outbox"], "next_run_time", None) is None  # not at start

        def run_once(name: str) -> None:  # what the scheduler's thread pool does with a job
            job = scheduler.get_job(name)
            job.func(*job.args)

        started = datetime.now(UTC)
        run_once("reminders")
        first = scheduler.get_job("outbox").next_run_time
        assert first is not None and started <= first <= datetime.now(UTC)
        later = started + timedelta(hours=1)
        scheduler.modify_job("outbox", next_run_time=later)
        run_once("reminders")  # later scans leave the outbox to its own minute
        assert scheduler.get_job("outbox").next_run_time == later
    finally:
        lock.release()


def _scheduler(database_url: str, log_level: str = "INFO") -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MATCHER_DATABASE_URL": database_url,
        "MATCHER_ENV": "development",
        "MATCHER_LOG_LEVEL": log_level,
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "matcher"), "scheduler"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    """Read the process's log until ``needle`` shows (a condition, not a sleep)."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"'{needle}' never logged; log was:\n{''.join(seen)}")


@pytest.mark.usefixtures("people", "queue_everything")
def test_the_scheduler_process_solves_queued_runs_and_a_second_one_stands_by(
    client: FlaskClient, world: World, database_url: str
) -> None:
    queued = start_run(client, world, {})
    assert queued.status_code == 202
    active = _scheduler(database_url, "DEBUG")  # the heartbeat's routine tick is a DEBUG line
    standby = None
    try:
        _wait_for_line(active, "scheduler active")
        _wait_for_line(active, "job heartbeat")
        assert client.get("/readyz").get_json()["scheduler"] == "active"
        standby = _scheduler(database_url)
        _wait_for_line(standby, "standing by")
        _wait_for_line(active, f"match run {queued.get_json()['id']}: proposed")
        run = client.get(queued.headers["Location"], headers=world.auth("coordinator")).get_json()
        assert run["status"] == "proposed" and run["stats"]["matched"] > 0
    finally:
        for process in (active, standby):
            if process is not None:
                process.terminate()
                process.communicate(timeout=30)  # drains and closes its log pipe
                assert process.returncode == 0
