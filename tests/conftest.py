"""Fixtures shared by the suite: every database test runs on SQLite and on real PostgreSQL.

PostgreSQL is reached at ``MATCHER_TEST_POSTGRES_URL`` (default: the local ``test`` database).
Each test session creates a database of its own there and drops it at the end, so parallel runs
never meet. Without PostgreSQL the PostgreSQL half is skipped and the summary says so plainly;
with ``CI=true`` an unreachable PostgreSQL fails the run and any skipped test fails it too.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from matcher.app import create_app
from matcher.db import Base, make_engine
from matcher.extensions import state
from matcher.migrations import upgrade
from tests import factories

PG_URL = os.environ.get("MATCHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_skipped_postgres: list[str] = []


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    name = f"matcher_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {PG_URL}: {exc}".strip()
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run, not skip)", pytrace=False)
        pytest.skip(f"{message}; start it to run the PostgreSQL half of the suite")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        # A fresh connection: the fault tests restart the server meanwhile.
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=30) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AbstractContextManager[str]:
    """A new, empty database of the backend (no schema)."""
    if backend == "sqlite":
        return nullcontext(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}")
    return _postgres_database()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each backend (the suite runs once per backend)."""
    with _database(request.param, tmp_path_factory) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of each backend without any schema, for tests that migrate it themselves."""
    with _database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def session_app(database_url: str) -> Iterator[Flask]:
    """One app per backend; tests are isolated by emptying the tables after each one."""
    app = create_app(
        {
            "env": "testing",
            "database_url": database_url,
            "secret_key": "test-secret-key-" + "x" * 32,
            "base_url": "http://testserver",
        }
    )
    yield app
    state(app).engine.dispose()


@pytest.fixture
def app(session_app: Flask) -> Iterator[Flask]:
    """The app, with every table emptied once the test is done."""
    yield session_app
    engine = state(session_app).engine
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


@pytest.fixture
def engine(app: Flask) -> Engine:
    """The app's engine."""
    return state(app).engine


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session of the app's database, for arranging and checking data."""
    with state(app).session_factory() as session:
        yield session


@pytest.fixture
def backend(database_url: str) -> str:
    """'sqlite' or 'postgresql'."""
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Only skips for want of the server count here: a PostgreSQL-half test skipped for another
    # reason (no Chromium) is listed by pytest's own summary under its own reason.
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
    if report.skipped and "PostgreSQL unreachable" in str(reason):
        _skipped_postgres.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_postgres:
        terminalreporter.section("PostgreSQL tests skipped", sep="=", yellow=True)
        terminalreporter.line(
            f"{len(_skipped_postgres)} PostgreSQL tests were SKIPPED (no server at {PG_URL}); "
            "only the SQLite half ran. Start PostgreSQL or set MATCHER_TEST_POSTGRES_URL."
        )
        per_file = Counter(nodeid.split("::", 1)[0] for nodeid in _skipped_postgres)
        for path, count in sorted(per_file.items()):
            terminalreporter.line(f"  {path}: {count} skipped on PostgreSQL")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped and exitstatus == 0:
        if reporter:
            reporter.write_line(
                f"CI=true: {skipped} tests were skipped; nothing may skip in CI.", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def world(session: Session) -> factories.World:
    """Two alliances, three units, keys of every role and scope, one person of each kind a unit."""
    return factories.world(session)
