"""``/healthz`` (process up) and ``/readyz`` (database reachable, schema at the newest revision)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from matcher.api.problems import problem
from matcher.db import utcnow
from matcher.extensions import state
from matcher.migrations import schema_status
from matcher.services.heartbeat import scheduler_status

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> Response:
    """Ready to serve: the database answers and its schema is the newest one; also says whether
    a scheduler is ``active``, ``stalled`` (holds the lock, no heartbeat for a minute) or
    ``not running``, and when it last beat."""
    status = schema_status(state().engine)
    if not status.reachable:
        return problem(503, title="Service Unavailable", slug="not-ready", detail=status.detail)
    if status.current != status.head:
        return problem(
            503,
            title="Service Unavailable",
            slug="not-ready",
            detail=f"Database schema is at {status.current}, expected {status.head}; "
            "run 'matcher db upgrade'.",
        )
    from jobs.scheduler import LeaderLock

    # Reported, not required: the API serves without the scheduler, but an operator should know
    # that reminders and queued runs wait.
    lock_held = LeaderLock(state().engine).held_elsewhere()
    with state().session_factory() as session:
        scheduler = scheduler_status(session, lock_held=lock_held, now=utcnow())
    return jsonify(
        status="ready",
        database="ok",
        schema=status.current,
        scheduler=scheduler.state,
        scheduler_heartbeat_at=scheduler.beat_at.isoformat() if scheduler.beat_at else None,
        scheduler_heartbeat_age_seconds=(
            round(scheduler.age_seconds, 1) if scheduler.age_seconds is not None else None
        ),
    )
