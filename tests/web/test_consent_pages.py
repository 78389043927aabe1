"""Consent on the pages: the signed-link forms show another unit's person only through the
allowlist (withheld without consent), and the overview tells coordinators what to do."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from matcher.extensions import state
from matcher.services.summary_links import (
    CheckInLink,
    SummaryLink,
    make_check_in_token,
    make_token,
)
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.web.conftest import PASSWORD, sign_in

CONSENT = {"given_at": datetime(2026, 1, 5, tzinfo=UTC), "version": "1"}


def test_the_forms_a_link_opens_withhold_the_other_one_without_consent(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    world.alliance.consent_required = True
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        date(2026, 2, 1),
        "F",
        craftsman={"cross_unit_consent": CONSENT, "name": "赵师傅"},
        apprentice={"name": "钱未同意"},
    )
    session.commit()
    secret = state(app).settings.secret_key
    pages = {
        role: [
            "/summary/" + make_token(secret, SummaryLink(pair.id, 1, role)),
            "/check-in/" + make_check_in_token(secret, CheckInLink(pair.id, "mid_term", role)),
        ]
        for role in ("craftsman", "apprentice")
    }
    for url in pages["craftsman"]:  # the craftsman is of another unit than the apprentice
        html = client.get(url).get_data(as_text=True)
        assert "赵师傅" in html and "钱未同意" not in html and "未同意跨单位展示" in html, url
        assert pair.apprentice.external_id not in html
    for url in pages["apprentice"]:  # the apprentice sees themselves and the consenting craftsman
        html = client.get(url).get_data(as_text=True)
        assert "赵师傅" in html and "钱未同意" in html, url
        assert pair.craftsman.email not in html and pair.craftsman.external_id not in html


def test_the_overview_says_when_consent_is_off_and_which_pairs_to_end(
    client: FlaskClient, session: Session, world: World
) -> None:
    create_user(session, email="coord@emca.example.cn", password=PASSWORD, alliance=world.alliance)
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        date(2026, 2, 1),
        "O",
        apprentice={"cross_unit_consent": CONSENT},
    )
    session.commit()
    sign_in(client, "coord@emca.example.cn")
    html = client.get("/").get_data(as_text=True)
    assert 'id="consent-off"' in html and 'id="consent-withdrawn"' not in html
    world.alliance.consent_required = True
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert 'id="consent-off"' not in html
    # The apprentice's HR system withdraws the consent: the pair is listed to be ended.
    withdrawn = client.patch(
        f"/api/v1/apprentices/{pair.apprentice_id}",
        json={"cross_unit_consent": None},
        headers=world.auth("hr"),
    )
    assert withdrawn.status_code == 200
    html = client.get("/").get_data(as_text=True)
    assert 'id="consent-withdrawn"' in html and "学徒O" in html
    page = client.get(f"/mentorships/{pair.id}").get_data(as_text=True)
    assert 'id="consent-withdrawn"' in page and "撤回" in page
