"""Quiet by default: at INFO the log holds one line per email, per run and per job that did work;
a scheduler tick that did nothing, and Alembic's set-up chatter, are DEBUG lines."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs import registry, scheduler
from jobs.scheduler import LeaderLock, serve_forever
from matcher.db import make_engine
from matcher.extensions import state
from matcher.migrations import schema_status, upgrade
from matcher.models import Reminder
from tests.factories import World
from tests.jobs.conftest import Sink
from tests.jobs.test_reminders import queue_upcoming, run

OURS = ("matcher", "jobs")  # loggers of this project (aiosmtpd, say, has its own lines)
A_WEDNESDAY = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # no digest due, no summary due


def _ours(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] in OURS and r.levelno >= level]


@pytest.mark.usefixtures("world")
def test_a_tick_with_nothing_to_do_logs_nothing_at_info(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="jobs.scheduler")
    caplog.clear()
    for name in registry():
        run(app, name, A_WEDNESDAY)
    assert [r.getMessage() for r in _ours(caplog)] == []
    # Said, at DEBUG: every job ran and reported.
    ticks = [r.getMessage() for r in caplog.records if r.name == "jobs.scheduler"]
    assert sorted(line.split(":")[0] for line in ticks) == sorted(f"job {n}" for n in registry())


@pytest.mark.parametrize("mailer", ["smtp", "folder"])
def test_a_job_that_sends_emails_logs_one_line_per_email_and_one_for_the_job(
    app: Flask,
    session: Session,
    world: World,
    smtp_sink: Sink,
    caplog: pytest.LogCaptureFixture,
    mailer: str,
) -> None:
    now = queue_upcoming(app, session, world)
    reminders = session.scalars(select(Reminder).order_by(Reminder.id)).all()
    assert len(reminders) == 2
    caplog.set_level(logging.INFO)
    caplog.clear()  # the lines of queueing them
    outcome = run(app, "outbox", now, smtp_url=smtp_sink.url if mailer == "smtp" else "")
    assert outcome["sent"] == 2
    lines = [r.getMessage() for r in _ours(caplog)]
    for reminder in reminders:
        (line,) = [line for line in lines if line.startswith(f"reminder {reminder.id} ")]
        assert f"({reminder.kind}) to {reminder.recipient}:" in line
        assert ("sent" if mailer == "smtp" else "written to") in line
    assert [line for line in lines if not line.startswith("reminder ")] == [
        f"job outbox: {outcome}"
    ]


def test_an_email_that_cannot_be_built_is_one_error_line_with_its_traceback(
    app: Flask,
    session: Session,
    world: World,
    smtp_sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = queue_upcoming(app, session, world)
    ids = sorted(session.scalars(select(Reminder.id)))

    def broken(*_: Any) -> Any:
        raise ValueError("a bug in the email builder")

    monkeypatch.setattr("jobs.reminders.build_message", broken)
    caplog.set_level(logging.INFO)
    caplog.clear()
    run(app, "outbox", now, smtp_url=smtp_sink.url)
    emails = [r for r in _ours(caplog) if r.name == "jobs.reminders"]
    assert sorted(int(r.getMessage().split()[1]) for r in emails) == ids  # one line each
    for record in emails:
        assert record.levelno == logging.ERROR and "could not be built" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is ValueError


def test_a_standby_scheduler_says_so_once(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    stop = threading.Event()
    tries = 0

    def busy(_lock: LeaderLock) -> bool:  # another process holds the lock
        nonlocal tries
        tries += 1
        if tries == 4:
            stop.set()
        return False

    monkeypatch.setattr(LeaderLock, "try_acquire", busy)
    monkeypatch.setattr(scheduler, "STANDBY_RETRY_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    matcher_state = state(app)
    serve_forever(
        engine=matcher_state.engine,
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=tmp_path,
        stop=stop,
    )
    assert tries == 4
    assert [r.getMessage() for r in _ours(caplog)] == ["another scheduler is active; standing by"]


def test_alembic_set_up_lines_are_debug_and_its_migration_steps_info(
    app: Flask,  # noqa: ARG001 - create_app configured the process's logging
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        caplog.set_level(logging.INFO)
        upgrade(engine)
        migrating = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
        assert migrating and all(line.startswith("Running upgrade") for line in migrating)
        caplog.clear()
        upgrade(engine)  # nothing left to do
        assert schema_status(engine).current is not None  # what every /readyz asks
        assert [r for r in caplog.records if r.name.startswith("alembic")] == []
        # Demoted, not deleted: an operator who asks for DEBUG sees them.
        caplog.set_level(logging.DEBUG, logger="alembic")
        schema_status(engine)
        debug = [r for r in caplog.records if r.name.startswith("alembic")]
        assert {r.levelname for r in debug} == {"DEBUG"}
        assert any(r.getMessage().startswith("Context impl") for r in debug)
    finally:
        engine.dispose()
