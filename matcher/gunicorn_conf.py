"""gunicorn settings shared by ``matcher serve`` and the Docker image."""

from __future__ import annotations

import os
import shutil
from typing import Any

worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 20
accesslog = None  # the app logs one line per request, with its request id (matcher.logs)
preload_app = False  # each worker imports the app after PROMETHEUS_MULTIPROC_DIR is set


def on_starting(_server: Any) -> None:
    """Start with an empty metrics folder: stale files would double-count old workers."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
