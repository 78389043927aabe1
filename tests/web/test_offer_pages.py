"""Offers on the coordinator's pages: the run page shows each approved pair's offer and answers
for a craftsman; the overview counts open, declined and expired offers."""

from __future__ import annotations

import re
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.models import AuditEvent, Mentorship, Offer, Proposal, RejectedPair
from matcher.services.alliances import update_alliance
from matcher.services.review import decide_many
from matcher.services.users import create_user
from tests.web.conftest import PASSWORD, Review, sign_in


def committed_with_offers(client: FlaskClient, session: Session, review: Review) -> list[Offer]:
    """Consent required, every proposal approved, the run committed from its page."""
    update_alliance(
        session, alliance=review.world.alliance, changes={"craftsman_consent": "required"}
    )
    decide_many(session, run=review.run, status="approved", comment=None, actor="t")
    session.commit()
    token = sign_in(client, review.email)
    response = client.post(f"/runs/{review.run.id}/commit", data={"csrf_token": token})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    session.rollback()
    offers = list(session.scalars(select(Offer).order_by(Offer.id)))
    assert offers and f"已向工匠发出 {len(offers)} 份带徒邀请" in page
    return offers


def answer(client: FlaskClient, review: Review, offer: Offer, **form: str) -> str:
    token = sign_in(client, review.email)
    response = client.post(
        f"/runs/{review.run.id}/offers/{offer.id}", data={"csrf_token": token, **form}
    )
    assert response.status_code == 303
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_run_page_shows_each_offer_and_answers_for_the_craftsman(
    client: FlaskClient, session: Session, review: Review
) -> None:
    offers = committed_with_offers(client, session, review)
    page = client.get(f"/runs/{review.run.id}?page_size=100").get_data(as_text=True)
    shown = dict(re.findall(r'data-offer="(\d+)" data-offer-status="(\w+)"', page))
    on_page = set(
        session.scalars(select(Proposal.id).where(Proposal.match_run_id == review.run.id))
    )
    assert shown and all(status == "offered" for status in shown.values())
    assert {int(i) for i in shown} <= {o.id for o in offers if o.proposal_id in on_page}
    assert "代工匠接受" in page and "待工匠答复" in page

    first, second, *_ = (o for o in offers if str(o.id) in shown)
    accepted = answer(client, review, first, answer="accept", reason="")
    assert "已代" in accepted and "师徒关系今日开始" in accepted
    assert f'data-offer="{first.id}" data-offer-status="accepted"' in accepted
    declined = answer(client, review, second, answer="decline", reason="电话里说最近太忙")
    assert f'data-offer="{second.id}" data-offer-status="declined"' in declined
    assert "电话里说最近太忙" in declined
    session.rollback()
    assert session.get_one(Mentorship, session.get_one(Offer, first.id).mentorship_id)
    assert session.scalars(select(RejectedPair.craftsman_id)).all() == [second.craftsman_id]
    actors = set(session.scalars(select(AuditEvent.actor).where(AuditEvent.action.like("offer.%"))))
    assert actors == {f"user:{review.email}"}
    # Answering again is refused on the page, nothing changes.
    again = answer(client, review, second, answer="accept", reason="")
    assert "已被婉拒" in again
    session.rollback()
    assert session.get_one(Offer, second.id).status == "declined"


def test_the_overview_counts_open_declined_and_expired_offers(
    client: FlaskClient, session: Session, review: Review
) -> None:
    offers = committed_with_offers(client, session, review)
    assert len(offers) >= 3
    answer(client, review, offers[0], answer="decline", reason="")
    session.execute(
        update(Offer)
        .where(Offer.id == offers[1].id)
        .values(status="expired", answered_at=utcnow() + timedelta(days=7))
    )
    session.commit()
    overview = client.get("/").get_data(as_text=True)

    def card(name: str) -> int:
        match = re.search(rf'id="offers-{name}"><span class="stat">(\d+)<', overview)
        assert match, name
        return int(match.group(1))

    assert (card("open"), card("declined"), card("expired")) == (len(offers) - 2, 1, 1)


def test_another_alliances_coordinator_cannot_answer(
    client: FlaskClient, session: Session, review: Review
) -> None:
    offers = committed_with_offers(client, session, review)
    create_user(
        session,
        email="coord@other.example.cn",
        password=PASSWORD,
        alliance=review.world.other_alliance,
    )
    session.commit()
    client.post("/sign-out", data={"csrf_token": sign_in(client, review.email)})
    token = sign_in(client, "coord@other.example.cn")
    response = client.post(
        f"/runs/{review.run.id}/offers/{offers[0].id}",
        data={"csrf_token": token, "answer": "accept"},
    )
    assert response.status_code == 404
    session.rollback()
    assert session.get_one(Offer, offers[0].id).status == "offered"
