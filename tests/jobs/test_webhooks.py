"""Outbound webhooks (webhooks.md) end to end: changes made over the API, the ``webhooks`` job
delivering to a real HTTP receiver on loopback, signatures checked with the Standard Webhooks
reference library (``standardwebhooks``)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook, WebhookVerificationError

from jobs import registry
from jobs.scheduler import run_job
from matcher.extensions import state
from matcher.models import WebhookDelivery, WebhookEvent
from matcher.services.access import Principal
from matcher.services.webhooks import LEASE, create_endpoint, fan_out
from tests.factories import World
from tests.receivers import Received, Receiver

API = "/api/v1"


def deliver(app: Flask, now: datetime | None = None, **settings: Any) -> dict[str, Any]:
    """Run the ``webhooks`` job once (receivers on loopback allowed unless said otherwise)."""
    matcher_state = state(app)
    return run_job(
        registry()["webhooks"],
        session_factory=matcher_state.session_factory,
        settings=dataclasses.replace(
            matcher_state.settings, **{"webhook_allow_private": True, **settings}
        ),
        instance_path=Path(app.instance_path),
        now=now or datetime.now(UTC),
    )


def webhook_counts(outcome: dict[str, Any]) -> dict[str, int]:
    """The job's counts of webhook deliveries (it counts chat messages too)."""
    return {name: outcome[name] for name in ("delivered", "retry", "failed")}


def register(
    client: FlaskClient, world: World, who: str, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = client.post(
        f"{API}/webhooks", json={"url": url, "events": events or ["*"]}, headers=world.auth(who)
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def verified(request: Received, secret: str) -> dict[str, Any]:
    """The body, once the reference library accepted its signature."""
    body: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return body


def commit_a_run(client: FlaskClient, world: World) -> int:
    """A run over the home alliance, every proposal approved, committed; the run's id."""
    coordinator = world.auth("coordinator")
    run = client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs", json={"params": {}}, headers=coordinator
    ).get_json()
    client.post(
        f"{API}/match-runs/{run['id']}/proposals/bulk",
        json={"min_score": 0, "status": "approved"},
        headers=coordinator,
    )
    committed = client.post(f"{API}/match-runs/{run['id']}/commit", headers=coordinator)
    assert committed.status_code == 200, committed.get_data(as_text=True)
    return int(run["id"])


@pytest.mark.usefixtures("allow_private")
def test_each_event_type_arrives_once_per_change_with_a_valid_signature(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    endpoint = register(client, world, "coordinator", receiver.url())
    assert endpoint["secret"].startswith("whsec_")
    run_id = commit_a_run(client, world)
    mentorships = client.get(f"{API}/mentorships", headers=world.auth("coordinator")).get_json()
    assert len(mentorships) == 2
    first, second = mentorships
    summary = {"author": "apprentice", "content": "学习了氩弧焊", "hours": 4}
    posted = client.post(
        f"{API}/mentorships/{first['id']}/summaries", json=summary, headers=world.auth("admin")
    )
    assert posted.status_code == 201
    ended = client.post(
        f"{API}/mentorships/{first['id']}/end",
        json={"reason_code": "left_unit"},
        headers=world.auth("coordinator"),
    )
    assert ended.status_code == 200, ended.get_data(as_text=True)
    apprentice = world.apprentice_ids[world.unit.code]
    assert client.delete(f"{API}/apprentices/{apprentice}", headers=world.auth("hr")).status_code
    # The other pair falls overdue: the hourly reminders scan writes the event (once).
    overdue_at = datetime.combine(date.fromisoformat(second["next_due_on"]), datetime.min.time())
    overdue_at = overdue_at.replace(tzinfo=UTC) + timedelta(days=2)
    matcher_state = state(app)
    for _ in range(2):
        run_job(
            registry()["reminders"],
            session_factory=matcher_state.session_factory,
            settings=matcher_state.settings,
            instance_path=Path(app.instance_path),
            now=overdue_at,
        )

    # Then it passes its completion assessment: completed, with its certificate.
    assessment = {
        "theory": 80,
        "practice": 90,
        "skills": [{"name": "氩弧焊", "level": 3}],
        "evaluator": "联盟考核组",
        "result": "pass",
    }
    passed = client.post(
        f"{API}/mentorships/{second['id']}/assessment",
        json=assessment,
        headers=world.auth("coordinator"),
    )
    assert passed.status_code == 201, passed.get_data(as_text=True)

    assert deliver(app, overdue_at)["delivered"] == 9
    assert webhook_counts(deliver(app, overdue_at + timedelta(days=1))) == {
        "delivered": 0,
        "retry": 0,
        "failed": 0,
    }
    bodies = [verified(request, endpoint["secret"]) for request in receiver.received()]
    assert Counter(body["type"] for body in bodies) == {
        "match_run.proposed": 1,
        "match_run.committed": 1,
        "mentorship.created": 2,
        "summary.submitted": 1,
        "mentorship.ended": 1,
        "person.deactivated": 1,
        "summary.overdue": 1,
        "mentorship.completed": 1,
    }
    ids = [request.headers["webhook-id"] for request in receiver.received()]
    assert len(set(ids)) == len(ids) and all(i.startswith("msg_") for i in ids)
    by_type = {body["type"]: body for body in bodies}
    assert by_type["match_run.committed"]["data"]["match_run_id"] == run_id
    created = by_type["mentorship.created"]["data"]
    assert {created["craftsman"]["unit_code"], created["apprentice"]["unit_code"]} == {
        "HZDJ",
        "XTDJ",
    }
    submitted = by_type["summary.submitted"]["data"]
    assert submitted["mentorship_id"] == first["id"] and submitted["period_index"] == 1
    # The pair as the hand-in left it: period 1 filled, the next one due a cycle later.
    assert submitted["periods_filled"] == 1
    next_due = date.fromisoformat(first["next_due_on"]) + timedelta(
        days=first["summary_every_days"]
    )
    assert submitted["next_due_on"] == next_due.isoformat()
    assert "content" not in submitted  # no free text beyond names
    assert by_type["person.deactivated"]["data"]["external_id"] == "A-HZDJ"
    assert by_type["summary.overdue"]["data"]["mentorship_id"] == second["id"]
    assert by_type["mentorship.ended"]["data"]["status"] == "ended"
    completed = by_type["mentorship.completed"]["data"]
    assert completed["mentorship_id"] == second["id"] and completed["status"] == "completed"
    assert completed["certificate_code"] == passed.get_json()["certificate"]["code"]
    for body in bodies:
        assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    # A tampered body fails the reference check: the signature covers it.
    request = receiver.received()[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body + b" ", request.headers)


@pytest.mark.usefixtures("allow_private")
def test_an_hr_endpoint_never_receives_another_units_events(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    secrets = {
        who: register(client, world, who, receiver.url(f"/{who}"))["secret"]
        for who in ("hr", "sibling_hr", "foreign_hr", "coordinator", "foreign_coordinator")
    }
    for unit in (world.unit, world.sibling_unit, world.foreign_unit):
        person = world.craftsman_ids[unit.code]
        assert client.delete(f"{API}/craftsmen/{person}", headers=world.auth("admin")).status_code
    commit_a_run(client, world)  # no pairs are left to propose: a run event only
    deliver(app)
    heard: dict[str, list[str]] = {}
    for request in receiver.received():
        who = request.path.strip("/")
        body = verified(request, secrets[who])
        data = body["data"]
        heard.setdefault(who, []).append(f"{body['type']} {data.get('unit_code', '-')}")
    assert sorted(heard["hr"]) == ["person.deactivated HZDJ"]
    assert sorted(heard["sibling_hr"]) == ["person.deactivated XTDJ"]
    assert sorted(heard["foreign_hr"]) == ["person.deactivated FRGN"]
    assert sorted(heard["coordinator"]) == [
        "match_run.committed -",
        "match_run.proposed -",
        "person.deactivated HZDJ",
        "person.deactivated XTDJ",
    ]
    assert sorted(heard["foreign_coordinator"]) == ["person.deactivated FRGN"]


@pytest.mark.usefixtures("allow_private")
def test_a_receiver_answering_500_then_200_gets_it_on_retry_with_the_same_id(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    endpoint = register(client, world, "hr", receiver.url(), ["person.deactivated"])
    receiver.answers = [(500, {})]
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    now = datetime.now(UTC)
    assert webhook_counts(deliver(app, now)) == {"delivered": 0, "retry": 1, "failed": 0}
    listed = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=world.auth("hr"))
    (row,) = listed.get_json()
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("pending", 1, 500)
    # The first retry comes about 5 s later (±20 % jitter), not before.
    next_attempt = datetime.fromisoformat(row["next_attempt_at"])
    assert now + timedelta(seconds=4) <= next_attempt <= now + timedelta(seconds=6)
    assert deliver(app, now + timedelta(seconds=3))["retry"] == 0
    assert deliver(app, now + timedelta(seconds=7))["delivered"] == 1
    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row["webhook_id"]
    assert first.body == second.body
    verified(second, endpoint["secret"])
    listed = client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=world.auth("hr"))
    (row,) = listed.get_json()
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 2, 200)


@pytest.mark.usefixtures("allow_private")
def test_retry_after_is_honoured_and_retries_stop_after_three_days(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    endpoint = register(client, world, "hr", receiver.url(), ["person.deactivated"])
    receiver.answers = [(503, {"Retry-After": "7200"})] + [(500, {})] * 100
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    now = datetime.now(UTC)
    deliver(app, now)
    assert deliver(app, now + timedelta(hours=1))["retry"] == 0  # asked to wait 2 hours
    assert deliver(app, now + timedelta(hours=2, seconds=1))["retry"] == 1
    # Then the back-off schedule: failures until 3 days have passed, then failed for good.
    moment = now + timedelta(hours=2, seconds=1)
    outcomes: Counter[str] = Counter()
    while moment < now + timedelta(days=4):
        moment += timedelta(hours=1)
        outcomes.update({k: v for k, v in deliver(app, moment).items() if v})
    assert outcomes["failed"] == 1
    assert 4 <= outcomes["retry"] <= 10
    (row,) = client.get(
        f"{API}/webhooks/{endpoint['id']}/deliveries", headers=world.auth("hr")
    ).get_json()
    assert row["status"] == "failed" and row["last_status_code"] == 500
    # Failing for 3 days disabled the endpoint.
    got = client.get(f"{API}/webhooks/{endpoint['id']}", headers=world.auth("hr")).get_json()
    assert got["enabled"] is False and "3 days" in got["disabled_reason"]


@pytest.mark.usefixtures("allow_private")
def test_410_disables_the_endpoint_and_a_retry_after_enabling_sends_it_again(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    endpoint = register(client, world, "coordinator", receiver.url(), ["person.deactivated"])
    url = f"{API}/webhooks/{endpoint['id']}"
    auth = world.auth("coordinator")
    receiver.answers = [(410, {})]
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    assert webhook_counts(deliver(app)) == {"delivered": 0, "retry": 0, "failed": 1}
    got = client.get(url, headers=auth).get_json()
    assert got["enabled"] is False and "410" in got["disabled_reason"]
    # Disabled: further changes queue nothing for it.
    client.delete(f"{API}/apprentices/{world.apprentice_ids['XTDJ']}", headers=world.auth("admin"))
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    (failed,) = client.get(f"{url}/deliveries?status=failed", headers=auth).get_json()
    retry = f"{url}/deliveries/{failed['id']}/retry"
    assert client.post(retry, headers=auth).status_code == 409  # enable it first
    assert client.patch(url, json={"enabled": True}, headers=auth).get_json()["enabled"] is True
    retried = client.post(retry, headers=auth)
    assert retried.status_code == 202 and retried.get_json()["status"] == "pending"
    assert deliver(app)["delivered"] == 1
    gone, again = receiver.received()
    assert gone.headers["webhook-id"] == again.headers["webhook-id"] == failed["webhook_id"]


@pytest.mark.usefixtures("allow_private")
def test_a_rotated_secret_signs_beside_the_old_one_for_24_hours(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    endpoint = register(client, world, "hr", receiver.url(), ["person.deactivated"])
    rotated = client.post(
        f"{API}/webhooks/{endpoint['id']}/rotate-secret", headers=world.auth("hr")
    ).get_json()
    assert rotated["secret"] != endpoint["secret"]
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    client.delete(f"{API}/craftsmen/{world.craftsman_ids['HZDJ']}", headers=world.auth("hr"))
    now = datetime.now(UTC)
    with state(app).session_factory() as session:  # the second one is due a day later
        assert fan_out(session) == 2
        deliveries = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        deliveries[1].next_attempt_at = now + timedelta(hours=25)
        session.commit()
    deliver(app, now)
    deliver(app, now + timedelta(hours=25))
    during, after = receiver.received()
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(during, endpoint["secret"])
    verified(during, rotated["secret"])
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(after, rotated["secret"])
    with pytest.raises(WebhookVerificationError):
        verified(after, endpoint["secret"])


def test_the_guard_refuses_private_targets_without_the_override(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    auth = world.auth("coordinator")
    for url in (
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.1.2.3/",
        "http://localhost:9000/",
        "ftp://example.com/",
        "http://user:pw@example.com/",
    ):
        response = client.post(f"{API}/webhooks", json={"url": url, "events": ["*"]}, headers=auth)
        assert response.status_code == 422, url
        assert "url" in response.get_json()["errors"], url
    # Registered while allowed, refused at delivery once not: checked on every delivery, and
    # after DNS resolution (the machine's own name is a name, not a literal; it resolves to a
    # loopback or private address).
    own_name = socket.gethostname()
    for url in (receiver.url(), f"http://{own_name}:{receiver.port}/hook"):
        create_endpoint(
            session,
            owner=Principal(role="admin"),
            url=url,
            events=["*"],
            description=None,
            allow_private=True,
            https_only=False,
        )
    session.commit()
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    assert deliver(app, webhook_allow_private=False)["retry"] == 2
    assert receiver.received() == []
    errors = session.scalars(select(WebhookDelivery.last_error)).all()
    assert all("address guard" in (error or "") for error in errors), errors
    assert any(f"{own_name} resolves to a private" in (error or "") for error in errors), errors


def test_production_takes_https_only() -> None:
    from matcher.webhook_http import url_problem

    assert url_problem("http://hr.example.cn/hook", allow_private=False, https_only=True)
    assert url_problem("https://hr.example.cn/hook", allow_private=False, https_only=True) is None
    assert url_problem("http://hr.example.cn/hook", allow_private=False, https_only=False) is None
    for private in ("https://192.168.1.10/", "https://100.64.0.1/", "https://[fe80::1]/"):
        assert url_problem(private, allow_private=False, https_only=True), private
        assert url_problem(private, allow_private=True, https_only=True) is None


@pytest.mark.usefixtures("allow_private")
def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt(
    app: Flask, client: FlaskClient, world: World, receiver: Receiver
) -> None:
    register(client, world, "hr", receiver.url(), ["person.deactivated"])
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    receiver.hold.set()
    assert webhook_counts(deliver(app, webhook_timeout_seconds=1)) == {
        "delivered": 0,
        "retry": 1,
        "failed": 0,
    }
    assert receiver.arrived.is_set()
    with state(app).session_factory() as session:
        error = session.scalar(select(WebhookDelivery.last_error))
    assert error is not None and "within 1 s" in error


@pytest.mark.usefixtures("allow_private")
def test_the_scheduler_killed_mid_delivery_delivers_after_restart_with_the_same_id(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: World,
    receiver: Receiver,
    database_url: str,
) -> None:
    endpoint = register(client, world, "hr", receiver.url(), ["person.deactivated"])
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    receiver.hold.set()
    env = {
        **os.environ,
        "MATCHER_DATABASE_URL": database_url,
        "MATCHER_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "MATCHER_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    scheduler = subprocess.Popen(
        [str(Path(sys.executable).parent / "matcher"), "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.arrived.wait(timeout=90), "the scheduler never called the receiver"
    finally:
        scheduler.send_signal(signal.SIGKILL)
        scheduler.communicate(timeout=30)
    receiver.hold.clear()
    receiver.release.set()
    (cut_off,) = receiver.held
    session.expire_all()
    assert session.scalar(select(WebhookDelivery.status)) == "pending"
    # The dead sender's lease runs out; the next run delivers it, with the same webhook-id.
    assert deliver(app, datetime.now(UTC) + LEASE + timedelta(seconds=1))["delivered"] == 1
    (delivered,) = receiver.received()
    assert delivered.headers["webhook-id"] == cut_off.headers["webhook-id"]
    verified(delivered, endpoint["secret"])
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


@pytest.mark.usefixtures("allow_private")
def test_no_endpoint_no_event_and_an_endpoint_for_other_events_hears_nothing(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    client.delete(f"{API}/apprentices/{world.apprentice_ids['HZDJ']}", headers=world.auth("hr"))
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    register(client, world, "hr", receiver.url(), ["summary.submitted"])
    client.delete(f"{API}/craftsmen/{world.craftsman_ids['HZDJ']}", headers=world.auth("hr"))
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert deliver(app)["delivered"] == 0
