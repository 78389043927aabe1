"""``/healthz`` (process up) and ``/readyz`` (database reachable, schema at the newest revision)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from matcher.api.problems import problem
from matcher.extensions import state
from matcher.migrations import schema_status

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> Response:
    """Ready to serve: the database answers and its schema is the newest one."""
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
    active = LeaderLock(state().engine).held_elsewhere()
    return jsonify(
        status="ready",
        database="ok",
        schema=status.current,
        scheduler="active" if active else "not running",
    )
