"""Prometheus metrics, correct across gunicorn workers (the client's multiprocess mode)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:  # services record metrics too, and import no Flask
    from flask import Flask

REQUESTS = Counter(
    "matcher_http_requests_total", "HTTP requests served", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "matcher_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


MATCH_RUN_SECONDS = Histogram(
    "matcher_match_run_seconds",
    "Time to load, solve and store a match run",
    ["method", "status"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OUTBOX_SENDS = Counter(
    "matcher_outbox_attempts_total", "Email send attempts by outcome", ["outcome"]
)


class DatabaseCollector:
    """Figures every process shares, read from the database at scrape time: the outbox backlog
    and failures, match runs by status and the scheduler's heartbeat age (correct whichever
    process did the work)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from matcher.db import utcnow
        from matcher.extensions import state
        from matcher.models import REMINDER_KINDS, MatchRun, Reminder, SchedulerHeartbeat

        with state(self.app).session_factory() as session:

            def by_status(name: str, documentation: str, model: Any) -> GaugeMetricFamily:
                gauge = GaugeMetricFamily(name, documentation, labels=["status"])
                for status, count in session.execute(
                    select(model.status, func.count()).group_by(model.status)
                ):
                    gauge.add_metric([status], count)
                return gauge

            def age(name: str, documentation: str, since: datetime | None) -> GaugeMetricFamily:
                gauge = GaugeMetricFamily(name, documentation)
                gauge.add_metric([], (utcnow() - since).total_seconds() if since else 0.0)
                return gauge

            yield by_status("matcher_outbox_emails", "Emails in the outbox by status", Reminder)
            # Every kind is present (0 too), so an alert on escalations needs no absent() rule.
            failed = GaugeMetricFamily(
                "matcher_outbox_failed_emails",
                "Emails that failed for good, by kind: each is one nobody received "
                "(`matcher reminders retry --status failed` once the cause is fixed)",
                labels=["kind"],
            )
            counts: dict[str, int] = dict(
                session.execute(
                    select(Reminder.kind, func.count())
                    .where(Reminder.status == "failed")
                    .group_by(Reminder.kind)
                ).all()
            )
            for kind in REMINDER_KINDS:
                failed.add_metric([kind], counts.get(kind, 0))
            yield failed
            yield age(
                "matcher_outbox_oldest_pending_seconds",
                "Age of the oldest email still pending",
                session.scalar(
                    select(func.min(Reminder.created_at)).where(Reminder.status == "pending")
                ),
            )
            yield by_status("matcher_match_runs", "Match runs by status", MatchRun)
            beat_at = session.scalar(select(SchedulerHeartbeat.beat_at))
            if beat_at is not None:  # absent until a scheduler first beats: nothing to alert on
                yield age(
                    "matcher_scheduler_heartbeat_age_seconds",
                    "Seconds since the active scheduler last ran its heartbeat job",
                    beat_at,
                )


def register_metrics(app: Flask) -> None:
    """Time every request and serve ``/metrics``."""
    from flask import Response, g, request

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.get("request_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest()
        registry = CollectorRegistry()
        registry.register(DatabaseCollector(app))
        return Response(body + generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
