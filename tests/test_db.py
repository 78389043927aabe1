"""The engine: on PostgreSQL a pooled connection the server closed is replaced before use; on
SQLite timestamps read back aware and in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, text

from matcher.db import UTCDateTime, make_engine
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


def test_sqlite_reads_every_stored_timestamp_text_as_an_aware_utc_datetime() -> None:
    """The fast path (naive text with "+00:00" appended) and the general one agree: text as
    the app stores it, with microseconds or without, and text written by other means with an
    offset of its own, even one of the fast path's lengths."""
    table = Table(
        "stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    engine = make_engine("sqlite://")
    table.create(engine)
    stored = {
        "2026-12-01 09:30:00": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        "2026-12-01 09:30:00.123456": datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "2026-12-01 09:30:00.1+0800": datetime(2026, 12, 1, 1, 30, 0, 100000, tzinfo=UTC),
        "2026-12-01T09:30:00+08:00": datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
    }
    with engine.begin() as connection:
        for index, value in enumerate(stored, start=1):
            connection.execute(
                text("INSERT INTO stamps VALUES (:id, :at)"), {"id": index, "at": value}
            )
        written = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))
        connection.execute(table.insert(), {"id": len(stored) + 1, "at": written})
        read = connection.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
    assert read == [*stored.values(), written]
    assert all(value.utcoffset() == timedelta(0) for value in read)
    engine.dispose()
