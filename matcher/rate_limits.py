"""Per-key rate limits: a fixed one-minute window per API key, counted in the database.

The counters live in ``rate_limit_windows`` so that every gunicorn worker of every process and
host shares one budget per key without extra infrastructure. Each API request costs one statement
that both checks the key and counts the request:

    INSERT INTO rate_limit_windows (key_id, window_start, count)
    SELECT id, :window, 1 FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL
    ON CONFLICT (key_id, window_start) DO UPDATE SET count = rate_limit_windows.count + 1
    RETURNING key_id, count

(PostgreSQL and SQLite alike; built with SQLAlchemy from ``matcher.services.api_keys``' own
definition of a valid key, and compiled once per dialect): no row back means an unknown or
revoked key (401, checked on every request, so a revocation holds at once). A key's role and
scope never change, so each process keeps them once read. The statement runs on a small engine
of its own in autocommit mode, so the count is committed at once, whatever becomes of the
request's own transaction; on PostgreSQL that engine does not wait for the WAL flush
(``synchronous_commit=off``): a count lost in a crash costs nothing. The key's first request of
a window deletes its older windows, so the table holds about one row per key.

A limiter that cannot count (SQLite locked for long, the database unreachable) leaves the request
to the usual authentication, uncounted: it is never the reason a request fails.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, Response
from sqlalchemy import (
    BigInteger,
    Engine,
    String,
    bindparam,
    create_engine,
    delete,
    event,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from matcher.api import API_PREFIX
from matcher.api.problems import ProblemSchema, problem
from matcher.db import normalise_database_url, use_sqlite_pragmas
from matcher.errors import Unauthorized
from matcher.models import ApiKey, RateLimitWindow
from matcher.services.access import Principal
from matcher.services.api_keys import (
    SCOPE_COLUMNS,
    UNKNOWN_KEY,
    bearer_key,
    hash_key,
    principal_of,
    valid_key,
)

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
SQLITE_BUSY_MS = 500  # how long a request waits for SQLite's write lock before going uncounted
EXTENSION = "matcher_rate_limiter"


@dataclass(frozen=True)
class Verdict:
    """What the limiter says of one request of a known key."""

    principal: Principal
    allowed: bool
    limit: int
    count: int
    retry_after: int  # seconds until the window ends

    def refusal(self) -> Response | None:
        """``None`` if the request may go on, else the 429 problem to answer with."""
        if self.allowed:
            return None
        return problem(
            429,
            title="Too Many Requests",
            slug="rate-limited",
            detail=f"This key has used its {self.limit} requests of this minute; "
            f"retry in {self.retry_after} s.",
            headers={"Retry-After": str(self.retry_after)},
        )


@dataclass(frozen=True)
class _Statement:
    """A statement compiled once for a dialect, run on a plain DBAPI cursor."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in order (qmark), or None (named)

    @classmethod
    def of(cls, stmt: Any, dialect: Dialect) -> _Statement:
        compiled = stmt.compile(dialect=dialect)
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled.string, positions)

    def params(self, **values: Any) -> Any:
        """The DBAPI parameters: every bound parameter of the statement is named by the caller."""
        return values if self.positions is None else tuple(values[n] for n in self.positions)


@dataclass(frozen=True)
class _Statements:
    count: _Statement
    prune: _Statement
    scope: _Statement


def _statements(dialect: Dialect) -> _Statements:
    """The limiter's three statements for ``dialect``; the key check is ``valid_key``'s."""
    insert: Any = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    one: Any = literal_column("1")  # inline, not a parameter: the statement stays the same text
    source = select(ApiKey.id, bindparam("window", type_=BigInteger), one).where(
        valid_key(bindparam("key_hash", type_=String))
    )
    count = (
        insert(RateLimitWindow)
        .from_select(["key_id", "window_start", "count"], source)
        .on_conflict_do_update(
            index_elements=["key_id", "window_start"], set_={"count": RateLimitWindow.count + one}
        )
        .returning(RateLimitWindow.key_id, RateLimitWindow.count)
    )
    prune = delete(RateLimitWindow).where(
        RateLimitWindow.key_id == bindparam("key_id"),
        RateLimitWindow.window_start < bindparam("window"),
    )
    scope = select(*SCOPE_COLUMNS).where(ApiKey.id == bindparam("key_id"))
    return _Statements(
        count=_Statement.of(count, dialect),
        prune=_Statement.of(prune, dialect),
        scope=_Statement.of(scope, dialect),
    )


class RateLimiter:
    """Checks keys and counts their requests per window; ``clock`` (Unix seconds) and
    ``per_minute`` are replaceable in tests."""

    def __init__(
        self, database_url: str, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.database_url = database_url
        self.per_minute = per_minute
        self.clock = clock
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        # A key's role and scope never change: read once per process, by the key's hash.
        self._scopes: dict[str, Principal] = {}
        self._statements: _Statements | None = None

    def _sql(self, dialect: Dialect) -> _Statements:
        """The statements, compiled on first use (one engine, so one dialect, per limiter)."""
        if self._statements is None:
            self._statements = _statements(dialect)
        return self._statements

    def engine(self) -> Engine:
        """The limiter's own engine (autocommit), created on first use in each process."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _counter_engine(self.database_url)
        return self._engine

    def dispose(self) -> None:
        """Close the limiter's connections (when the app's engine is disposed)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def authenticate(self, authorization: str | None) -> Verdict | None:
        """Check the caller's key and count the request (401 for a bad, unknown or revoked
        key). ``None`` when the limit is off or the count cannot be written: the caller then
        authenticates the usual way."""
        if self.per_minute <= 0:
            return None
        key_hash = hash_key(bearer_key(authorization))
        limit = self.per_minute
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        retry_after = max(1, math.ceil(window + WINDOW_SECONDS - now))
        counted = self._count(key_hash, window)
        if counted is None:
            return None
        principal, count = counted
        return Verdict(principal, count <= limit, limit, count, retry_after)

    def _count(self, key_hash: str, window: int) -> tuple[Principal, int] | None:
        """The caller and its count in the window after this request; ``None`` if the count
        cannot be written. A plain DBAPI cursor (no ORM, no pre-ping): one round trip."""
        engine = self.engine()
        sql = self._sql(engine.dialect)
        connection: Any = None
        try:
            connection = engine.raw_connection()
            cursor = connection.cursor()
            try:
                cursor.execute(sql.count.sql, sql.count.params(window=window, key_hash=key_hash))
                row = cursor.fetchone()
                if row is None:
                    raise Unauthorized(UNKNOWN_KEY)
                key_id, count = int(row[0]), int(row[1])
                if count == 1:  # the key's first request of this window: drop its old windows
                    cursor.execute(sql.prune.sql, sql.prune.params(key_id=key_id, window=window))
                principal = self._scopes.get(key_hash)
                if principal is None or principal.key_id != key_id:
                    cursor.execute(sql.scope.sql, sql.scope.params(key_id=key_id))
                    principal = principal_of(cursor.fetchone())
                    self._scopes[key_hash] = principal
            finally:
                cursor.close()
        except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:
            if connection is not None:
                connection.invalidate()  # a connection the server dropped is not reused
            log.warning("rate limit not counted: %s", exc)
            return None
        finally:
            if connection is not None:
                connection.close()
        return principal, count


def _counter_engine(url: str) -> Engine:
    """Autocommit, no pre-ping (a dropped connection fails one count open, then is replaced)."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        # Wait less than a request would for SQLite's write lock, then go uncounted.
        engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
        return use_sqlite_pragmas(engine, busy_ms=SQLITE_BUSY_MS)
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        pool_size=5,
        max_overflow=10,
        # A counter lost in a crash costs nothing: do not wait for the WAL flush.
        connect_args={"options": "-c synchronous_commit=off"},
    )


def install_rate_limiter(app: Flask, *, engine: Engine, per_minute: int) -> RateLimiter:
    """Create the app's limiter on the database of ``engine``, disposed together with it."""
    limiter = RateLimiter(engine.url.render_as_string(hide_password=False), per_minute)
    event.listen(engine, "engine_disposed", lambda _engine: limiter.dispose())
    app.extensions[EXTENSION] = limiter
    return limiter


def rate_limiter(app: Flask) -> RateLimiter:
    """The limiter of ``app``."""
    limiter: RateLimiter = app.extensions[EXTENSION]
    return limiter


class RateLimitDocs(BasePlugin):
    """Documents the 429 (with ``Retry-After``) on every operation of the API."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        spec.components.response(
            "RATE_LIMITED",
            {
                "description": "The key used its requests of this minute "
                "(`MATCHER_RATE_LIMIT_PER_MINUTE`); retry after `Retry-After` seconds.",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds until the key's budget is renewed",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                },
                "content": {"application/problem+json": {"schema": ProblemSchema}},
            },
        )

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if not path or not path.startswith(API_PREFIX + "/") or not operations:
            return
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.setdefault("responses", {})["429"] = "RATE_LIMITED"
