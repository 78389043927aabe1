"""PostgreSQL restarted under load: requests in flight fail cleanly (503), nothing is half
written, and the service recovers by itself (the pool replaces a connection the server closed
before a request uses it)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from matcher.app import create_app
from matcher.db import make_engine
from matcher.extensions import state
from matcher.migrations import upgrade
from matcher.models import Apprentice
from tests import factories
from tests.conftest import IN_CI, _postgres_database

BATCH = 25


def _restart_postgresql() -> None:
    clusters = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").exists() else []
    )
    if not clusters or not shutil.which("pg_ctlcluster"):
        message = "cannot restart PostgreSQL here (no pg_ctlcluster cluster)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    version = clusters[0].parent.name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_postgresql_restarted_under_load_loses_nothing_and_recovers() -> None:
    with _postgres_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app(
            # One key drives hundreds of requests a second here: no rate limit.
            {
                "env": "testing",
                "database_url": url,
                "secret_key": "k" * 40,
                "rate_limit_per_minute": 0,
            }
        )
        with state(app).session_factory() as session:
            world = factories.world(session)
        statuses: Counter[int] = Counter()
        answered: dict[str, int] = {}
        lock = threading.Lock()
        stop = threading.Event()
        after_restart = threading.Event()
        restarted = threading.Event()
        warmed = threading.Event()  # the load runs before the restart

        def load(worker: int) -> None:
            client = app.test_client()
            batch = 0
            while not stop.is_set():
                tag = f"W{worker}-B{batch}"
                response = client.post(
                    f"/api/v1/units/{world.unit.id}/apprentices/bulk",
                    json=[factories.apprentice_item(f"{tag}-{i}") for i in range(BATCH)],
                    headers=world.auth("hr"),
                )
                read = client.get(
                    f"/api/v1/units/{world.unit.id}/apprentices?page_size=5",
                    headers=world.auth("hr"),
                )
                with lock:
                    statuses[response.status_code] += 1
                    statuses[read.status_code] += 1
                    answered[tag] = response.status_code
                    ok = response.status_code == 200 and read.status_code == 200
                    if ok and statuses[200] >= 10:
                        warmed.set()
                    if ok and restarted.is_set():
                        after_restart.set()
                batch += 1

        workers = [threading.Thread(target=load, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        try:
            assert warmed.wait(timeout=60), f"no load: {statuses}"
            _restart_postgresql()
            restarted.set()
            assert after_restart.wait(timeout=60), f"never recovered: {statuses}"
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
        assert set(statuses) <= {200, 503}, statuses  # failures are clean 503s, never a 500
        with state(app).session_factory() as session:
            for tag, status in answered.items():
                stored = session.scalar(
                    select(func.count())
                    .select_from(Apprentice)
                    .where(Apprentice.external_id.like(f"{tag}-%"))
                )
                # All or nothing, and what was acknowledged is there.
                assert stored in (0, BATCH), (tag, stored)
                if status == 200:
                    assert stored == BATCH, (tag, status)
        state(app).engine.dispose()
