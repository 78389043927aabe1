"""Chat-group notifications (webhooks.md, last section): a local receiver per platform checks
the request's shape and, for 钉钉 and 飞书, the signature as each platform documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.models import ChannelMessage
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.jobs.test_webhooks import deliver
from tests.receivers import Received, Receiver

API = "/api/v1"
SECRET = "SEC0123456789abcdef"  # a platform signing secret, as 钉钉 and 飞书 issue them
NOW = datetime.now(UTC).replace(microsecond=0)


def run(app: Flask, name: str, now: datetime = NOW) -> dict[str, Any]:
    from jobs import registry
    from jobs.scheduler import run_job
    from matcher.extensions import state

    matcher_state = state(app)
    return run_job(
        registry()[name],
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=Path(app.instance_path),
        now=now,
    )


def channel(
    client: FlaskClient, world: World, who: str, body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    response = client.post(f"{API}/notification-channels", json=body, headers=world.auth(who))
    assert response.status_code == status, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def escalated_pair(session: Session, world: World, tag: str = "E") -> None:
    """A pair whose first summary is 20 days overdue (past the 14-day escalation)."""
    started = (NOW + timedelta(hours=8)).date() - timedelta(days=50)
    factories.mentorship(session, world.sibling_unit, world.unit, started, tag)
    session.commit()


def dingtalk_signature_ok(request: Received) -> bool:
    """钉钉's check: sign == urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))."""
    query = parse_qs(urlsplit(request.path).query)
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    fresh = abs(int(timestamp) / 1000 - datetime.now(UTC).timestamp()) < 3600
    # parse_qs has undone the URL encoding once, as the platform's server does.
    return fresh and hmac.compare_digest(query["sign"][0], expected)


def feishu_signature_ok(body: dict[str, Any]) -> bool:
    """飞书's check: sign == base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=""))."""
    key = f"{body['timestamp']}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    fresh = abs(int(body["timestamp"]) - datetime.now(UTC).timestamp()) < 3600
    return fresh and hmac.compare_digest(body["sign"], expected)


def markdown_of(request: Received) -> tuple[str, str]:
    """(platform, markdown) of a request, after checking its platform's shape."""
    body = json.loads(request.body)
    assert request.headers["Content-Type"].startswith("application/json")
    platform = urlsplit(request.path).path.strip("/")
    if platform == "wecom":
        assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
        return platform, str(body["markdown"]["content"])
    if platform == "dingtalk":
        assert body["msgtype"] == "markdown" and body["markdown"]["title"]
        assert parse_qs(urlsplit(request.path).query)["access_token"] == ["tok"]
        assert dingtalk_signature_ok(request), request.path
        return platform, str(body["markdown"]["text"])
    assert platform == "feishu"
    assert body["msg_type"] == "interactive"
    assert feishu_signature_ok(body), body
    assert body["card"]["header"]["title"]["content"]
    (element,) = body["card"]["elements"]
    assert element["tag"] == "markdown"
    return platform, str(element["content"])


def three_channels(
    client: FlaskClient, world: World, receiver: Receiver, events: list[str]
) -> None:
    channel(
        client,
        world,
        "coordinator",
        {"kind": "wecom", "url": receiver.url("/wecom?key=k"), "events": events},
    )
    channel(
        client,
        world,
        "coordinator",
        {
            "kind": "dingtalk",
            "url": receiver.url("/dingtalk?access_token=tok"),
            "secret": SECRET,
            "events": events,
        },
    )
    channel(
        client,
        world,
        "coordinator",
        {
            "kind": "feishu",
            "url": receiver.url("/feishu"),
            "secret": SECRET,
            "events": events,
            "locale": "en",
        },
    )


@pytest.mark.usefixtures("allow_private")
def test_a_digest_and_an_escalation_reach_each_platform_signed_in_the_groups_language(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    three_channels(client, world, receiver, ["digest", "escalation"])
    escalated_pair(session, world)
    assert run(app, "reminders")["chat_notices"] == 3
    assert run(app, "digest")["chat_digests"] == 3
    outcome = deliver(app, NOW)
    assert (outcome["chat_sent"], outcome["chat_retry"], outcome["chat_failed"]) == (6, 0, 0)
    texts = [markdown_of(request) for request in receiver.received()]
    assert Counter(platform for platform, _ in texts) == {"wecom": 2, "dingtalk": 2, "feishu": 2}
    for platform, text in texts:
        assert text.startswith("**")  # the title in bold, the email's lines after it
        if "师傅E" in text:  # the escalation: both people, their units, the overview link
            assert "学徒E" in text and "XTDJ 电机有限公司" in text and "http://testserver/" in text
            expected = "long overdue" if platform == "feishu" else "长期未提交培训总结"
        else:  # the digest
            expected = "Weekly digest" if platform == "feishu" else "本周"
        assert expected in text, (platform, text)
    # Once only: the jobs again change nothing.
    assert "chat_notices" not in run(app, "reminders")  # none queued
    assert "chat_digests" not in run(app, "digest")
    assert deliver(app, NOW + timedelta(hours=1))["chat_sent"] == 0
    assert len(receiver.received()) == 6


@pytest.mark.usefixtures("allow_private")
def test_a_units_channel_hears_its_own_units_events_only(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    channel(
        client,
        world,
        "hr",
        {
            "kind": "wecom",
            "url": receiver.url("/wecom"),
            "events": ["person.deactivated", "escalation"],
        },
    )
    for unit in (world.unit, world.sibling_unit):
        apprentice = world.apprentice_ids[unit.code]
        client.delete(f"{API}/apprentices/{apprentice}", headers=world.auth("admin"))
    assert deliver(app)["chat_sent"] == 1
    ((_, text),) = [markdown_of(request) for request in receiver.received()]
    assert "学徒A-HZDJ（HZDJ 电机有限公司）已停用" in text


@pytest.mark.usefixtures("allow_private")
def test_a_platform_refusal_in_a_200_answer_is_retried_then_sent(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    channel(
        client,
        world,
        "coordinator",
        {
            "kind": "dingtalk",
            "url": receiver.url("/dingtalk?access_token=tok"),
            "secret": SECRET,
            "events": ["escalation"],
        },
    )
    escalated_pair(session, world)
    run(app, "reminders")
    receiver.replies = [b'{"errcode": 310000, "errmsg": "sign not match"}']
    assert deliver(app, NOW)["chat_retry"] == 1
    session.expire_all()
    error = session.scalar(select(ChannelMessage.last_error))
    assert error is not None and "310000" in error
    assert deliver(app, NOW + timedelta(minutes=1))["chat_sent"] == 1
    first, second = receiver.received()
    assert first.body == second.body  # the same message, signed afresh


def test_robots_live_on_their_platforms_hosts_unless_private_targets_are_allowed(
    client: FlaskClient, world: World
) -> None:
    ok = {
        "kind": "wecom",
        "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x",
        "events": ["digest"],
    }
    made = channel(client, world, "coordinator", ok)
    assert made["signed"] is False and "secret" not in made and made["unit_id"] is None
    for body in (
        {**ok, "url": "http://127.0.0.1:9000/wecom"},
        {**ok, "url": "https://169.254.169.254/latest"},
        {**ok, "kind": "dingtalk"},  # a wecom host for a dingtalk robot
        {**ok, "url": "https://evil.example.com/cgi-bin/webhook/send"},
    ):
        refused = channel(client, world, "coordinator", body, status=422)
        assert "url" in refused["errors"], body
    # The digest is the alliance's; an hr key's channel is its unit's.
    refused = channel(client, world, "hr", ok, status=422)
    assert "events" in refused["errors"]
    unit_channel = channel(client, world, "hr", {**ok, "events": ["escalation"]})
    assert unit_channel["unit_id"] == world.unit.id
    # An admin names the alliance.
    assert "alliance_id" in channel(client, world, "admin", ok, status=422)["errors"]
    made = channel(client, world, "admin", {**ok, "alliance_id": world.other_alliance.id})
    assert made["alliance_id"] == world.other_alliance.id
    # Another alliance's, or another unit's, does not exist for the key.
    channel(client, world, "coordinator", {**ok, "alliance_id": world.other_alliance.id}, 404)
    channel(
        client, world, "hr", {**ok, "events": ["escalation"], "unit_id": world.sibling_unit.id}, 404
    )


def _job(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MATCHER_DATABASE_URL": database_url,
        "MATCHER_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "MATCHER_BASE_URL": "http://testserver",
        "MATCHER_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    argv = [str(Path(sys.executable).parent / "matcher"), "jobs", "run", *args]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.usefixtures("allow_private")
def test_two_jobs_run_at_once_queue_and_send_each_message_once(
    client: FlaskClient, session: Session, world: World, receiver: Receiver, database_url: str
) -> None:
    three_channels(client, world, receiver, ["digest", "escalation"])
    for index in range(8):
        escalated_pair(session, world, f"E{index}")
    create_user(
        session, email="c@emca.example.cn", password="s3cret-password", alliance=world.alliance
    )
    session.commit()
    now = (NOW + timedelta(seconds=1)).isoformat()
    for job in ("reminders", "digest", "webhooks"):
        both = [_job(database_url, job, "--now", now) for _ in range(2)]
        for process in both:
            _, errors = process.communicate(timeout=180)
            assert process.returncode == 0, errors
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ChannelMessage)) == 3 * (8 + 1)
    received = [markdown_of(request) for request in receiver.received()]
    assert len(received) == 27 and len(set(received)) == 27  # each message once
    pairs = Counter(
        next(f"E{i}" for i in range(8) if f"师傅E{i}" in text)
        for _, text in received
        if "师傅E" in text
    )
    assert pairs == dict.fromkeys((f"E{i}" for i in range(8)), 3)


@pytest.mark.usefixtures("allow_private")
def test_receivers_deleted_before_the_fan_out_hear_nothing_of_the_change(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    """webhooks.md: an endpoint or a chat group removed after a change, before the job fans the
    event out, gets no delivery of it; one still registered does."""
    hook = client.post(
        f"{API}/webhooks",
        json={"url": receiver.url("/hook"), "events": ["person.deactivated"]},
        headers=world.auth("hr"),
    ).get_json()
    kept = channel(
        client,
        world,
        "hr",
        {"kind": "wecom", "url": receiver.url("/kept"), "events": ["person.deactivated"]},
    )
    gone = channel(
        client,
        world,
        "hr",
        {"kind": "wecom", "url": receiver.url("/gone"), "events": ["person.deactivated"]},
    )
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    for path in (f"/webhooks/{hook['id']}", f"/notification-channels/{gone['id']}"):
        assert client.delete(API + path, headers=world.auth("hr")).status_code == 204
    outcome = deliver(app)
    assert (outcome["delivered"], outcome["chat_sent"]) == (0, 1)
    assert [request.path for request in receiver.received()] == ["/kept"]
    assert session.scalar(select(func.count()).select_from(ChannelMessage)) == 1
    assert kept["id"] != gone["id"]
