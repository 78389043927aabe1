"""``/mentorships``: lists and filters, the summary cycle's derived fields, ending, summaries."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import matcher.services.mentorships as mentorship_service
from jobs import registry
from jobs.scheduler import run_job
from matcher.errors import Conflict
from matcher.extensions import state
from matcher.models import Mentorship, Reminder, TrainingSummary, Unit
from matcher.services.mentorships import (
    SummaryInput,
    add_summary,
    end_mentorship,
)
from matcher.services.users import create_user
from tests import factories
from tests.factories import World

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The clock of these tests: the alliance's local date is TODAY.
NOW = datetime(2026, 3, 10, 10, 30, tzinfo=SHANGHAI)
TODAY = NOW.date()
END = {"reason_code": "other"}
_serial = itertools.count()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The service's clock reads NOW (local dates, submitted_at, ended_on)."""
    monkeypatch.setattr(mentorship_service, "utcnow", lambda: NOW.astimezone(UTC))
    yield


def pair(
    session: Session,
    craftsman_unit: Unit,
    apprentice_unit: Unit,
    started_on: date,
    *,
    every: int | None = None,
    craftsman_name: str | None = None,
) -> Mentorship:
    """A new craftsman and a new apprentice (with emails), paired from ``started_on``."""
    n = next(_serial)
    mentorship = factories.mentorship(
        session,
        craftsman_unit,
        apprentice_unit,
        started_on,
        str(n),
        every=every,
        craftsman={"name": craftsman_name} if craftsman_name else None,
    )
    session.commit()
    return mentorship


def overdue_by_dates(started_on: date, every: int, filled: int, today: date) -> int:
    """Open periods (after ``filled``) whose due date ``started_on + k * every`` is before today."""
    count, k = 0, filled + 1
    while started_on + timedelta(days=k * every) < today:
        count, k = count + 1, k + 1
    return count


def get(client: FlaskClient, world: World, url: str, who: str = "coordinator") -> Any:
    response = client.get(f"{API}{url}", headers=world.auth(who))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def post_summary(
    client: FlaskClient, world: World, mentorship_id: int, body: Any, who: str = "coordinator"
) -> Any:
    return client.post(
        f"{API}/mentorships/{mentorship_id}/summaries", json=body, headers=world.auth(who)
    )


def summary_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TrainingSummary)) or 0


def test_the_list_filters_by_status_unit_and_overdue(
    client: FlaskClient, session: Session, world: World
) -> None:
    home, sibling = world.unit, world.sibling_unit
    on_time = pair(session, sibling, home, TODAY - timedelta(days=10))
    behind = pair(session, home, sibling, TODAY - timedelta(days=95))
    due_today = pair(session, sibling, home, TODAY - timedelta(days=30))  # due, not yet overdue
    ended = pair(session, home, sibling, TODAY - timedelta(days=95))
    end_mentorship(session, mentorship=ended, today=TODAY)
    other_unit = factories.unit(session, world.other_alliance, "FRG2")
    foreign = pair(session, world.foreign_unit, other_unit, TODAY - timedelta(days=95))
    session.commit()
    home_alliance = [on_time.id, behind.id, due_today.id, ended.id]

    assert ids(get(client, world, "/mentorships")) == home_alliance
    assert ids(get(client, world, "/mentorships?status=active")) == [
        on_time.id,
        behind.id,
        due_today.id,
    ]
    assert ids(get(client, world, "/mentorships?status=ended")) == [ended.id]
    # Every home-alliance pair has one person in each unit; a unit of its own isolates one.
    lonely = factories.unit(session, world.alliance, "LONE")
    solo = pair(session, lonely, home, TODAY - timedelta(days=3))
    assert ids(get(client, world, f"/mentorships?unit_id={lonely.id}")) == [solo.id]
    assert ids(get(client, world, f"/mentorships?unit_id={sibling.id}")) == home_alliance
    overdue = get(client, world, "/mentorships?overdue=true")
    assert ids(overdue) == [behind.id]
    assert overdue[0]["overdue_periods"] == overdue_by_dates(behind.started_on, 30, 0, TODAY)
    assert ids(get(client, world, "/mentorships?overdue=true&unit_id=" + str(lonely.id))) == []
    # Scope: the other alliance sees only its own; an hr key its own unit's people's pairs.
    assert ids(get(client, world, "/mentorships", "foreign_coordinator")) == [foreign.id]
    assert ids(get(client, world, "/mentorships", "hr")) == [*home_alliance, solo.id]
    assert ids(get(client, world, "/mentorships", "sibling_hr")) == home_alliance
    assert set(ids(get(client, world, "/mentorships", "admin"))) == {
        *home_alliance,
        solo.id,
        foreign.id,
    }
    bad = client.get(f"{API}/mentorships?status=paused", headers=world.auth("coordinator"))
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("days_ago", "every", "filled"),
    [
        (95, 30, 0),  # periods due 65, 35 and 5 days ago: three overdue
        (90, 30, 0),  # the third period is due today: not overdue yet
        (91, 30, 0),
        (95, 30, 2),
        (95, 30, 4),  # ahead of the cycle
        (30, 30, 0),
        (0, 30, 0),
        (-5, 30, 0),  # starts in five days
        (50, 7, 1),
    ],
)
def test_read_derives_next_due_on_and_overdue_periods_from_the_dates(
    client: FlaskClient, session: Session, world: World, days_ago: int, every: int, filled: int
) -> None:
    started_on = TODAY - timedelta(days=days_ago)
    mentorship = pair(session, world.unit, world.sibling_unit, started_on, every=every)
    for _ in range(filled):
        add_summary(
            session,
            mentorship=mentorship,
            summary=SummaryInput("craftsman", "按期总结", 4, []),
            submitted_by="test",
        )
    session.commit()
    read = get(client, world, f"/mentorships/{mentorship.id}")
    assert read["started_on"] == started_on.isoformat()
    assert read["summary_every_days"] == every
    assert read["periods_filled"] == filled
    assert read["next_due_on"] == (started_on + timedelta(days=(filled + 1) * every)).isoformat()
    assert read["overdue_periods"] == overdue_by_dates(started_on, every, filled, TODAY)
    assert read["status"] == "active" and read["ended_on"] is None
    assert read["craftsman"]["unit_id"] == world.unit.id
    assert read["apprentice"]["unit_id"] == world.sibling_unit.id
    if (days_ago, every, filled) == (95, 30, 0):
        assert read["overdue_periods"] == 3  # the dates above, spelled out once


def test_an_hr_key_reads_only_its_own_peoples_mentorships(
    client: FlaskClient, session: Session, world: World
) -> None:
    mentorship = pair(session, world.unit, world.sibling_unit, TODAY - timedelta(days=5))
    for who in ("hr", "sibling_hr", "coordinator", "admin"):
        assert get(client, world, f"/mentorships/{mentorship.id}", who)["id"] == mentorship.id
    for who in ("foreign_hr", "foreign_coordinator"):
        response = client.get(f"{API}/mentorships/{mentorship.id}", headers=world.auth(who))
        assert response.status_code == 404
        summaries = post_summary(
            client, world, mentorship.id, {"author": "craftsman", "content": "x", "hours": 1}, who
        )
        assert summaries.status_code == 404
    assert client.get(f"{API}/mentorships/{mentorship.id}").status_code == 401


def _run_reminders(app: Flask, now: datetime) -> dict[str, Any]:
    matcher_state = state(app)
    return run_job(
        registry()["reminders"],
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=Path(app.instance_path),
        now=now,
    )


def test_ending_is_idempotent_and_stops_reminders_and_summaries(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_on = TODAY - timedelta(days=95)
    kept = pair(session, world.unit, world.sibling_unit, started_on)
    ending = pair(session, world.unit, world.sibling_unit, started_on)
    create_user(
        session,
        email="coordinator@emca.example.cn",
        password="s3cret-password",
        alliance=world.alliance,
    )
    session.commit()
    url = f"{API}/mentorships/{ending.id}/end"

    ended = client.post(url, headers=world.auth("hr"), json={"reason_code": "left_unit"})
    assert ended.status_code == 200
    body = ended.get_json()
    assert body["status"] == "ended" and body["ended_on"] == TODAY.isoformat()
    assert body["next_due_on"] is None and body["overdue_periods"] == 0
    # Again, a day later: nothing changes, the first end date stays.
    monkeypatch.setattr(
        mentorship_service, "utcnow", lambda: (NOW + timedelta(days=1)).astimezone(UTC)
    )
    again = client.post(url, headers=world.auth("coordinator"), json={"reason_code": "other"})
    assert again.status_code == 200 and again.get_json() == body
    foreign = client.post(url, headers=world.auth("foreign_coordinator"), json=END)
    assert foreign.status_code == 404

    # The job queues the kept pair's overdue and escalation emails, none for the ended pair.
    queued = _run_reminders(app, NOW)
    assert queued["overdue"] == 2 and queued["escalation"] == 3  # coordinator + both units
    session.expire_all()
    by_pair = dict(
        session.execute(
            select(Reminder.mentorship_id, func.count()).group_by(Reminder.mentorship_id)
        ).all()
    )
    assert by_pair == {kept.id: 5}
    assert _run_reminders(app, NOW + timedelta(days=40))["overdue"] == 0

    refused = post_summary(
        client, world, ending.id, {"author": "apprentice", "content": "晚了", "hours": 2}
    )
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert summary_count(session) == 0
    listed = get(client, world, "/mentorships?overdue=true")
    assert ids(listed) == [kept.id]


def test_summaries_fill_periods_in_order_and_are_listed(
    client: FlaskClient, session: Session, world: World
) -> None:
    started_on = TODAY - timedelta(days=95)
    mentorship = pair(session, world.unit, world.sibling_unit, started_on)
    handed_in = [
        {
            "author": "apprentice",
            "content": "第一期：学习氩弧焊打底",
            "hours": 6,
            "skills": ["TIG"],
        },
        {"author": "craftsman", "content": "第二期：指导仰焊", "hours": 4.5, "skills": [" 钎焊 "]},
        {"author": "apprentice", "content": "第三期：独立完成", "hours": 8, "skills": ["仰焊"]},
    ]
    for index, body in enumerate(handed_in, start=1):
        response = post_summary(client, world, mentorship.id, body)
        assert response.status_code == 201, response.get_data(as_text=True)
        created = response.get_json()
        assert created["period_index"] == index
        assert (created["author"], created["content"], created["hours"]) == (
            body["author"],
            body["content"],
            body["hours"],
        )
        read = get(client, world, f"/mentorships/{mentorship.id}")
        assert read["periods_filled"] == index
        assert read["next_due_on"] == (started_on + timedelta(days=(index + 1) * 30)).isoformat()
        assert read["overdue_periods"] == overdue_by_dates(started_on, 30, index, TODAY)
        assert datetime.fromisoformat(read["last_summary_at"]) == NOW

    response = client.get(
        f"{API}/mentorships/{mentorship.id}/summaries", headers=world.auth("sibling_hr")
    )
    assert response.status_code == 200
    listed = response.get_json()
    assert [s["period_index"] for s in listed] == [1, 2, 3]
    assert [s["content"] for s in listed] == [b["content"] for b in handed_in]
    # Skill names are normalised like tags: aliases resolve, unknown names are kept as given.
    assert [s["skills"] for s in listed] == [["氩弧焊"], ["钎焊"], ["仰焊"]]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    page = client.get(
        f"{API}/mentorships/{mentorship.id}/summaries?page=2&page_size=2",
        headers=world.auth("coordinator"),
    )
    assert [s["period_index"] for s in page.get_json()] == [3]


VALID = {"author": "craftsman", "content": "讲解了嵌线工艺", "hours": 3}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "hours": 0}, "hours"),
        ({**VALID, "hours": -2.5}, "hours"),
        ({**VALID, "hours": "3"}, "hours"),
        ({**VALID, "hours": 1000.5}, "hours"),
        ({**VALID, "mood": "good"}, "mood"),
        ({**VALID, "period_index": 2}, "period_index"),
        ({**VALID, "author": "coordinator"}, "author"),
        ({**VALID, "content": "   \n\t "}, "content"),
        ({**VALID, "content": ""}, "content"),
        ({"author": "craftsman", "hours": 3}, "content"),
        ({**VALID, "skills": "TIG"}, "skills"),
    ],
)
def test_an_invalid_summary_is_a_422_with_field_messages_and_nothing_is_written(
    client: FlaskClient, session: Session, world: World, body: dict[str, Any], field: str
) -> None:
    mentorship = pair(session, world.unit, world.sibling_unit, TODAY - timedelta(days=40))
    response = post_summary(client, world, mentorship.id, body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert set(problem["errors"]) == {field}
    messages = problem["errors"][field]
    assert isinstance(messages, list) and all(isinstance(m, str) and m for m in messages)
    assert summary_count(session) == 0
    assert get(client, world, f"/mentorships/{mentorship.id}")["periods_filled"] == 0
    assert post_summary(client, world, mentorship.id, VALID).status_code == 201  # control


def test_an_hr_key_hands_in_only_for_its_own_units_person(
    client: FlaskClient, session: Session, world: World
) -> None:
    # The craftsman is of the hr key's unit, the apprentice of the sibling unit.
    mentorship = pair(session, world.unit, world.sibling_unit, TODAY - timedelta(days=40))
    body = {"content": "本期总结", "hours": 2}
    forbidden = post_summary(client, world, mentorship.id, {**body, "author": "apprentice"}, "hr")
    assert forbidden.status_code == 403
    assert forbidden.mimetype == "application/problem+json"
    assert summary_count(session) == 0
    own = post_summary(client, world, mentorship.id, {**body, "author": "craftsman"}, "hr")
    assert own.status_code == 201 and own.get_json()["period_index"] == 1
    theirs = post_summary(
        client, world, mentorship.id, {**body, "author": "apprentice"}, "sibling_hr"
    )
    assert theirs.status_code == 201 and theirs.get_json()["period_index"] == 2
    refused = post_summary(
        client, world, mentorship.id, {**body, "author": "craftsman"}, "sibling_hr"
    )
    assert refused.status_code == 403
    assert summary_count(session) == 2


def test_chinese_text_and_emoji_round_trip_exactly(
    client: FlaskClient, session: Session, world: World
) -> None:
    name = "欧阳🔧师傅 “老周”"
    mentorship = pair(
        session, world.unit, world.sibling_unit, TODAY - timedelta(days=40), craftsman_name=name
    )
    content = (
        "本期学习「定子绕组嵌线」👨‍🏭🔥，合格率 100%。\n"
        "徒弟说：\"师傅讲得好\" 'quotes' \\ 反斜杠\r\n🇨🇳 é 𠀀"
    )
    created = post_summary(
        client, world, mentorship.id, {"author": "apprentice", "content": content, "hours": 1.25}
    )
    assert created.status_code == 201
    assert created.get_json()["content"] == content
    (listed,) = get(client, world, f"/mentorships/{mentorship.id}/summaries")
    assert listed["content"] == content
    assert get(client, world, f"/mentorships/{mentorship.id}")["craftsman"]["name"] == name
    session.expire_all()
    assert session.scalars(select(TrainingSummary.content)).one() == content


def test_a_summary_racing_an_end_is_refused_and_the_ended_pair_stays_ended(
    client: FlaskClient, session: Session, world: World
) -> None:
    mentorship = pair(session, world.unit, world.sibling_unit, TODAY - timedelta(days=40))
    # Another request ends the pair while this session still holds it as active.
    assert (
        client.post(
            f"{API}/mentorships/{mentorship.id}/end", headers=world.auth("coordinator"), json=END
        ).get_json()["status"]
        == "ended"
    )
    assert mentorship.status == "active"  # stale
    with pytest.raises(Conflict):
        add_summary(
            session,
            mentorship=mentorship,
            summary=SummaryInput("craftsman", "迟到的总结", 2, []),
            submitted_by="test",
        )
    session.rollback()
    assert summary_count(session) == 0
    read = get(client, world, f"/mentorships/{mentorship.id}")
    assert (read["status"], read["next_due_on"], read["periods_filled"]) == ("ended", None, 0)


@pytest.mark.parametrize(
    "control", ["\t", "\x07", "\x1b", "\x85", "\u2028", "\u2029", "\r", "\x0c"]
)
def test_summary_content_keeps_line_breaks_and_refuses_other_controls(
    client: FlaskClient, session: Session, world: World, control: str
) -> None:
    mentorship = pair(session, world.unit, world.sibling_unit, TODAY - timedelta(days=40))
    bad = {"author": "apprentice", "content": f"第一行{control}第二行", "hours": 1.0}
    response = post_summary(client, world, mentorship.id, bad)
    assert response.status_code == 422
    assert "control characters" in " ".join(response.get_json()["errors"]["content"])
    good = {"author": "apprentice", "content": "第一行\n第二行\r\n第三行", "hours": 1.0}
    assert post_summary(client, world, mentorship.id, good).status_code == 201
