"""The programme's pages: the check-in form from its email, a mentorship's page, the activity
page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.extensions import state
from matcher.models import CheckIn, Mentorship, Reminder
from matcher.services.emails import render
from matcher.services.mentorships import SummaryInput, add_summary
from matcher.services.programme_reminders import queue_programme_reminders
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.web.conftest import PASSWORD, csrf, sign_in

EMAIL = "coordinator@emca.example.cn"
LINK = re.compile(r"http://testserver(/check-in/[^\s\"<]+)")


def _pair_with_a_summary(session: Session, world: World) -> Mentorship:
    mentorship = factories.mentorship(
        session, world.sibling_unit, world.unit, date.today() - timedelta(days=40), "P"
    )
    add_summary(
        session,
        mentorship=mentorship,
        summary=SummaryInput(author="apprentice", content="学了焊接", hours=3, skills=[]),
        submitted_by="test",
    )
    create_user(session, email=EMAIL, password=PASSWORD, alliance=world.alliance)
    session.commit()
    return mentorship


def test_the_check_in_email_links_to_a_form_that_flags_the_pair(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    mentorship = _pair_with_a_summary(session, world)
    queued = queue_programme_reminders(session, now=datetime.now(UTC))
    session.commit()
    assert queued["check_in"] == 2  # after the first summary, to each of the pair
    email = session.scalars(
        select(Reminder).where(Reminder.kind == "check_in", Reminder.recipient_role == "apprentice")
    ).one()
    rendered = render(session, email, state(app).settings)
    assert "师带徒情况反馈" in rendered.subject
    match = LINK.search(rendered.text)
    assert match, rendered.text
    form = client.get(match.group(1))
    assert form.status_code == 200 and "学徒P" in form.get_data(as_text=True)
    token = csrf(form.get_data(as_text=True))
    bad = client.post(match.group(1), data={"csrf_token": token, "rating": "9", "good_fit": "no"})
    assert bad.status_code == 422
    done = client.post(
        match.group(1),
        data={"csrf_token": token, "rating": "2", "good_fit": "no", "comment": "沟通少"},
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    session.expire_all()
    stored = session.scalars(select(CheckIn)).one()
    assert (stored.author, stored.occasion, stored.rating, stored.good_fit) == (
        "apprentice",
        "first_summary",
        2,
        False,
    )
    assert session.get_one(Mentorship, mentorship.id).flagged is True
    again = client.post(
        match.group(1), data={"csrf_token": token, "rating": "3", "good_fit": "yes"}
    )
    assert again.status_code == 409
    # Answered: the apprentice is not asked again for this occasion.
    assert queue_programme_reminders(session, now=datetime.now(UTC))["check_in"] == 0
    assert client.get("/check-in/forged-token").status_code == 404


def test_the_mentorship_page_needs_a_signed_in_coordinator_of_its_alliance(
    app: Flask, session: Session, world: World
) -> None:
    mentorship = _pair_with_a_summary(session, world)
    foreign = factories.mentorship(
        session, world.foreign_unit, world.foreign_unit, date(2026, 1, 1), "F"
    )
    session.commit()
    browser = app.test_client()
    assert browser.get(f"/mentorships/{mentorship.id}").status_code == 303
    sign_in(browser, EMAIL)
    page = browser.get(f"/mentorships/{mentorship.id}")
    assert page.status_code == 200 and "学了焊接" in page.get_data(as_text=True)
    assert browser.get(f"/mentorships/{foreign.id}").status_code == 404


def test_the_activity_page_lists_craftsmen_and_marks_the_idle(
    app: Flask, session: Session, world: World
) -> None:
    _pair_with_a_summary(session, world)
    browser = app.test_client()
    sign_in(browser, EMAIL)
    page = browser.get("/activity?sort=hours")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    table = html.split('id="activity"', 1)[1]
    rows = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    # Sorted by hours: the pair's craftsman first; the world's craftsmen are idle.
    assert "师傅P" in rows[0] and 'class="idle"' not in rows[0]
    assert all('class="idle"' in row for row in rows[1:])
    assert html.count("<svg") >= 2  # a chart per unit
    workbook = browser.get("/activity.xlsx")
    assert workbook.status_code == 200 and workbook.mimetype.endswith("spreadsheetml.sheet")
    nonsense = browser.get("/activity?from=2026-06-30&to=2026-01-01")
    assert nonsense.status_code == 200 and 'role="alert"' in nonsense.get_data(as_text=True)
