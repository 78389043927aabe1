"""Health, readiness, metrics and the API documents."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from jobs import registry
from jobs.scheduler import LeaderLock, run_job
from matcher.algorithms import MatchParams
from matcher.app import create_app
from matcher.db import utcnow
from matcher.extensions import state
from matcher.models import Reminder
from matcher.services.heartbeat import STALE_AFTER_SECONDS
from matcher.services.matching import create_match_run, execute_match_run
from tests.factories import World


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"


def test_readyz_reports_whether_a_scheduler_is_active(app: Flask, client: FlaskClient) -> None:
    def readyz() -> dict[str, Any]:
        response = client.get("/readyz")
        assert response.status_code == 200  # reported, never a reason to take the API out
        body: dict[str, Any] = response.get_json()
        return body

    assert readyz()["scheduler"] == "not running"
    assert readyz()["scheduler_heartbeat_at"] is None
    scheduler = LeaderLock(state(app).engine)  # what a running `matcher scheduler` holds
    assert scheduler.try_acquire()

    def beat(at: datetime) -> None:  # the scheduler's heartbeat job, run as of ``at``
        run_job(
            registry()["heartbeat"],
            session_factory=state(app).session_factory,
            settings=state(app).settings,
            instance_path=Path(app.instance_path),
            now=at,
        )

    try:
        assert readyz()["scheduler"] == "stalled"  # holds the lock, has never beaten
        beat_at = utcnow() - timedelta(seconds=20)
        beat(beat_at)
        body = readyz()
        assert body["scheduler"] == "active"
        assert datetime.fromisoformat(body["scheduler_heartbeat_at"]) == beat_at
        assert 20 <= body["scheduler_heartbeat_age_seconds"] < 80
        late = utcnow() - timedelta(seconds=STALE_AFTER_SECONDS + 5)
        beat(late)
        assert readyz()["scheduler"] == "stalled"  # the lock is held, the jobs do not run
        metrics = client.get("/metrics").get_data(as_text=True)
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith("matcher_scheduler_heartbeat_age_seconds ")
        )
        assert float(line.split()[1]) >= STALE_AFTER_SECONDS + 5
    finally:
        scheduler.release()
    body = readyz()
    assert body["scheduler"] == "not running"
    assert datetime.fromisoformat(body["scheduler_heartbeat_at"]) == late  # the last one known


def test_metrics_show_the_outbox_and_match_runs_from_the_database(
    client: FlaskClient, session: Session, world: World
) -> None:
    run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    session.add(
        Reminder(
            alliance_id=world.alliance.id,
            kind="digest",
            recipient="c@example.cn",
            recipient_role="coordinator",
            dedupe_key="digest:test",
            status="failed",
        )
    )
    session.commit()
    body = client.get("/metrics").get_data(as_text=True)
    assert 'matcher_outbox_emails{status="failed"} 1.0' in body
    assert 'matcher_match_runs{status="proposed"} 1.0' in body
    assert "matcher_outbox_oldest_pending_seconds 0.0" in body
    assert 'matcher_match_run_seconds_count{method="dense",status="proposed"}' in body


def test_readyz_is_503_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    app = create_app({"env": "testing", "database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "matcher db upgrade" in response.get_json()["detail"]
    state(app).engine.dispose()


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = create_app({"env": "testing", "database_url": "postgresql://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'matcher_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in body


def test_openapi_documents_every_endpoint_and_the_problem_schema(
    app: Flask, client: FlaskClient
) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    assert "/api/v1/units/{unit_id}/craftsmen/bulk" in paths
    assert "/api/v1/units/{unit_id}/apprentices/{external_id}" in paths
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(spec["components"]["schemas"]["Problem"]["properties"]) >= {
        "type",
        "title",
        "status",
        "detail",
        "errors",
    }
    routes = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")} - {
        "/api/v1/openapi.json"
    }
    assert len(paths) == len(routes)


def test_docs_page_is_served_offline(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and b"/docs/start.js" in page.data
    assert b"/api/v1/openapi.json" in client.get("/docs/start.js").data
    with client.get("/docs/static/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200 and asset.mimetype == "text/javascript"
