"""Emails to a pair name the other person and their unit only, and nobody who has not consented
to be shown to another unit (privacy.md): real emails over the loopback SMTP server, scanned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from flask import Flask
from sqlalchemy.orm import Session

from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.jobs.conftest import Sink
from tests.jobs.test_reminders import STARTED, at_local, run

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
