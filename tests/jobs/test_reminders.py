"""Summary-cycle emails: queued at the right local dates, at most once, sent over real SMTP."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jobs import registry
from jobs.scheduler import run_job
from matcher.extensions import state
from matcher.models import (
    Apprentice,
    AuditEvent,
    Craftsman,
    Mentorship,
    Reminder,
    TrainingSummary,
)
from matcher.services.mentorships import create_mentorship
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.reminders import LEASE
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.jobs.conftest import LOGIN, Sink, free_port

API = "/api/v1"
# Asia/Shanghai is UTC+8 all year: local midnight is 16:00 UTC the day before.
STARTED = date(2026, 1, 31)  # + 30 days = 2026-03-02 (across the end of February)
DUE = date(2026, 3, 2)


def at_local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """The UTC instant of ``day hour:minute`` in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def run(app: Flask, name: str, now: datetime, **settings: Any) -> dict[str, Any]:
    matcher_state = state(app)
    return run_job(
        registry()[name],
        session_factory=matcher_state.session_factory,
        settings=dataclasses.replace(matcher_state.settings, **settings),
        instance_path=Path(app.instance_path),
        now=now,
    )


def queue_upcoming(app: Flask, session: Session, world: World) -> datetime:
    """One pair, its two "upcoming" emails queued the day before the due date; that time."""
    make_pairs(session, world)
    now = at_local(DUE - timedelta(days=1))
    run(app, "reminders", now)
    return now


def make_pairs(session: Session, world: World, count: int = 1) -> list[Mentorship]:
    """``count`` mentorships: sibling-unit craftsmen (en) with home-unit apprentices (zh-CN)."""
    craftsmen = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.sibling_unit,
        items=[
            factories.craftsman_item(
                f"RC-{i}", name=f"Master Li {i}", email=f"master{i}@xtdj.example.cn", locale="en"
            )
            for i in range(count)
        ],
    ).ids
    apprentices = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item(f"RA-{i}", name=f"王小明{i}", email=f"xm{i}@hzdj.example.cn")
            for i in range(count)
        ],
    ).ids
    pairs = [
        create_mentorship(
            session,
            craftsman=session.get_one(Craftsman, c),
            apprentice=session.get_one(Apprentice, a),
            started_on=STARTED,
        )
        for c, a in zip(craftsmen, apprentices, strict=True)
    ]
    create_user(
        session,
        email="coordinator@emca.example.cn",
        password="s3cret-password",
        alliance=world.alliance,
    )
    session.commit()
    return pairs


def queued(session: Session) -> list[tuple[str, str, int | None]]:
    session.expire_all()
    rows = session.execute(
        select(Reminder.kind, Reminder.recipient_role, Reminder.period_index).order_by(Reminder.id)
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_upcoming_overdue_and_escalation_go_out_on_the_alliances_local_dates(
    app: Flask, session: Session, world: World
) -> None:
    make_pairs(session, world)
    window_opens = DUE - timedelta(days=3)
    assert (
        run(app, "reminders", at_local(window_opens - timedelta(days=1), 23, 59))["upcoming"] == 0
    )
    assert run(app, "reminders", at_local(window_opens))["upcoming"] == 2
    assert run(app, "reminders", at_local(window_opens, 9))["upcoming"] == 0  # once, ever
    assert run(app, "reminders", at_local(DUE, 23, 59)) == {
        "upcoming": 0,
        "overdue": 0,
        "escalation": 0,
        "term_ending": 0,
        "check_in": 0,
    }
    assert run(app, "reminders", at_local(DUE + timedelta(days=1)))["overdue"] == 2
    escalate_on = DUE + timedelta(days=14)
    assert (
        run(app, "reminders", at_local(escalate_on - timedelta(days=1), 23, 59))["escalation"] == 0
    )
    # The coordinator and both units' contact addresses.
    assert run(app, "reminders", at_local(escalate_on))["escalation"] == 3
    assert sorted(queued(session)) == sorted(
        [
            ("upcoming", "craftsman", 1),
            ("upcoming", "apprentice", 1),
            ("overdue", "craftsman", 1),
            ("overdue", "apprentice", 1),
            ("escalation", "coordinator", 1),
            ("escalation", "unit", 1),
            ("escalation", "unit", 1),
        ]
    )


def test_a_late_job_catches_up_once_with_what_still_applies(
    app: Flask, session: Session, world: World
) -> None:
    make_pairs(session, world)
    late = at_local(DUE + timedelta(days=20))
    assert run(app, "reminders", late) == {
        "upcoming": 0,
        "overdue": 2,
        "escalation": 3,
        "term_ending": 0,
        "check_in": 0,
    }
    assert run(app, "reminders", late + timedelta(hours=1)) == {
        "upcoming": 0,
        "overdue": 0,
        "escalation": 0,
        "term_ending": 0,
        "check_in": 0,
    }


def test_a_summary_stops_the_reminders_of_its_period(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    (pair,) = make_pairs(session, world)
    run(app, "reminders", at_local(DUE - timedelta(days=1)))
    response = client.post(
        f"{API}/mentorships/{pair.id}/summaries",
        json={"author": "apprentice", "content": "练习了氩弧焊打底", "hours": 6, "skills": ["TIG"]},
        headers=world.auth("hr"),
    )
    assert response.status_code == 201
    assert response.get_json()["period_index"] == 1
    assert response.get_json()["skills"] == ["氩弧焊"]  # the alias resolved
    assert run(app, "reminders", at_local(DUE + timedelta(days=20)))["overdue"] == 0
    read = client.get(f"{API}/mentorships/{pair.id}", headers=world.auth("coordinator")).get_json()
    assert read["next_due_on"] == (DUE + timedelta(days=30)).isoformat()
    assert read["periods_filled"] == 1


def test_emails_go_over_smtp_in_each_recipients_language_with_a_working_link(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    (pair,) = make_pairs(session, world)
    run(app, "reminders", at_local(DUE - timedelta(days=2)))
    assert (
        run(app, "outbox", at_local(DUE - timedelta(days=2)), smtp_url=smtp_sink.url)["sent"] == 2
    )
    by_to = {str(m["To"]): m for m in smtp_sink.messages}
    english, chinese = by_to["master0@xtdj.example.cn"], by_to["xm0@hzdj.example.cn"]
    assert "due on 2026-03-02" in str(english["Subject"])
    assert "2026-03-02 到期" in str(chinese["Subject"])
    for message in (english, chinese):
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "Master Li 0" in text and "王小明0" in text and "HZDJ 电机有限公司" in text
        assert "2026-03-02" in html and "Asia/Shanghai" in text
    link = re.search(r"http://testserver(/summary/\S+)", chinese.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert link is not None
    page = client.get(link.group(1))
    assert page.status_code == 200 and "提交培训总结" in page.get_data(as_text=True)
    form = {"content": "学会了仰焊 👍", "hours": "3.5", "skills": "TIG, 钎焊"}
    assert client.post(link.group(1), data=form).status_code == 400  # no CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    done = client.post(link.group(1), data={**form, "csrf_token": token.group(1)})
    assert done.status_code == 200 and "第 1 期" in done.get_data(as_text=True)
    summary = session.scalars(select(TrainingSummary)).one()
    assert (summary.author, summary.content, summary.hours) == ("apprentice", "学会了仰焊 👍", 3.5)
    assert summary.skills == ["氩弧焊", "钎焊"]
    again = client.post(link.group(1), data={**form, "csrf_token": token.group(1)})
    assert again.status_code == 409  # the period the link names is filled
    assert client.get("/summary/forged-token").status_code == 404


def test_smtp_refused_is_retried_later_and_nothing_is_lost(
    app: Flask, session: Session, world: World, smtp_sink: Sink
) -> None:
    now = queue_upcoming(app, session, world)
    closed = f"smtp://127.0.0.1:{free_port()}"
    assert run(app, "outbox", now, smtp_url=closed) == {
        "sent": 0,
        "retry": 2,
        "failed": 0,
        "cancelled": 0,
    }
    session.expire_all()
    rows = session.scalars(select(Reminder)).all()
    assert all(r.status == "pending" and r.attempts == 1 and r.last_error for r in rows)
    # Not due again yet: the delay grows with each attempt.
    assert run(app, "outbox", now + timedelta(seconds=30), smtp_url=smtp_sink.url)["sent"] == 0
    assert run(app, "outbox", now + timedelta(minutes=1), smtp_url=smtp_sink.url)["sent"] == 2
    assert len(smtp_sink.message_ids()) == 2


def test_smtp_5xx_fails_the_email_and_shows_it(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    now = queue_upcoming(app, session, world)
    smtp_sink.refuse["xm0@hzdj.example.cn"] = "550 5.1.1 No such mailbox"
    assert run(app, "outbox", now, smtp_url=smtp_sink.url) == {
        "sent": 1,
        "retry": 0,
        "failed": 1,
        "cancelled": 0,
    }
    failed = client.get(f"{API}/reminders?status=failed", headers=world.auth("coordinator"))
    (row,) = failed.get_json()
    assert row["recipient"] == "xm0@hzdj.example.cn" and "550" in row["last_error"]
    assert run(app, "outbox", now + timedelta(days=1), smtp_url=smtp_sink.url)["sent"] == 0


def _outbox_process(
    database_url: str, sink: Sink, command: tuple[str, ...] = ("jobs", "run", "outbox")
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MATCHER_DATABASE_URL": database_url,
        "MATCHER_SMTP_URL": sink.url,
        "MATCHER_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "MATCHER_BASE_URL": "http://testserver",
    }
    argv = [str(Path(sys.executable).parent / "matcher"), *command]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_outbox_processes_at_once_deliver_every_email_exactly_once(
    app: Flask, session: Session, world: World, smtp_sink: Sink, database_url: str
) -> None:
    make_pairs(session, world, count=60)
    run(app, "reminders", at_local(DUE - timedelta(days=1)))
    processes = [_outbox_process(database_url, smtp_sink) for _ in range(2)]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    ids = smtp_sink.message_ids()
    assert len(ids) == 120 and len(set(ids)) == 120
    assert (
        session.scalar(select(func.count()).select_from(Reminder).where(Reminder.status == "sent"))
        == 120
    )


@pytest.mark.parametrize(
    "command",
    [("jobs", "run", "outbox"), ("scheduler",)],
    ids=["outbox-job", "scheduler-process"],
)
def test_a_sender_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    app: Flask,
    session: Session,
    world: World,
    smtp_sink: Sink,
    database_url: str,
    command: tuple[str, ...],
) -> None:
    make_pairs(session, world, count=3)
    if command[0] == "jobs":
        run(app, "reminders", at_local(DUE - timedelta(days=1)))
    # else the scheduler queues them itself (its start-up reminders scan), then sends
    smtp_sink.stall_first_recipient.set()
    sender = _outbox_process(database_url, smtp_sink, command)
    assert smtp_sink.stalled.wait(timeout=90), "the sender never reached the SMTP server"
    sender.send_signal(signal.SIGKILL)
    sender.communicate(timeout=30)
    smtp_sink.stall_first_recipient.clear()
    assert smtp_sink.message_ids() == []
    session.expire_all()
    queued = session.scalar(select(func.count()).select_from(Reminder)) or 0
    assert queued > 0
    # The dead sender's lease runs out; the next run sends everything, once.
    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    assert run(app, "outbox", later, smtp_url=smtp_sink.url)["sent"] == queued
    ids = smtp_sink.message_ids()
    assert len(ids) == queued and len(set(ids)) == queued


def test_a_reminder_queued_before_the_summary_came_in_is_cancelled_not_sent(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    (pair,) = make_pairs(session, world)
    now = at_local(DUE - timedelta(days=1))
    assert run(app, "reminders", now)["upcoming"] == 2
    handed_in = client.post(
        f"{API}/mentorships/{pair.id}/summaries",
        json={"author": "craftsman", "content": "Taught root-pass TIG welding.", "hours": 2},
        headers=world.auth("sibling_hr"),
    )
    assert handed_in.status_code == 201
    outcome = run(app, "outbox", now, smtp_url=smtp_sink.url)
    assert outcome == {"sent": 0, "retry": 0, "failed": 0, "cancelled": 2}
    assert smtp_sink.message_ids() == []
    listed = client.get(f"{API}/reminders?status=cancelled", headers=world.auth("coordinator"))
    assert len(listed.get_json()) == 2


# Loopback only: the test server takes a login without TLS (aiosmtpd warns about that).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
def test_the_outbox_logs_in_when_the_smtp_url_has_credentials(
    app: Flask, session: Session, world: World, smtp_sink_with_login: Sink
) -> None:
    now = queue_upcoming(app, session, world)
    anonymous = f"smtp://127.0.0.1:{smtp_sink_with_login.port}"
    # 530 "authentication required" is the settings' fault, not the emails': they wait.
    assert run(app, "outbox", now, smtp_url=anonymous)["retry"] == 2
    user, password = LOGIN
    with_login = f"smtp://{user}:{quote(password, safe='')}@127.0.0.1:{smtp_sink_with_login.port}"
    assert run(app, "outbox", now + timedelta(minutes=1), smtp_url=with_login)["sent"] == 2
    assert len(smtp_sink_with_login.message_ids()) == 2


def test_a_stalled_smtp_server_times_out_the_outbox_while_the_web_answers(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    now = queue_upcoming(app, session, world)
    connected = threading.Event()
    with socket.socket() as server:  # accepts, then never says a word (no SMTP greeting)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        held: list[socket.socket] = []

        def accept() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                held.append(connection)
                connected.set()

        threading.Thread(target=accept, daemon=True).start()
        outcome: dict[str, Any] = {}
        sender = threading.Thread(
            target=lambda: outcome.update(
                run(app, "outbox", now, smtp_url=f"smtp://127.0.0.1:{port}", smtp_timeout_seconds=2)
            )
        )
        sender.start()
        assert connected.wait(timeout=30)
        # The outbox is stuck on the stalled server; the web is not.
        assert client.get("/healthz").status_code == 200
        listed = client.get(f"{API}/reminders", headers=world.auth("coordinator"))
        assert listed.status_code == 200 and len(listed.get_json()) == 2
        assert sender.is_alive()
        sender.join(timeout=60)
        for connection in held:
            connection.close()
    assert outcome == {"sent": 0, "retry": 2, "failed": 0, "cancelled": 0}
    session.expire_all()
    assert {r.status for r in session.scalars(select(Reminder))} == {"pending"}


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b"])
def test_legacy_names_with_a_line_break_still_make_a_sendable_escalation(
    app: Flask, session: Session, world: World, smtp_sink: Sink, breaker: str
) -> None:
    make_pairs(session, world)
    # Rows written before names were validated: straight into the database.
    session.execute(update(Craftsman).values(name=f"Master{breaker}Li"))
    session.execute(update(Apprentice).values(name=f"王{breaker}小明"))
    session.commit()
    late = at_local(DUE + timedelta(days=20))
    assert run(app, "reminders", late) == {
        "upcoming": 0,
        "overdue": 2,
        "escalation": 3,
        "term_ending": 0,
        "check_in": 0,
    }
    outcome = run(app, "outbox", late, smtp_url=smtp_sink.url)
    assert outcome == {"sent": 5, "retry": 0, "failed": 0, "cancelled": 0}
    subjects = [str(m["Subject"]) for m in smtp_sink.messages if "Li" in str(m["Subject"])]
    assert len(subjects) == 3  # the coordinator and both units
    for subject in subjects:
        assert "Master Li / 王 小明" in subject and subject == " ".join(subject.splitlines())


def test_an_email_that_cannot_be_built_is_an_error_then_retried_by_the_cli_after_the_fix(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: World,
    smtp_sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = queue_upcoming(app, session, world)
    (pair,) = session.scalars(select(Mentorship)).all()
    session.expire_all()
    ids = sorted(session.scalars(select(Reminder.id)))

    def broken(*_: Any) -> Any:
        raise ValueError("a bug in the email builder")

    monkeypatch.setattr("jobs.reminders.build_message", broken)  # the bug
    monkeypatch.setattr("matcher.services.reminders.MAX_ATTEMPTS", 1)
    with caplog.at_level("ERROR", logger="jobs.reminders"):
        outcome = run(app, "outbox", now, smtp_url=smtp_sink.url)
    assert outcome == {"sent": 0, "retry": 0, "failed": 2, "cancelled": 0}
    for reminder_id in ids:
        assert any(
            r.levelname == "ERROR"
            and f"reminder {reminder_id} (upcoming)" in r.getMessage()
            and "could not be built" in r.getMessage()
            for r in caplog.records
        )
    session.expire_all()
    assert all(
        r.status == "failed" and r.last_error.startswith("building the email: ValueError")
        for r in session.scalars(select(Reminder))
    )
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'matcher_outbox_failed_emails{kind="upcoming"} 2.0' in metrics
    assert 'matcher_outbox_failed_emails{kind="escalation"} 0.0' in metrics

    monkeypatch.undo()  # the fix is deployed; failed rows stay failed until an operator says so
    later = now + timedelta(hours=1)
    assert run(app, "outbox", later, smtp_url=smtp_sink.url)["sent"] == 0
    cli = app.test_cli_runner()
    result = cli.invoke(args=["reminders", "retry", "--status", "failed", "--kind", "overdue"])
    assert result.exit_code == 0 and "0 failed reminders queued again" in result.output
    result = cli.invoke(args=["reminders", "retry", "--status", "failed", "--mentorship", "999"])
    assert result.exit_code == 0 and "0 failed reminders queued again" in result.output
    result = cli.invoke(
        args=["reminders", "retry", "--status", "failed", "--mentorship", str(pair.id)]
    )
    assert result.exit_code == 0 and "2 failed reminders queued again" in result.output
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "reminder.retry").order_by(AuditEvent.id)
    ).all()
    assert [(a.object_type, a.object_id, a.actor) for a in audited] == [
        ("reminder", i, "cli") for i in ids
    ]
    assert all("ValueError" in a.data["last_error"] for a in audited)
    # Queued again as of the operator's clock: the next outbox run sends them.
    assert run(app, "outbox", datetime.now(UTC), smtp_url=smtp_sink.url)["sent"] == 2
    assert len(smtp_sink.message_ids()) == 2
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'matcher_outbox_failed_emails{kind="upcoming"} 0.0' in metrics
    refused = cli.invoke(args=["reminders", "retry", "--status", "sent"])
    assert refused.exit_code != 0
