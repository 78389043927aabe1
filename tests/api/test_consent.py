"""Cross-unit consent (privacy.md): recorded per person, honoured by matching and everything
another unit sees, and its withdrawal's effects. Every alliance here requires consent explicitly
(``factories.alliance`` does not by default, so that tests about other things need none)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.models import Alliance, AuditEvent, MatchRun, Mentorship, Proposal
from matcher.services import access
from matcher.services.consent import withdrawn_pairs
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"
GIVEN = {"given_at": "2026-03-01T09:30:00+08:00", "version": "1"}
GIVEN_UTC = "2026-03-01T01:30:00+00:00"


def require_consent(session: Session, alliance: Alliance) -> None:
    alliance.consent_required = True
    session.commit()


def put(client: FlaskClient, world: World, plural: str, external_id: str, body: Any) -> Any:
    return client.put(
        f"{API}/units/{world.unit.id}/{plural}/{external_id}", json=body, headers=world.auth("hr")
    )


def craftsman_body(**fields: Any) -> dict[str, Any]:
    return {"name": "李师傅", "skills": [{"name": "氩弧焊", "level": 5}], **fields}


def test_consent_is_sent_kept_when_left_out_and_withdrawn_by_null(
    client: FlaskClient, world: World
) -> None:
    created = put(client, world, "craftsmen", "K-1", craftsman_body())
    assert created.status_code == 201 and created.get_json()["cross_unit_consent"] is None
    given = put(client, world, "craftsmen", "K-1", craftsman_body(cross_unit_consent=GIVEN))
    assert given.get_json()["cross_unit_consent"] == {"given_at": GIVEN_UTC, "version": "1"}
    # A sync that does not know the field (PUT, PATCH, bulk) leaves the consent as recorded.
    kept = put(client, world, "craftsmen", "K-1", craftsman_body(name="李师傅二"))
    assert kept.get_json()["cross_unit_consent"] == {"given_at": GIVEN_UTC, "version": "1"}
    person_id = kept.get_json()["id"]
    patched = client.patch(
        f"{API}/craftsmen/{person_id}", json={"capacity": 3}, headers=world.auth("hr")
    )
    assert patched.get_json()["cross_unit_consent"] is not None
    bulk = client.post(
        f"{API}/units/{world.unit.id}/craftsmen/bulk",
        json=[{"external_id": "K-1", **craftsman_body(capacity=3)}],
        headers=world.auth("hr"),
    )
    assert bulk.get_json() == {"created": 0, "updated": 1, "unchanged": 0}
    read = client.get(f"{API}/craftsmen/{person_id}", headers=world.auth("hr")).get_json()
    assert read["cross_unit_consent"] == {"given_at": GIVEN_UTC, "version": "1"}
    withdrawn = client.patch(
        f"{API}/craftsmen/{person_id}", json={"cross_unit_consent": None}, headers=world.auth("hr")
    )
    assert withdrawn.get_json()["cross_unit_consent"] is None
    bulk = client.post(
        f"{API}/units/{world.unit.id}/apprentices/bulk",
        json=[{"external_id": "L-1", "name": "学徒", "cross_unit_consent": GIVEN}],
        headers=world.auth("hr"),
    )
    assert bulk.status_code == 200
    listed = client.get(f"{API}/units/{world.unit.id}/apprentices", headers=world.auth("hr"))
    by_id = {p["external_id"]: p for p in listed.get_json()}
    assert by_id["L-1"]["cross_unit_consent"] == {"given_at": GIVEN_UTC, "version": "1"}


@pytest.mark.parametrize(
    ("consent", "field"),
    [
        ({"given_at": "2026-03-01T09:30:00", "version": "1"}, "given_at"),  # no offset
        ({"given_at": "yesterday", "version": "1"}, "given_at"),
        ({"version": "1"}, "given_at"),
        ({"given_at": GIVEN["given_at"]}, "version"),
        ({"given_at": GIVEN["given_at"], "version": ""}, "version"),
        ({"given_at": GIVEN["given_at"], "version": "1\n2"}, "version"),
        ({**GIVEN, "by": "hr"}, "by"),
    ],
)
def test_a_malformed_consent_is_a_field_error_and_writes_nothing(
    client: FlaskClient, world: World, consent: Any, field: str
) -> None:
    response = put(client, world, "craftsmen", "K-2", craftsman_body(cross_unit_consent=consent))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["cross_unit_consent"]
    listed = client.get(f"{API}/units/{world.unit.id}/craftsmen", headers=world.auth("hr"))
    assert "K-2" not in {p["external_id"] for p in listed.get_json()}


def test_new_alliances_require_consent_and_coordinators_change_it_audited(
    client: FlaskClient, session: Session, world: World
) -> None:
    made = client.post(
        f"{API}/alliances", json={"code": "NEW", "name": "新联盟"}, headers=world.auth("admin")
    )
    assert made.status_code == 201
    assert made.get_json()["consent_required"] is True
    assert made.get_json()["consent_notice_version"] == "1"
    url = f"{API}/alliances/{world.alliance.id}"
    assert (
        client.get(url, headers=world.auth("coordinator")).get_json()["consent_required"] is False
    )
    changed = client.patch(
        url,
        json={"consent_required": True, "consent_notice_version": "2026-03"},
        headers=world.auth("coordinator"),
    )
    assert changed.status_code == 200
    assert (
        changed.get_json()["consent_required"],
        changed.get_json()["consent_notice_version"],
    ) == (
        True,
        "2026-03",
    )
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "alliance.consent_settings")
    ).one()
    assert event.data == {
        "from": {"consent_required": False, "consent_notice_version": "1"},
        "to": {"consent_required": True, "consent_notice_version": "2026-03"},
    }
    assert (
        client.patch(
            url, json={"consent_required": False}, headers=world.auth("foreign_coordinator")
        ).status_code
        == 404
    )
    assert (
        client.patch(url, json={"consent_required": False}, headers=world.auth("hr")).status_code
        == 403
    )


def test_the_notice_says_who_receives_what_in_both_languages(
    client: FlaskClient, world: World
) -> None:
    url = f"{API}/alliances/{world.alliance.id}/consent-notice"
    chinese = client.get(url, headers=world.auth("hr")).get_json()
    english = client.get(f"{url}?locale=en", headers=world.auth("coordinator")).get_json()
    assert chinese["locale"] == "zh-CN" and english["locale"] == "en"
    assert chinese["version"] == english["version"] == "1"
    assert "EMCA 工匠联盟" in chinese["title"] and "单独同意" in chinese["title"]
    for needle in ("个人信息保护法", "电子邮箱", "撤回", "协调员"):
        assert needle in chinese["text"]
    for needle in ("article 23", "email address", "withdraw", "coordinators"):
        assert needle in english["text"]
    assert client.get(f"{url}?locale=fr", headers=world.auth("hr")).status_code == 422
    # Of another alliance the notice does not exist for a key.
    for who in ("foreign_hr", "foreign_coordinator"):
        assert client.get(url, headers=world.auth(who)).status_code == 404


def _people(session: Session, world: World, *, consent: dict[str, bool]) -> dict[str, int]:
    """A craftsman and an apprentice in each of the two home units, consent as ``consent`` says
    by external id (default: given)."""
    ids: dict[str, int] = {}
    given = {"given_at": datetime(2026, 3, 1, tzinfo=UTC), "version": "1"}
    for unit in (world.unit, world.sibling_unit):
        for kind, item in (
            (CRAFTSMAN, factories.craftsman_item(f"C-{unit.code}-X", capacity=2)),
            (APPRENTICE, factories.apprentice_item(f"A-{unit.code}-X")),
        ):
            external_id = item["external_id"]
            item["cross_unit_consent"] = given if consent.get(external_id, True) else None
            ids[external_id] = upsert_people(session, kind=kind, unit=unit, items=[item]).ids[0]
    session.commit()
    return ids


def _consenting_pair(session: Session, world: World, tag: str) -> Mentorship:
    """An active pair (``MC-{tag}`` of the sibling unit, ``MA-{tag}`` of the unit), both of
    whom consented; committed."""
    consent = {"cross_unit_consent": {"given_at": datetime(2026, 1, 1, tzinfo=UTC), "version": "1"}}
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        datetime(2026, 2, 1, tzinfo=UTC).date(),
        tag,
        apprentice=dict(consent),
        craftsman=dict(consent),
    )
    session.commit()
    return pair


def _solve(session: Session, world: World) -> MatchRun:
    run = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=run)
    session.commit()
    return run


def test_without_consent_nobody_is_proposed_and_the_report_says_why(
    client: FlaskClient, session: Session, world: World
) -> None:
    require_consent(session, world.alliance)
    ids = _people(session, world, consent={"A-HZDJ-X": False, "C-HZDJ-X": False})
    run = _solve(session, world)
    auth = world.auth("coordinator")
    proposed = client.get(f"{API}/match-runs/{run.id}/proposals", headers=auth).get_json()
    # The world's own people (made before) never consented either: the one consenting
    # apprentice of another unit than the one consenting craftsman's is left with no one.
    assert proposed == []
    unmatched = client.get(f"{API}/match-runs/{run.id}/unmatched", headers=auth).get_json()
    reasons = {u["apprentice"]["id"]: u["reason_code"] for u in unmatched}
    assert reasons[ids["A-HZDJ-X"]] == "no_consent"
    assert reasons[world.apprentice_ids["HZDJ"]] == "no_consent"
    assert reasons[ids["A-XTDJ-X"]] == "no_eligible_craftsman"  # its only peer left out
    score = client.get(
        f"{API}/pair-score?craftsman_id={ids['C-HZDJ-X']}&apprentice_id={ids['A-XTDJ-X']}",
        headers=auth,
    ).get_json()
    assert (score["eligible"], score["forbidden_by"]) == (False, "craftsman_no_consent")


def test_with_consent_the_same_people_are_proposed(
    client: FlaskClient, session: Session, world: World
) -> None:
    require_consent(session, world.alliance)
    ids = _people(session, world, consent={})
    run = _solve(session, world)
    proposed = client.get(
        f"{API}/match-runs/{run.id}/proposals", headers=world.auth("coordinator")
    ).get_json()
    pairs = {(p["craftsman"]["id"], p["apprentice"]["id"]) for p in proposed}
    assert pairs == {
        (ids["C-XTDJ-X"], ids["A-HZDJ-X"]),
        (ids["C-HZDJ-X"], ids["A-XTDJ-X"]),
    }


def test_an_alliance_that_does_not_require_consent_matches_everyone(
    client: FlaskClient, session: Session, world: World
) -> None:
    ids = _people(session, world, consent={"A-HZDJ-X": False, "A-XTDJ-X": False})
    run = _solve(session, world)
    auth = world.auth("coordinator")
    proposed = client.get(f"{API}/match-runs/{run.id}/proposals", headers=auth).get_json()
    assert {ids["A-HZDJ-X"], ids["A-XTDJ-X"]} <= {p["apprentice"]["id"] for p in proposed}
    unmatched = client.get(f"{API}/match-runs/{run.id}/unmatched", headers=auth).get_json()
    assert "no_consent" not in {u["reason_code"] for u in unmatched}


def test_withdrawal_ends_open_proposals_audited_and_flags_the_active_pair(
    client: FlaskClient, session: Session, world: World
) -> None:
    require_consent(session, world.alliance)
    ids = _people(session, world, consent={})
    mentorship = _consenting_pair(session, world, "W")
    run = _solve(session, world)
    proposals = session.scalars(select(Proposal).where(Proposal.match_run_id == run.id)).all()
    involved = [p.id for p in proposals if p.apprentice_id == ids["A-HZDJ-X"]]
    others = [p.id for p in proposals if p.apprentice_id != ids["A-HZDJ-X"]]
    assert involved and others
    # The pair's apprentice and the proposed apprentice withdraw (one PUT each, as HR sends it).
    for external_id in ("A-HZDJ-X", "MA-W"):
        withdrawn = put(
            client,
            world,
            "apprentices",
            external_id,
            {"name": "学徒", "wants": [{"name": "焊接", "level": 3}], "cross_unit_consent": None},
        )
        assert withdrawn.status_code == 200, withdrawn.get_json()
    session.expire_all()
    for proposal in session.scalars(select(Proposal).where(Proposal.id.in_(involved))):
        assert proposal.status == "rejected" and "withdrawn" in (proposal.comment or "")
    assert {p.status for p in session.scalars(select(Proposal).where(Proposal.id.in_(others)))} == {
        "pending"
    }
    audited = session.scalars(
        select(AuditEvent.object_id).where(
            AuditEvent.object_type == "proposal", AuditEvent.actor == "consent-withdrawn:apprentice"
        )
    ).all()
    assert sorted(audited) == sorted(involved)
    # The coordinators may not approve it again; nor does "approve all" pick it up.
    proposal_id = involved[0]
    etag = client.get(f"{API}/proposals/{proposal_id}", headers=world.auth("coordinator")).headers[
        "ETag"
    ]
    refused = client.patch(
        f"{API}/proposals/{proposal_id}",
        json={"status": "approved"},
        headers=world.auth("coordinator") | {"If-Match": etag},
    )
    assert refused.status_code == 409
    bulk = client.post(
        f"{API}/match-runs/{run.id}/proposals/bulk",
        json={"status": "approved", "min_score": 0},
        headers=world.auth("coordinator"),
    )
    assert bulk.status_code == 200 and bulk.get_json()["changed"] == len(others)
    session.expire_all()
    assert session.get_one(Proposal, proposal_id).status == "rejected"
    # The active pair stays, flagged for the coordinators, with its history.
    pair = session.get_one(Mentorship, mentorship.id)
    assert pair.status == "active" and pair.consent_withdrawn_at is not None
    flagged = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "mentorship.consent_withdrawn")
    ).all()
    assert [(e.object_id, e.data) for e in flagged] == [
        (pair.id, {"apprentice_id": pair.apprentice_id})
    ]
    shown = client.get(f"{API}/mentorships/{pair.id}", headers=world.auth("coordinator")).get_json()
    assert shown["consent_withdrawn_at"] is not None and shown["status"] == "active"
    # Withdrawing again (already none) changes nothing further.
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    again = put(
        client,
        world,
        "apprentices",
        "MA-W",
        {"name": "学徒", "wants": [{"name": "焊接", "level": 3}], "cross_unit_consent": None},
    )
    assert again.status_code == 200
    assert session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == before


def test_another_units_hr_key_sees_no_one_without_consent(
    client: FlaskClient, session: Session, world: World
) -> None:
    require_consent(session, world.alliance)
    consent = {"given_at": datetime(2026, 1, 1, tzinfo=UTC), "version": "1"}
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        datetime(2026, 2, 1, tzinfo=UTC).date(),
        "V",
        craftsman={"cross_unit_consent": consent},  # the apprentice (home unit) gave none
    )
    session.commit()
    sibling = client.get(f"{API}/mentorships/{pair.id}", headers=world.auth("sibling_hr"))
    body = sibling.get_json()
    assert body["apprentice"] == {"id": pair.apprentice_id, "name": None, "unit_id": world.unit.id}
    assert body["craftsman"]["name"] == "师傅V"
    listed = client.get(f"{API}/mentorships", headers=world.auth("sibling_hr")).get_json()
    assert [m["apprentice"]["name"] for m in listed] == [None]
    assert "学徒V" not in sibling.get_data(as_text=True)
    # Its own unit and the coordinators see both; nobody of another unit reads the person.
    own = client.get(f"{API}/mentorships/{pair.id}", headers=world.auth("hr")).get_json()
    assert own["apprentice"]["name"] == "学徒V"
    coordinator = client.get(
        f"{API}/mentorships/{pair.id}", headers=world.auth("coordinator")
    ).get_json()
    assert coordinator["apprentice"]["name"] == "学徒V"
    for path in (f"/apprentices/{pair.apprentice_id}", f"/units/{world.unit.id}/apprentices"):
        assert client.get(f"{API}{path}", headers=world.auth("sibling_hr")).status_code == 404


def test_the_allowlist_is_what_another_unit_sees(session: Session, world: World) -> None:
    require_consent(session, world.alliance)
    pair = factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        datetime(2026, 2, 1, tzinfo=UTC).date(),
        "S",
        craftsman={
            "cross_unit_consent": {"given_at": datetime(2026, 1, 1, tzinfo=UTC), "version": "1"},
            "honours": ["大国工匠"],
        },
    )
    session.commit()
    craftsman = pair.craftsman
    shown = access.shown_across_units(craftsman)
    assert shown == {
        "name": "师傅S",
        "unit": {"id": world.sibling_unit.id, "name": "XTDJ 电机有限公司"},
        "skills": [{"name": "氩弧焊", "level": 5}],
        "region": "杭州",
        "honours": ["大国工匠"],
    }
    text = repr(shown)
    for secret in (craftsman.email, craftsman.external_id, craftsman.locale):
        assert secret not in text
    assert access.shown_across_units(pair.apprentice) is None  # no consent
    # Its own unit, and the coordinators, still see the apprentice's name.
    own = access.shown_to_unit(pair.apprentice, world.unit.id)
    assert own is not None and own["name"] == "学徒S"
    assert access.shown_to_unit(pair.apprentice, world.sibling_unit.id) is None
    # Where the alliance does not require consent, the allowlist applies alike.
    world.alliance.consent_required = False
    session.commit()
    across = access.shown_across_units(pair.apprentice)
    assert across is not None and set(across) == set(access.CROSS_UNIT_FIELDS)


def test_consenting_again_takes_the_flag_back_once_both_consent(
    client: FlaskClient, session: Session, world: World
) -> None:
    require_consent(session, world.alliance)
    pair = _consenting_pair(session, world, "R")
    apprentice = {"name": "学徒R", "wants": [{"name": "焊接", "level": 3}]}
    craftsman = craftsman_body(name="师傅R")

    def send(plural: str, external_id: str, body: Any, consent: Any, who: str) -> None:
        unit = world.unit if who == "hr" else world.sibling_unit
        sent = client.put(
            f"{API}/units/{unit.id}/{plural}/{external_id}",
            json=body | {"cross_unit_consent": consent},
            headers=world.auth(who),
        )
        assert sent.status_code == 200, sent.get_json()

    def flagged() -> bool:
        shown = client.get(f"{API}/mentorships/{pair.id}", headers=world.auth("coordinator"))
        return shown.get_json()["consent_withdrawn_at"] is not None

    # Both withdraw: the pair is flagged for the coordinators.
    send("apprentices", "MA-R", apprentice, None, "hr")
    send("craftsmen", "MC-R", craftsman, None, "sibling_hr")
    assert flagged()
    # The apprentice consents again, the craftsman not yet: still flagged.
    send("apprentices", "MA-R", apprentice, GIVEN, "hr")
    assert flagged()
    # Both again: the request to end the pair is taken back, audited once.
    send("craftsmen", "MC-R", craftsman, GIVEN, "sibling_hr")
    assert not flagged()
    restored = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "mentorship.consent_restored")
    ).all()
    assert [(e.object_id, e.actor, e.data) for e in restored] == [
        (pair.id, "consent-given:craftsman", {"craftsman_id": pair.craftsman_id})
    ]
    session.expire_all()
    assert session.get_one(Mentorship, pair.id).status == "active"
    assert withdrawn_pairs(session, alliance_id=world.alliance.id) == []  # off the overview
