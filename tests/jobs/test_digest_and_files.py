"""The weekly digest (once per coordinator per ISO week, over SMTP, in the user's locale) and the
folder outbox used without ``MATCHER_SMTP_URL`` (``.eml`` files under the instance folder)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

import matcher.services.mentorships as mentorship_service
from jobs import registry
from jobs.scheduler import run_job
from matcher.algorithms import MatchParams
from matcher.extensions import state
from matcher.models import Mentorship, Proposal, Reminder, Unit, User
from matcher.services.emails import message_id
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import (
    SummaryInput,
    add_summary,
    end_mentorship,
)
from matcher.services.review import decide, etag
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.jobs.conftest import Sink

SHANGHAI = ZoneInfo("Asia/Shanghai")
CADENCE = 30
ESCALATE_AFTER = 14
# The digest's cron time: Monday 08:00 in the alliance's timezone, ISO week 2026-W11.
DIGEST_AT = datetime(2026, 3, 9, 8, 0, tzinfo=SHANGHAI)
DIGEST_DAY = DIGEST_AT.date()


def run(
    app: Flask, name: str, now: datetime, instance_path: Path | None = None, **settings: Any
) -> dict[str, Any]:
    matcher_state = state(app)
    return run_job(
        registry()[name],
        session_factory=matcher_state.session_factory,
        settings=dataclasses.replace(matcher_state.settings, **settings),
        instance_path=instance_path or Path(app.instance_path),
        now=now,
    )


def set_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    """The time the mentorship service stamps on summaries and uses for local dates."""
    monkeypatch.setattr(mentorship_service, "utcnow", lambda: now.astimezone(UTC))


def new_pair(
    session: Session, craftsman_unit: Unit, apprentice_unit: Unit, tag: str, started_on: date
) -> Mentorship:
    """A new craftsman (en) and apprentice (zh-CN), with emails, paired from ``started_on``."""
    return factories.mentorship(
        session,
        craftsman_unit,
        apprentice_unit,
        started_on,
        tag,
        craftsman={"name": f"Master {tag}", "locale": "en"},
    )


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def test_the_digest_goes_once_a_week_to_each_coordinator_in_their_language_with_the_counts(
    app: Flask,
    session: Session,
    world: World,
    smtp_sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, sibling = world.unit, world.sibling_unit
    # Proposals: a run over the world's people; one of them is approved, the rest wait.
    match_run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=match_run)
    proposals = session.scalars(
        select(Proposal).where(Proposal.match_run_id == match_run.id).order_by(Proposal.id)
    ).all()
    assert match_run.status == "proposed" and len(proposals) >= 2
    decide(
        session,
        proposal=proposals[0],
        status="approved",
        comment=None,
        actor="test",
        expected_etag=etag(proposals[0]),
    )
    pending_proposals = len(proposals) - 1

    # Pairs: started so many days before the digest's local date; some hand in a summary.
    started = {
        "five days overdue": DIGEST_DAY - timedelta(days=CADENCE + 5),
        "escalated": DIGEST_DAY - timedelta(days=CADENCE + ESCALATE_AFTER + 6),
        "due on the day": DIGEST_DAY - timedelta(days=CADENCE),
        "summary this week": DIGEST_DAY - timedelta(days=CADENCE + 10),
        "summary two weeks ago": DIGEST_DAY - timedelta(days=CADENCE + 15),
        "ended": DIGEST_DAY - timedelta(days=95),
    }
    pairs = {
        label: new_pair(session, sibling, home, f"P{i}", day)
        for i, (label, day) in enumerate(started.items())
    }
    end_mentorship(session, mentorship=pairs["ended"], today=DIGEST_DAY - timedelta(days=1))
    handed_in = {  # when each summary was handed in
        "summary this week": DIGEST_AT - timedelta(days=4),  # the Thursday before
        "summary two weeks ago": DIGEST_AT - timedelta(days=12),
    }
    for label, at in handed_in.items():
        set_clock(monkeypatch, at)
        add_summary(
            session,
            mentorship=pairs[label],
            summary=SummaryInput("apprentice", f"{label}：练习了仰焊", 5, []),
            submitted_by="test",
        )
    week_before = DIGEST_AT - timedelta(days=7)
    summaries_this_week = sum(1 for at in handed_in.values() if at >= week_before)
    due = {
        label: day + timedelta(days=CADENCE * (2 if label in handed_in else 1))
        for label, day in started.items()
        if label != "ended"
    }
    overdue_pairs = sum(1 for day in due.values() if day < DIGEST_DAY)
    escalated_pairs = sum(
        1 for day in due.values() if day <= DIGEST_DAY - timedelta(days=ESCALATE_AFTER)
    )
    # Coordinators: two active of the home alliance (en, zh-CN), an inactive one, one elsewhere.
    create_user(
        session,
        email="li@emca.example.cn",
        password="s3cret-password",
        alliance=world.alliance,
        locale="en",
    )
    create_user(
        session, email="wang@emca.example.cn", password="s3cret-password", alliance=world.alliance
    )
    create_user(
        session, email="gone@emca.example.cn", password="s3cret-password", alliance=world.alliance
    ).active = False
    create_user(
        session,
        email="zhao@other.example.cn",
        password="s3cret-password",
        alliance=world.other_alliance,
    )
    session.commit()
    assert min(overdue_pairs, escalated_pairs, summaries_this_week) > 0

    assert run(app, "digest", DIGEST_AT) == {"digest": 3}
    assert run(app, "outbox", DIGEST_AT, smtp_url=smtp_sink.url) == {
        "sent": 3,
        "retry": 0,
        "failed": 0,
        "cancelled": 0,
    }
    by_to = {str(m["To"]): m for m in smtp_sink.messages}
    assert set(by_to) == {"li@emca.example.cn", "wang@emca.example.cn", "zhao@other.example.cn"}
    english, chinese, other = (
        by_to["li@emca.example.cn"],
        by_to["wang@emca.example.cn"],
        by_to["zhao@other.example.cn"],
    )
    assert str(english["Subject"]) == "[EMCA 工匠联盟] Weekly mentorship digest"
    assert str(chinese["Subject"]) == "【EMCA 工匠联盟】本周师徒结对简报"
    english_lines = plain(english).splitlines()
    assert f"Weekly digest of EMCA 工匠联盟 ({DIGEST_DAY.isoformat()}):" in english_lines
    assert f"- proposals waiting for review: {pending_proposals}" in english_lines
    assert f"- pairs with an overdue summary: {overdue_pairs}" in english_lines
    assert f"- pairs escalated (14+ days past due): {escalated_pairs}" in english_lines
    assert f"- summaries handed in this week: {summaries_this_week}" in english_lines
    assert f"Proposals waiting for review: {pending_proposals}<" in html(english)
    chinese_lines = plain(chinese).splitlines()
    assert f"- 待审核的建议结对：{pending_proposals}" in chinese_lines
    assert f"- 培训总结逾期的结对：{overdue_pairs}" in chinese_lines
    assert f"- 已升级提醒的结对（逾期 14 天以上）：{escalated_pairs}" in chinese_lines
    assert f"- 本周提交的培训总结：{summaries_this_week}" in chinese_lines
    assert f"本周提交的培训总结：{summaries_this_week}<" in html(chinese)
    # The other alliance has no proposals, pairs or summaries: its digest counts none of ours.
    other_lines = plain(other).splitlines()
    assert f"OTHER 工匠联盟 本周简报（{DIGEST_DAY.isoformat()}）：" in other_lines
    for label in (
        "待审核的建议结对",
        "培训总结逾期的结对",
        "已升级提醒的结对",
        "本周提交的培训总结",
    ):
        assert any(re.fullmatch(rf"- {label}[^：]*：0", line) for line in other_lines), label

    # Once per ISO week of the local date, however often the job runs.
    week_start = datetime.combine(
        DIGEST_DAY - timedelta(days=DIGEST_DAY.weekday()), datetime.min.time(), SHANGHAI
    )
    next_week = week_start + timedelta(days=7)
    assert run(app, "digest", DIGEST_AT + timedelta(hours=1)) == {"digest": 0}
    assert run(app, "digest", week_start) == {"digest": 0}
    assert run(app, "digest", next_week - timedelta(minutes=1)) == {"digest": 0}
    # Monday 00:30 in Shanghai is still Sunday in UTC: the alliance's week has turned.
    assert run(app, "digest", next_week + timedelta(minutes=30)) == {"digest": 3}
    assert run(app, "digest", next_week + timedelta(days=2)) == {"digest": 0}
    session.expire_all()
    assert (
        session.scalar(select(User.email).where(User.active.is_(False))) == "gone@emca.example.cn"
    )
    digests = session.scalars(select(Reminder).where(Reminder.kind == "digest")).all()
    assert len(digests) == 6
    assert all(r.mentorship_id is None and r.recipient_role == "coordinator" for r in digests)
    assert {r.recipient for r in digests if r.locale == "en"} == {"li@emca.example.cn"}


def test_without_smtp_url_the_outbox_writes_eml_files_to_the_instance_folder(
    app: Flask, session: Session, world: World, tmp_path: Path
) -> None:
    started_on = date(2026, 1, 5)
    pair = new_pair(session, world.sibling_unit, world.unit, "F", started_on)
    create_user(
        session,
        email="coordinator@emca.example.cn",
        password="s3cret-password",
        alliance=world.alliance,
        locale="en",
    )
    session.commit()
    first_due = started_on + timedelta(days=CADENCE)
    # The job runs late: the first period is long overdue, and so is the second.
    today = first_due + timedelta(days=CADENCE + ESCALATE_AFTER)
    now = datetime.combine(today, datetime.min.time(), SHANGHAI) + timedelta(hours=9)
    assert run(app, "reminders", now) == {
        "upcoming": 0,
        "overdue": 2,
        "escalation": 3,
        "term_ending": 0,
        "check_in": 0,
    }

    outcome = run(app, "outbox", now, instance_path=tmp_path, smtp_url="")
    assert outcome == {"sent": 5, "retry": 0, "failed": 0, "cancelled": 0}
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 5
    messages = []
    for path in files:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    session.expire_all()
    rows = session.scalars(select(Reminder).order_by(Reminder.id)).all()
    assert all(r.status == "sent" for r in rows)
    settings = state(app).settings
    by_id = {str(m["Message-ID"]): m for m in messages}
    assert set(by_id) == {message_id(r, settings.mail_from) for r in rows}
    for row in rows:
        message = by_id[message_id(row, settings.mail_from)]
        assert str(message["To"]) == row.recipient
        assert str(message["From"]) == settings.mail_from
        assert str(message["X-Matcher-Reminder"]) == str(row.id)
        assert plain(message) and html(message)
    # The escalation counts the periods overdue at the job's time, not the wall clock's.
    overdue_periods = sum(
        1 for k in range(1, 100) if started_on + timedelta(days=k * CADENCE) < today
    )
    assert overdue_periods > 1
    unit_row = next(r for r in rows if r.kind == "escalation" and r.recipient_role == "unit")
    assert unit_row.mentorship_id == pair.id and unit_row.period_index == 1
    unit_text = plain(by_id[message_id(unit_row, settings.mail_from)])
    assert f"已逾期 {overdue_periods} 期" in unit_text
    assert first_due.isoformat() in unit_text
    coordinator_row = next(r for r in rows if r.recipient_role == "coordinator")
    english = plain(by_id[message_id(coordinator_row, settings.mail_from)])
    assert f"{overdue_periods} period(s) are overdue" in english
    # Sent means sent: a second run writes nothing new.
    assert (
        run(app, "outbox", now + timedelta(hours=1), instance_path=tmp_path, smtp_url="")["sent"]
        == 0
    )
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 5
