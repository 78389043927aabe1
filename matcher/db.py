"""Engine and session lifecycle: one session per request or job run, owned by its caller."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations and the models never drift.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them naive so every row has one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """On SQLite, the stored text straight to an aware datetime in one call: a list page
        reads a few date-time columns per row, and parsing, then the generic wrapper, then
        ``replace`` cost a fifth of its time."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | datetime | None) -> datetime | None:
            # Stored "YYYY-MM-DD HH:MM:SS[.ffffff]", naive UTC (see process_bind_param): read
            # with its offset appended, one C call (``replace(tzinfo=...)`` alone took 0.7 us,
            # 150 of them on a list page). Text written by other means may carry an offset.
            if value.__class__ is str and len(value) in _NAIVE_TEXT_LENGTHS:
                try:
                    return _from_iso(value + "+00:00")
                except ValueError:  # same length, but an offset of its own (+0800)
                    pass
            if value is None:
                return None
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


_NAIVE_TEXT_LENGTHS = frozenset((19, 26))  # "YYYY-MM-DD HH:MM:SS" and with ".ffffff"
_from_iso = datetime.fromisoformat


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs, as operators usually write them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SQLITE_BUSY_MS = 15_000  # how long a statement waits for SQLite's write lock


def use_sqlite_pragmas(engine: Engine, *, busy_ms: int = SQLITE_BUSY_MS) -> Engine:
    """The settings every SQLite connection of the service runs with (the app's, the rate
    limiter's): foreign keys enforced, WAL (readers never wait for the writer), and how long to
    wait for the write lock."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")  # first: the others may wait
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    return engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine with the per-dialect settings the service relies on."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        return use_sqlite_pragmas(create_engine(url, **kwargs))
    engine = create_engine(url, pool_size=5, max_overflow=10, **kwargs)
    event.listen(engine, "checkout", _replace_if_closed_by_server)
    return engine


def _replace_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server has closed (a restart, an idle timeout, a
    terminated backend) is replaced before a request uses it, so that the first request after
    a restart does not fail.

    An idle connection has nothing to read unless the server wrote to it, and a server that
    closes one first says why, then ends the stream: a poll that does not wait finds it. This
    replaces the pool's pre-ping, which cost a round trip on every request.
    """
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable or dbapi_connection.closed:
        raise DisconnectionError("the server closed this pooled connection")  # pool retries


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built after it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work for CLI commands and jobs: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
