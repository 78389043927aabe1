"""Emails (and a unit's webhooks) name the pair's other person through the cross-unit allowlist,
and nobody who has not consented to be shown to another unit (privacy.md): real emails over the
loopback SMTP server and real webhook requests, scanned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.jobs.conftest import Sink
from tests.jobs.test_reminders import STARTED, at_local, run
from tests.jobs.test_webhooks import deliver, register, verified
from tests.receivers import Receiver

DUE = STARTED + timedelta(days=30)
CONSENT = {"given_at": datetime(2026, 1, 5, tzinfo=UTC), "version": "1"}


def _everything(message: EmailMessage) -> str:
    """What a reader of the email sees: its subject and both bodies."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return f"{message['Subject']}\n{text}\n{html}"


def test_emails_show_no_one_without_consent_to_another_unit(
    app: Flask, session: Session, world: World, smtp_sink: Sink
) -> None:
    world.alliance.consent_required = True
    # The craftsman (sibling unit) consented, the apprentice (home unit) did not.
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        STARTED,
        "E1",
        craftsman={"cross_unit_consent": CONSENT, "name": "Master Zhao", "locale": "en"},
        apprentice={"name": "王不同意"},
    )
    create_user(
        session,
        email="coordinator@emca.example.cn",
        password="s3cret-password",
        alliance=world.alliance,
    )
    session.commit()
    craftsman, apprentice = pair.craftsman, pair.apprentice
    # Before the due date, overdue, escalated (to the coordinators and both units' HR contacts).
    for day in (DUE - timedelta(days=2), DUE + timedelta(days=1), DUE + timedelta(days=15)):
        run(app, "reminders", at_local(day, 9))
        run(app, "outbox", at_local(day, 10), smtp_url=smtp_sink.url)
    by_recipient: dict[str, list[str]] = {}
    for message in smtp_sink.messages:
        by_recipient.setdefault(str(message["To"]), []).append(_everything(message))
    sibling_side = [craftsman.email, "hr@xtdj.example.cn"]
    home_side = [apprentice.email, "hr@hzdj.example.cn"]
    assert set(by_recipient) >= {*sibling_side, *home_side, "coordinator@emca.example.cn"}
    for recipient, emails in by_recipient.items():
        for email in emails:
            # Never anyone's email address, external id or consent record in the text.
            for secret in (
                craftsman.email,
                apprentice.email,
                craftsman.external_id,
                apprentice.external_id,
                "2026-01-05",
            ):
                assert secret not in email, (recipient, secret)
            if recipient in sibling_side:  # another unit than the apprentice's
                assert apprentice.name not in email, recipient
                assert "Master Zhao" in email and "HZDJ 电机有限公司" in email
            else:  # their own unit, and the coordinators
                assert apprentice.name in email and "Master Zhao" in email, recipient
    english = by_recipient[craftsman.email][0]
    assert "(not shown: no cross-unit consent)" in english
    assert "（未同意跨单位展示）" in by_recipient["hr@xtdj.example.cn"][0]


def test_once_consent_is_given_the_other_unit_reads_the_name(
    app: Flask, session: Session, world: World, smtp_sink: Sink
) -> None:
    world.alliance.consent_required = True
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        STARTED,
        "E2",
        craftsman={"cross_unit_consent": CONSENT},
        apprentice={"cross_unit_consent": CONSENT, "name": "王同意"},
    )
    session.commit()
    run(app, "reminders", at_local(DUE - timedelta(days=2), 9))
    assert (
        run(app, "outbox", at_local(DUE - timedelta(days=2), 10), smtp_url=smtp_sink.url)["sent"]
        == 2
    )
    to_craftsman = next(m for m in smtp_sink.messages if str(m["To"]) == pair.craftsman.email)
    email = _everything(to_craftsman)
    assert "王同意" in email and pair.apprentice.email not in email


@pytest.mark.usefixtures("allow_private")
def test_a_units_webhook_gets_the_other_one_through_the_allowlist(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    world.alliance.consent_required = True
    session.commit()
    secrets = {
        who: register(client, world, who, receiver.url(f"/{who}"))["secret"]
        for who in ("hr", "sibling_hr", "coordinator")
    }
    # The craftsman (sibling unit) consented, the apprentice (home unit) did not.
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        STARTED,
        "H1",
        craftsman={"cross_unit_consent": CONSENT},
        apprentice={"name": "孙未同意"},
    )
    session.commit()
    ended = client.post(
        f"/api/v1/mentorships/{pair.id}/end",
        json={"reason_code": "other", "comment": "调岗"},
        headers=world.auth("coordinator"),
    )
    assert ended.status_code == 200, ended.get_data(as_text=True)
    deliver(app)
    bodies: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.received():
        who = request.path.strip("/")
        bodies.setdefault(who, []).append(verified(request, secrets[who]))
    for who in ("hr", "sibling_hr", "coordinator"):
        types = sorted(b["type"] for b in bodies[who])
        assert types == ["mentorship.created", "mentorship.ended"], who
    for sibling in (b["data"] for b in bodies["sibling_hr"]):
        assert sibling["apprentice"] == {
            "id": pair.apprentice_id,
            "name": None,
            "unit_id": world.unit.id,
            "unit_code": "HZDJ",
        }
        assert sibling["craftsman"]["external_id"] == "MC-H1"  # its own unit's person, whole
    for home in (b["data"] for b in bodies["hr"]):
        assert "external_id" not in home["craftsman"] and home["craftsman"]["name"] == "师傅H1"
        assert home["apprentice"]["name"] == "孙未同意"
    for whole in (b["data"] for b in bodies["coordinator"]):
        assert whole["apprentice"]["external_id"] == "MA-H1" and whole["apprentice"]["name"]


@pytest.mark.usefixtures("allow_private")
def test_a_units_chat_group_reads_no_one_without_consent(
    app: Flask, client: FlaskClient, session: Session, world: World, receiver: Receiver
) -> None:
    from tests.jobs.test_channels import NOW, channel, markdown_of
    from tests.jobs.test_channels import run as run_at

    world.alliance.consent_required = True
    channel(
        client,
        world,
        "sibling_hr",
        {
            "kind": "wecom",
            "url": receiver.url("/wecom"),
            "events": ["escalation", "mentorship.ended"],
        },
    )
    started = (NOW + timedelta(hours=8)).date() - timedelta(days=50)
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        started,
        "C1",
        craftsman={"cross_unit_consent": CONSENT},
        apprentice={"name": "周未同意"},
    )
    session.commit()
    assert run_at(app, "reminders")["chat_notices"] == 1  # the escalation
    ended = client.post(
        f"/api/v1/mentorships/{pair.id}/end",
        json={"reason_code": "other"},
        headers=world.auth("coordinator"),
    )
    assert ended.status_code == 200
    assert deliver(app)["chat_sent"] == 2
    texts = [markdown_of(request)[1] for request in receiver.received()]
    assert len(texts) == 2
    for text in texts:
        assert "周未同意" not in text and "未同意跨单位展示" in text, text
        assert "师傅C1" in text and "MA-C1" not in text
