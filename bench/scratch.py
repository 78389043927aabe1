"""A scratch database for a benchmark: a temporary SQLite file, or a PostgreSQL database of its
own on the server at ``MATCHER_TEST_POSTGRES_URL`` (created, and dropped at the end)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_URL = os.environ.get("MATCHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """The URL of an empty database of ``backend`` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"matcher_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=30) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
