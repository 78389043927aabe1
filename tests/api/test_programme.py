"""The programme around a pair (programme.md) through the API: agreement and goals, summaries,
check-ins and the flag, term-ending reminders, the assessment and the public certificate."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.extensions import state
from matcher.models import Mentorship, RejectedPair, Reminder
from matcher.services.emails import render
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.web.conftest import PASSWORD, sign_in

API = "/api/v1"
COORDINATOR_EMAIL = "coordinator@emca.example.cn"


def _people(session: Session, world: World) -> tuple[int, int, int]:
    """A welding master (en) and a second one in the sibling unit, a home-unit apprentice
    (zh-CN) who wants welding; all with emails. Their ids."""
    masters = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.sibling_unit,
        items=[
            # The world's own sibling craftsman takes no part: these two are the choice.
            factories.craftsman_item(f"C-{world.sibling_unit.code}", active=False),
            factories.craftsman_item(
                "M-1",
                name="王师傅",
                email="wang@xtdj.example.cn",
                locale="en",
                capacity=1,
                skills=[{"name": "焊接", "level": 5}],  # the best fit
            ),
            factories.craftsman_item(
                "M-2", name="赵师傅", email="zhao@xtdj.example.cn", capacity=1
            ),
        ],
    ).ids[1:]
    learner = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item("L-1", name="李学徒", email="li@hzdj.example.cn"),
            factories.apprentice_item(f"A-{world.unit.code}", active=False),
        ],
    ).ids[0]
    create_user(session, email=COORDINATOR_EMAIL, password=PASSWORD, alliance=world.alliance)
    session.commit()
    return masters[0], masters[1], learner


def _run_and_commit(client: FlaskClient, world: World, apprentice_id: int) -> dict[str, Any]:
    """A match run whose proposal for the apprentice is approved and committed; that proposal."""
    coordinator = world.auth("coordinator")
    run = client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs", json={}, headers=coordinator
    )
    assert run.status_code in (200, 201, 202), run.get_data(as_text=True)
    run_id = run.get_json()["id"]
    listed = client.get(f"{API}/match-runs/{run_id}/proposals", headers=coordinator).get_json()
    (proposal,) = [p for p in listed if p["apprentice"]["id"] == apprentice_id]
    approved = client.post(
        f"{API}/match-runs/{run_id}/proposals/bulk",
        json={"ids": [proposal["id"]], "status": "approved"},
        headers=coordinator,
    )
    assert approved.get_json() == {"changed": 1}
    committed = client.post(f"{API}/match-runs/{run_id}/commit", headers=coordinator)
    assert committed.status_code == 200, committed.get_data(as_text=True)
    return {**proposal, "run_id": run_id}


def _jobs_run(app: Flask, name: str, now: datetime) -> dict[str, Any]:
    """``matcher jobs run NAME --now ISO``, as an operator types it."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", name, "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    outcome: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return outcome


def _local_nine(day: date) -> datetime:
    """09:00 of ``day`` in Asia/Shanghai, in UTC."""
    return datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)


def test_a_pair_goes_from_commit_to_a_verifiable_certificate(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    master, _, learner = _people(session, world)
    coordinator, hr = world.auth("coordinator"), world.auth("hr")
    # The alliance's agreements run 6 months (an admin's setting).
    patched = client.patch(
        f"{API}/alliances/{world.alliance.id}",
        json={"agreement_months": 6},
        headers=world.auth("admin"),
    )
    assert patched.get_json()["agreement_months"] == 6
    proposal = _run_and_commit(client, world, learner)
    (pair,) = [
        m
        for m in client.get(f"{API}/mentorships", headers=coordinator).get_json()
        if m["apprentice"]["id"] == learner
    ]
    url = f"{API}/mentorships/{pair['id']}"
    started = date.fromisoformat(pair["started_on"])
    ends_on = date.fromisoformat(pair["ends_on"])
    assert pair["craftsman"]["id"] == proposal["craftsman"]["id"]
    assert (ends_on.year * 12 + ends_on.month) - (started.year * 12 + started.month) == 6
    assert pair["status"] == "active" and pair["flagged"] is False
    # Goals: the apprentice's wants at the start; a coordinator adds one (hr may not).
    assert pair["goals"] == [{"skill": "焊接", "level": 3}]
    goals = [{"skill": "焊接", "level": 3}, {"skill": "氩弧焊", "level": 2}]
    assert client.patch(url, json={"goals": goals}, headers=hr).status_code == 403
    assert (
        client.patch(url, json={"goals": goals}, headers=coordinator).get_json()["goals"] == goals
    )

    # Two summaries.
    for content in ("学习了打底焊", "练习了盖面焊"):
        handed = client.post(
            f"{url}/summaries",
            json={"author": "apprentice", "content": content, "hours": 6},
            headers=hr,
        )
        assert handed.status_code == 201, handed.get_data(as_text=True)

    # Both check-ins: the craftsman is content, the apprentice says "not a good fit".
    fine = {"author": "craftsman", "rating": 4, "good_fit": True, "comment": "进步很快"}
    assert client.post(f"{url}/check-ins", json=fine, headers=coordinator).status_code == 201
    unhappy = {"author": "apprentice", "rating": 2, "good_fit": False, "comment": "时间对不上"}
    answered = client.post(f"{url}/check-ins", json=unhappy, headers=hr)
    assert answered.status_code == 201 and answered.get_json()["occasion"] == "first_summary"
    assert client.get(url, headers=coordinator).get_json()["flagged"] is True
    listed = client.get(f"{url}/check-ins", headers=hr).get_json()
    assert [(c["author"], c["good_fit"]) for c in listed] == [
        ("craftsman", True),
        ("apprentice", False),
    ]
    # The overview lists the flagged pair.
    browser = app.test_client()
    sign_in(browser, COORDINATOR_EMAIL)
    overview = browser.get("/").get_data(as_text=True)
    flagged_section = overview.split('id="flagged"', 1)[1].split("</table>", 1)[0]
    assert "王师傅" in flagged_section and "李学徒" in flagged_section, flagged_section
    page = browser.get(f"/mentorships/{pair['id']}").get_data(as_text=True)
    assert "时间对不上" in page and "练习了盖面焊" in page and 'id="flagged"' in page
    # A coordinator clears the flag after talking to them.
    cleared = client.patch(url, json={"flagged": False}, headers=coordinator).get_json()
    assert cleared["flagged"] is False
    assert 'id="flagged"' not in browser.get(f"/mentorships/{pair['id']}").get_data(as_text=True)

    # Term-ending reminders: 30 and 7 days before the end, once each, to both and the
    # coordinator.
    month_before, week_before = ends_on - timedelta(days=30), ends_on - timedelta(days=7)
    assert (
        _jobs_run(app, "reminders", _local_nine(month_before - timedelta(days=1)))["term_ending"]
        == 0
    )
    assert _jobs_run(app, "reminders", _local_nine(month_before))["term_ending"] == 3
    assert (
        _jobs_run(app, "reminders", _local_nine(month_before) + timedelta(hours=5))["term_ending"]
        == 0
    )
    assert _jobs_run(app, "reminders", _local_nine(week_before))["term_ending"] == 3
    assert (
        _jobs_run(app, "reminders", _local_nine(week_before + timedelta(days=2)))["term_ending"]
        == 0
    )
    rows = session.scalars(
        select(Reminder).where(Reminder.kind == "term_ending").order_by(Reminder.id)
    ).all()
    assert sorted((r.recipient_role, r.due_on) for r in rows) == sorted(
        [(role, ends_on) for role in ("craftsman", "apprentice", "coordinator")] * 2
    )
    # In each recipient's language.
    settings = state(app).settings
    subjects = {r.recipient: render(session, r, settings).subject for r in rows}
    assert "Mentorship agreement ends on" in subjects["wang@xtdj.example.cn"]
    assert "师徒协议将于" in subjects["li@hzdj.example.cn"]

    # The completion assessment: a pass completes the pair and issues a certificate.
    assessment = {
        "theory": 86,
        "practice": 92,
        "skills": [{"name": "氩弧焊", "level": 3}],
        "evaluator": "联盟考核组",
        "result": "pass",
        "comment": "理论扎实",
    }
    assert client.post(f"{url}/assessment", json=assessment, headers=hr).status_code == 403
    passed = client.post(f"{url}/assessment", json=assessment, headers=coordinator)
    assert passed.status_code == 201, passed.get_data(as_text=True)
    certificate = passed.get_json()["certificate"]
    code = certificate["code"]
    assert len(code) >= 12
    assert client.post(f"{url}/assessment", json=assessment, headers=coordinator).status_code == 409
    assert client.get(url, headers=coordinator).get_json()["status"] == "completed"

    # Anyone verifies it without a key: exactly what programme.md lists.
    verified = app.test_client().get(
        f"/certificates/{code}", headers={"Accept": "application/json"}
    )
    assert verified.status_code == 200
    assert verified.get_json() == {
        "code": code,
        "issued_on": certificate["issued_on"],
        "apprentice": {"name": "李学徒", "unit": world.unit.name},
        "craftsman": {"name": "王师傅", "unit": world.sibling_unit.name},
        "alliance": world.alliance.name,
        "skills": [{"name": "氩弧焊", "level": 3}],
    }
    html = app.test_client().get(f"/certificates/{code}").get_data(as_text=True)
    assert "李学徒" in html and "王师傅" in html and "联盟考核组" not in html
    assert app.test_client().get("/certificates/NOSUCHCODE0000").status_code == 404
    pdf = app.test_client().get(f"/certificates/{code}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = _pdf_text(pdf.get_data())
    assert "李学徒" in text and "王师傅" in text and code in text
    assert f"http://testserver/certificates/{code}" in text
    info = subprocess.run(
        ["pdfinfo", "-"], input=pdf.get_data(), capture_output=True, check=True
    ).stdout.decode()
    assert "(A4)" in info and "Pages:           1" in info
    fonts = subprocess.run(
        ["pdffonts", "-"], input=pdf.get_data(), capture_output=True, check=True
    ).stdout.decode()
    # The CJK font is embedded (subset): the "emb" column says yes for it.
    assert any("CJK" in line and " yes " in line for line in fonts.splitlines()), fonts
    assert master == pair["craftsman"]["id"]


def _pdf_text(pdf: bytes) -> str:
    """The PDF's text as ``pdftotext`` (poppler-utils) extracts it."""
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


def test_a_pair_ended_as_not_a_fit_is_never_proposed_again(
    client: FlaskClient, session: Session, world: World
) -> None:
    _, _, learner = _people(session, world)
    coordinator = world.auth("coordinator")
    first = _run_and_commit(client, world, learner)
    (pair,) = [
        m
        for m in client.get(f"{API}/mentorships", headers=coordinator).get_json()
        if m["apprentice"]["id"] == learner
    ]
    ended = client.post(
        f"{API}/mentorships/{pair['id']}/end",
        json={"reason_code": "not_a_fit", "comment": "性格不合"},
        headers=coordinator,
    )
    assert ended.status_code == 200
    body = ended.get_json()
    assert (body["status"], body["end_reason"], body["end_comment"]) == (
        "ended",
        "not_a_fit",
        "性格不合",
    )
    refused = client.post(
        f"{API}/mentorships/{pair['id']}/end", json={"reason_code": "bored"}, headers=coordinator
    )
    assert refused.status_code == 422 and "reason_code" in refused.get_json()["errors"]
    rejected = session.scalars(select(RejectedPair)).all()
    assert [(r.craftsman_id, r.apprentice_id) for r in rejected] == [
        (first["craftsman"]["id"], learner)
    ]
    # The next run: the apprentice is back in the pool, with the other master, never the first.
    second = _run_and_commit(client, world, learner)
    assert second["craftsman"]["id"] != first["craftsman"]["id"]
    session.expire_all()
    pairs = session.scalars(
        select(Mentorship).where(Mentorship.apprentice_id == learner).order_by(Mentorship.id)
    ).all()
    assert [(m.status, m.craftsman_id) for m in pairs] == [
        ("ended", first["craftsman"]["id"]),
        ("active", second["craftsman"]["id"]),
    ]


def test_renewal_moves_the_end_and_its_reminders(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    mentorship = factories.mentorship(
        session, world.sibling_unit, world.unit, date(2026, 1, 31), "R"
    )
    session.commit()
    url = f"{API}/mentorships/{mentorship.id}"
    coordinator = world.auth("coordinator")
    assert mentorship.ends_on == date(2027, 1, 31)
    # The 30-day notice of the first end date goes out.
    assert _jobs_run(app, "reminders", _local_nine(date(2027, 1, 1)))["term_ending"] == 2
    renewed = client.post(f"{url}/renew", json={"months": 1}, headers=coordinator)
    assert renewed.get_json()["ends_on"] == "2027-02-28"  # the 31st of a shorter month: its last
    bad = client.post(f"{url}/renew", json={"months": 13}, headers=coordinator)
    assert bad.status_code == 422 and "months" in bad.get_json()["errors"]
    # The new end date is reminded of again, 30 days before it.
    assert _jobs_run(app, "reminders", _local_nine(date(2027, 1, 29)))["term_ending"] == 2
    client.post(f"{url}/end", json={"reason_code": "left_unit"}, headers=coordinator)
    assert client.post(f"{url}/renew", json={"months": 1}, headers=coordinator).status_code == 409
    assert _jobs_run(app, "reminders", _local_nine(date(2027, 2, 21)))["term_ending"] == 0


def test_a_failed_assessment_is_corrected_to_a_pass_and_audited(
    client: FlaskClient, session: Session, world: World
) -> None:
    mentorship = factories.mentorship(
        session, world.sibling_unit, world.unit, date(2026, 1, 31), "A"
    )
    session.commit()
    url = f"{API}/mentorships/{mentorship.id}/assessment"
    coordinator = world.auth("coordinator")
    assert client.get(url, headers=coordinator).status_code == 404
    failed = {
        "theory": 50,
        "practice": 40,
        "skills": [],
        "evaluator": "考核组",
        "result": "fail",
        "comment": None,
    }
    made = client.post(url, json=failed, headers=coordinator).get_json()
    assert made["certificate"] is None
    assert (
        client.get(f"{API}/mentorships/{mentorship.id}", headers=coordinator).get_json()["status"]
        == "active"
    )
    out_of_range = client.put(url, json={**failed, "theory": 101}, headers=coordinator)
    assert out_of_range.status_code == 422 and "theory" in out_of_range.get_json()["errors"]
    corrected = client.put(
        url, json={**failed, "theory": 75, "practice": 80, "result": "pass"}, headers=coordinator
    )
    assert corrected.status_code == 200
    assert corrected.get_json()["certificate"]["code"]
    events = client.get(
        f"{API}/alliances/{world.alliance.id}/audit-events", headers=coordinator
    ).get_json()
    assert {"assessment.create", "assessment.correct"} <= {e["action"] for e in events}


def test_the_public_certificate_pages_are_rate_limited(app: Flask) -> None:
    limit = state(app).settings.public_rate_limit_per_minute
    visitor = app.test_client()
    answers = [visitor.get("/certificates/UNKNOWNCODE234").status_code for _ in range(limit + 1)]
    assert answers[:limit] == [404] * limit
    assert answers[limit] == 429


def test_check_ins_are_asked_after_the_first_summary_then_at_mid_term_once_each(
    session: Session, world: World
) -> None:
    from matcher.services.mentorships import SummaryInput, add_summary
    from matcher.services.programme_reminders import queue_programme_reminders

    mentorship = factories.mentorship(
        session, world.sibling_unit, world.unit, date(2026, 1, 31), "C"
    )
    add_summary(
        session,
        mentorship=mentorship,
        summary=SummaryInput(author="apprentice", content="总结", hours=2, skills=[]),
        submitted_by="test",
    )
    session.commit()

    def occasions() -> list[tuple[int | None, str]]:
        rows = session.scalars(select(Reminder).where(Reminder.kind == "check_in")).all()
        return sorted((r.period_index, r.recipient_role) for r in rows)

    # Before mid-term (2026-08-01): the first-summary check-in, to both, once.
    assert queue_programme_reminders(session, now=_local_nine(date(2026, 3, 5)))["check_in"] == 2
    assert queue_programme_reminders(session, now=_local_nine(date(2026, 3, 6)))["check_in"] == 0
    # From mid-term: the mid-term one, once; after the end of the term, nothing more.
    assert mentorship.mid_term_on == date(2026, 8, 1)
    assert queue_programme_reminders(session, now=_local_nine(date(2026, 8, 1)))["check_in"] == 2
    assert queue_programme_reminders(session, now=_local_nine(date(2026, 9, 1)))["check_in"] == 0
    assert occasions() == [(1, "apprentice"), (1, "craftsman"), (2, "apprentice"), (2, "craftsman")]
    # A pair older than its mid-term when first scanned is asked the mid-term question only.
    late = factories.mentorship(session, world.sibling_unit, world.unit, date(2025, 3, 1), "L")
    add_summary(
        session,
        mentorship=late,
        summary=SummaryInput(author="apprentice", content="总结", hours=2, skills=[]),
        submitted_by="test",
    )
    session.commit()
    assert queue_programme_reminders(session, now=_local_nine(date(2026, 1, 10)))["check_in"] == 2
    late_rows = session.scalars(
        select(Reminder).where(Reminder.kind == "check_in", Reminder.mentorship_id == late.id)
    ).all()
    assert {r.period_index for r in late_rows} == {2}
