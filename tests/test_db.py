"""The engine's pool on PostgreSQL: a pooled connection the server closed is replaced before use."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from matcher.db import make_engine
from tests.conftest import _postgres_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own (SQLite has no server that could close a connection)."""
    with _postgres_database() as url:
        yield url


def test_a_connection_the_server_closed_is_replaced_before_use(pg_url: str) -> None:
    pg_engine = make_engine(pg_url)
    with pg_engine.connect() as connection:
        first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    # The pool keeps it; the server ends it, as a restart or an idle timeout would.
    with psycopg.connect(pg_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,)).fetchone() == (True,)
        # Terminated means gone: until the server no longer lists it, ask again (no sleeping).
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
        while not admin.execute(gone, (first_pid,)).fetchone()[0]:
            pass
    with pg_engine.connect() as connection:  # no error: the dead one was swapped for a new one
        second_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert second_pid != first_pid
    assert pg_engine.pool.checkedout() == 0
    pg_engine.dispose()
