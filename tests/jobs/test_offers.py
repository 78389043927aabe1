"""The life of an offer (programme.md, "Two-way choice"): its email and one reminder over real
SMTP, the signed link's page, acceptance, decline, expiry by the ``offers`` job, once-only."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.models import (
    Mentorship,
    Offer,
    RejectedPair,
    Reminder,
    WebhookEvent,
)
from matcher.services.access import Principal
from matcher.services.alliances import update_alliance
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import local_today
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.review import commit_run, decide_many
from matcher.services.webhooks import create_endpoint
from tests import factories
from tests.factories import World
from tests.jobs.conftest import Sink
from tests.jobs.test_reminders import _outbox_process, run

LINK = re.compile(r"http://testserver(/offer/[A-Za-z0-9_.\-]+)")


def offers_made(session: Session, world: World, count: int = 1) -> list[Offer]:
    """An alliance requiring consent; ``count`` sibling-unit craftsmen (en, with email) offered
    ``count`` home-unit apprentices (zh-CN) by a committed run (with the world's own pairs, whose
    craftsmen have no email); the run's offers."""
    update_alliance(session, alliance=world.alliance, changes={"craftsman_consent": "required"})
    upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.sibling_unit,
        items=[
            factories.craftsman_item(
                f"OC-{i}",
                name=f"Master Tan {i}",
                email=f"tan{i}@xtdj.example.cn",
                locale="en",
                capacity=1,
                skills=[{"name": "电机绕组嵌线", "level": 5}],
            )
            for i in range(count)
        ],
    )
    upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item(
                f"OA-{i}",
                name=f"曾小丹{i}",
                email=f"xd{i}@hzdj.example.cn",
                wants=[{"name": "电机绕组嵌线", "level": 3, "weight": 1.0}],
            )
            for i in range(count)
        ],
    )
    run_ = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run_)
    decide_many(session, run=run_, status="approved", comment=None, actor="test")
    result = commit_run(session, run=run_, actor="test", today=local_today("Asia/Shanghai"))
    session.commit()
    offers = list(session.scalars(select(Offer).order_by(Offer.id)))
    assert result.offers_created == len(offers) >= count
    return offers


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def ours(offers: list[Offer]) -> list[Offer]:
    return [offer for offer in offers if offer.craftsman.email]


def test_offer_then_one_reminder_then_accepted_through_the_link(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    offer, *_ = ours(offers_made(session, world))
    start = offer.offered_at
    assert run(app, "outbox", start, smtp_url=smtp_sink.url)["sent"] == 1
    (first,) = smtp_sink.messages
    assert str(first["To"]) == offer.craftsman.email
    assert "Would you mentor 曾小丹0?" in str(first["Subject"])
    body = text_of(first)
    assert "曾小丹0" in body and "电机绕组嵌线 L3" in body
    # What another unit may see of the apprentice (privacy.md): never their email or id.
    assert "xd0@hzdj.example.cn" not in body and "OA-0" not in body

    # One reminder three days later, and only one, however often the job runs.
    assert run(app, "offers", start + timedelta(days=2, hours=23))["offer_reminders"] == 0
    assert run(app, "offers", start + timedelta(days=3, minutes=1))["offer_reminders"] == 1
    assert run(app, "offers", start + timedelta(days=4))["offer_reminders"] == 0
    assert run(app, "outbox", start + timedelta(days=4), smtp_url=smtp_sink.url)["sent"] == 1
    assert run(app, "outbox", start + timedelta(days=5), smtp_url=smtp_sink.url)["sent"] == 0
    reminder = smtp_sink.messages[1]
    assert "Reminder" in str(reminder["Subject"])
    assert len(set(smtp_sink.message_ids())) == 2

    link = LINK.search(text_of(reminder))
    assert link is not None and LINK.search(text_of(first)) is not None  # both emails link
    page = client.get(link.group(1))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "曾小丹0" in html and "电机绕组嵌线" in html and world.unit.name in html
    assert "xd0@hzdj.example.cn" not in html
    assert client.post(link.group(1), data={"answer": "accept"}).status_code == 400  # no CSRF
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    done = client.post(link.group(1), data={"answer": "accept", "csrf_token": token.group(1)})
    assert done.status_code == 200 and "Thank you for accepting" in done.get_data(as_text=True)
    session.expire_all()
    assert offer.status == "accepted" and offer.answered_by == "craftsman:link"
    mentorship = session.get_one(Mentorship, offer.mentorship_id)
    assert mentorship.started_on == local_today("Asia/Shanghai")
    # The link used again is refused, saying why; accepted offers never expire.
    again = client.post(link.group(1), data={"answer": "decline", "csrf_token": token.group(1)})
    assert again.status_code == 409 and "accepted already" in again.get_data(as_text=True)
    run(app, "offers", start + timedelta(days=30))  # the world's unanswered offers expire
    session.expire_all()
    assert offer.status == "accepted"


def test_declined_through_the_link_is_remembered_and_its_reminder_not_sent(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    offer, *_ = ours(offers_made(session, world))
    start = offer.offered_at
    assert run(app, "offers", start + timedelta(days=3, minutes=1))["offer_reminders"] == 1
    link = LINK.search(text_of_first_email(app, session, offer, smtp_sink))
    assert link is not None
    html = client.get(link.group(1)).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {"answer": "decline", "reason": "Away on a project until May", "csrf_token": token[1]}
    assert client.post(link.group(1), data=form).status_code == 200
    session.expire_all()
    assert (offer.status, offer.reason) == ("declined", "Away on a project until May")
    rejected = session.scalars(select(RejectedPair)).one()
    assert (rejected.craftsman_id, rejected.apprentice_id) == (
        offer.craftsman_id,
        offer.apprentice_id,
    )
    # The queued reminder is cancelled by the outbox, not sent.
    sent_before = len(smtp_sink.messages)
    outcome = run(app, "outbox", start + timedelta(days=4), smtp_url=smtp_sink.url)
    assert (outcome["sent"], outcome["cancelled"]) == (0, 1)
    assert len(smtp_sink.messages) == sent_before


def text_of_first_email(app: Flask, session: Session, offer: Offer, sink: Sink) -> str:
    """Send the offer's first email (queued at commit; the reminder is left for later)."""
    first = session.scalars(
        select(Reminder).where(Reminder.offer_id == offer.id, Reminder.kind == "offer")
    ).one()
    assert run(app, "outbox", offer.offered_at, smtp_url=sink.url)["sent"] >= 1
    (message,) = [m for m in sink.messages if str(first.id) == str(m["X-Matcher-Reminder"])]
    return text_of(message)


def test_unanswered_offers_expire_through_the_cli_and_their_links_say_so(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: World,
    smtp_sink: Sink,
    database_url: str,
) -> None:
    offers = offers_made(session, world, count=2)
    offer = ours(offers)[0]
    link = LINK.search(text_of_first_email(app, session, offer, smtp_sink))
    assert link is not None
    expires = offer.expires_at
    before = expires - timedelta(minutes=1)
    process = _outbox_process(
        database_url, smtp_sink, ("jobs", "run", "offers", "--now", before.isoformat())
    )
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    session.expire_all()
    assert {o.status for o in session.scalars(select(Offer))} == {"offered"}
    process = _outbox_process(
        database_url, smtp_sink, ("jobs", "run", "offers", "--now", expires.isoformat())
    )
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    session.expire_all()
    assert {o.status for o in session.scalars(select(Offer))} == {"expired"}
    assert session.scalar(select(func.count()).select_from(RejectedPair)) == 0
    page = client.get(link.group(1))
    assert page.status_code == 410 and "has expired" in page.get_data(as_text=True)
    refused = client.post(f"/api/v1/offers/{offer.id}/accept", headers=world.auth("coordinator"))
    assert refused.status_code == 409


def test_a_tampered_or_stale_link_is_refused_with_a_page(
    app: Flask, client: FlaskClient, session: Session, world: World, smtp_sink: Sink
) -> None:
    offer, *_ = ours(offers_made(session, world))
    link = LINK.search(text_of_first_email(app, session, offer, smtp_sink))
    assert link is not None
    path = link.group(1)
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for bad in (tampered, "/offer/not-a-token", path.replace("/offer/", "/offer/x")):
        page = client.get(bad)
        assert page.status_code == 404, bad
        assert "链接无效" in page.get_data(as_text=True)
    # A link signed long ago (beyond any offer's life) has expired.
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from matcher.extensions import state
    from matcher.services.summary_links import OFFER_MAX_AGE_SECONDS, OFFER_SALT

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(datetime.now().timestamp()) - OFFER_MAX_AGE_SECONDS - 60

    secret = state(app).settings.secret_key
    old = URLSafeTimedSerializer(secret, salt=OFFER_SALT, signer=LongAgo).dumps([offer.id])
    page = client.get(f"/offer/{old}")
    assert page.status_code == 404 and "已过期" in page.get_data(as_text=True)
    session.expire_all()
    assert offer.status == "offered"


def test_two_offers_jobs_at_once_remind_and_expire_each_offer_once(
    app: Flask, session: Session, world: World, smtp_sink: Sink
) -> None:
    create_endpoint(
        session,
        owner=Principal(role="coordinator", alliance_id=world.alliance.id),
        url="https://portal.example.cn/hooks",
        events=["offer.answered"],
        description=None,
        allow_private=False,
        https_only=True,
    )
    session.commit()
    offers = offers_made(session, world, count=6)
    start = offers[0].offered_at

    def both(now: datetime) -> list[dict[str, Any]]:
        barrier = threading.Barrier(2)
        outcomes: list[dict[str, Any]] = []
        errors: list[BaseException] = []

        def one() -> None:
            barrier.wait()
            try:
                outcomes.append(run(app, "offers", now))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        return outcomes

    emailed_offers = len(ours(offers))
    reminded = both(start + timedelta(days=3, minutes=1))
    assert sum(o["offer_reminders"] for o in reminded) == emailed_offers
    expired = both(offers[0].expires_at + timedelta(minutes=1))
    assert sum(o["expired"] for o in expired) == len(offers)
    session.expire_all()
    assert {o.status for o in session.scalars(select(Offer))} == {"expired"}
    answered = session.scalars(
        select(WebhookEvent).where(WebhookEvent.type == "offer.answered")
    ).all()
    assert sorted(e.payload["data"]["offer_id"] for e in answered) == sorted(o.id for o in offers)
    # Each email went out once: the offers' and the reminders', none for the expired since.
    outcome = run(app, "outbox", start + timedelta(days=3, minutes=2), smtp_url=smtp_sink.url)
    assert outcome["sent"] == 0 and outcome["cancelled"] == 2 * emailed_offers
    assert len(smtp_sink.messages) == 0


def test_emails_go_once_even_with_two_outboxes_and_many_runs(
    app: Flask, session: Session, world: World, smtp_sink: Sink
) -> None:
    offers = ours(offers_made(session, world, count=3))
    start = offers[0].offered_at
    for hours in (0, 1, 2):
        run(app, "offers", start + timedelta(days=3, hours=hours))
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait()
        run(app, "outbox", start + timedelta(days=3, hours=3), smtp_url=smtp_sink.url)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = smtp_sink.message_ids()
    assert len(ids) == len(set(ids)) == 2 * len(offers)
    kinds = sorted(
        session.execute(
            select(Reminder.kind, Reminder.status).where(Reminder.offer_id.is_not(None))
        )
    )
    assert kinds == sorted(
        [("offer", "sent")] * len(offers) + [("offer_reminder", "sent")] * len(offers)
    )
