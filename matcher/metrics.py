"""Prometheus metrics, correct across gunicorn workers (the client's multiprocess mode)."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

REQUESTS = Counter(
    "matcher_http_requests_total", "HTTP requests served", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "matcher_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def register_metrics(app: Flask) -> None:
    """Time every request and serve ``/metrics``."""

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
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
