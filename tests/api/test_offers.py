"""Offers over the API (programme.md, "Two-way choice"): the alliance's setting, commit making
offers, accepting and declining for a craftsman, the slot an open offer holds, the events."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.errors import Conflict
from matcher.models import (
    ApiKey,
    Apprentice,
    AuditEvent,
    Craftsman,
    MatchRun,
    Mentorship,
    Offer,
    Proposal,
    RejectedPair,
    UnmatchedApprentice,
    WebhookEvent,
)
from matcher.services.access import Principal
from matcher.services.capacity import free_slots
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.offers import accept_offer, end_open_offers_of
from matcher.services.people import APPRENTICE, upsert_people
from matcher.services.review import decide_many
from matcher.services.webhooks import create_endpoint
from tests.factories import World, apprentice_item

API = "/api/v1"


def require_consent(client: FlaskClient, world: World, **settings: Any) -> Any:
    body = {"craftsman_consent": "required", **settings}
    return client.patch(
        f"{API}/alliances/{world.alliance.id}", json=body, headers=world.auth("coordinator")
    )


def approved_run(session: Session, world: World) -> MatchRun:
    """A run of the home alliance with every proposal approved."""
    run = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=run)
    decide_many(session, run=run, status="approved", comment=None, actor="t")
    session.commit()
    return run


def commit(client: FlaskClient, world: World, run: MatchRun) -> Any:
    return client.post(f"{API}/match-runs/{run.id}/commit", headers=world.auth("coordinator"))


def offered(client: FlaskClient, session: Session, world: World) -> list[dict[str, Any]]:
    """Consent required, a run committed: its offers as the coordinator lists them."""
    assert require_consent(client, world).status_code == 200
    run = approved_run(session, world)
    response = commit(client, world, run)
    assert response.status_code == 200, response.get_json()
    listed = client.get(f"{API}/offers", headers=world.auth("coordinator")).get_json()
    assert response.get_json()["offers_created"] == len(listed) > 0
    return listed


def test_the_consent_settings_are_the_coordinators_to_change_within_bounds(
    client: FlaskClient, world: World
) -> None:
    read = client.get(f"{API}/alliances/{world.alliance.id}", headers=world.auth("coordinator"))
    assert read.get_json()["craftsman_consent"] == "not_required"
    assert read.get_json()["offer_expires_days"] == 7
    changed = require_consent(client, world, offer_expires_days=14)
    assert changed.status_code == 200
    assert changed.get_json()["craftsman_consent"] == "required"
    assert changed.get_json()["offer_expires_days"] == 14
    for bad in ({"offer_expires_days": 0}, {"offer_expires_days": 31}, {"craftsman_consent": "x"}):
        refused = client.patch(
            f"{API}/alliances/{world.alliance.id}", json=bad, headers=world.auth("coordinator")
        )
        assert refused.status_code == 422
        assert set(refused.get_json()["errors"]) == set(bad)


def test_commit_without_consent_starts_the_pairs_as_before(
    client: FlaskClient, session: Session, world: World
) -> None:
    run = approved_run(session, world)
    result = commit(client, world, run).get_json()
    assert result["mentorships_created"] > 0 and result["offers_created"] == 0
    assert client.get(f"{API}/offers", headers=world.auth("coordinator")).get_json() == []


def test_commit_with_consent_required_offers_each_pair_and_starts_none(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 0
    approved = session.execute(
        select(Proposal.id, Proposal.craftsman_id, Proposal.apprentice_id).where(
            Proposal.status == "approved"
        )
    ).all()
    assert sorted(
        (o["proposal_id"], o["craftsman"]["id"], o["apprentice"]["id"]) for o in offers
    ) == (sorted(tuple(row) for row in approved))
    for offer in offers:
        assert offer["status"] == "offered" and offer["answered_at"] is None
        offered_at = datetime.fromisoformat(offer["offered_at"])
        assert datetime.fromisoformat(offer["expires_at"]) - offered_at == timedelta(days=7)
        one = client.get(f"{API}/offers/{offer['id']}", headers=world.auth("coordinator"))
        assert one.get_json() == offer
    # Committing again says what the first commit did.
    run_id = session.scalar(
        select(Proposal.match_run_id).where(Proposal.id == offers[0]["proposal_id"])
    )
    again = commit(client, world, session.get_one(MatchRun, run_id)).get_json()
    assert again["already_committed"] and again["offers_created"] == len(offers)


def test_hr_sees_the_offers_of_its_own_people_only(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    home = world.unit.id
    mine = {
        o["id"] for o in offers if home in (o["craftsman"]["unit_id"], o["apprentice"]["unit_id"])
    }
    listed = client.get(f"{API}/offers?page_size=100", headers=world.auth("hr")).get_json()
    assert {o["id"] for o in listed} == mine
    assert client.get(f"{API}/offers", headers=world.auth("foreign_hr")).get_json() == []
    assert client.get(f"{API}/offers", headers=world.auth("foreign_coordinator")).get_json() == []
    by_status = client.get(f"{API}/offers?status=accepted", headers=world.auth("coordinator"))
    assert by_status.get_json() == []
    bad = client.get(f"{API}/offers?status=maybe", headers=world.auth("coordinator"))
    assert bad.status_code == 422 and "status" in bad.get_json()["errors"]


def test_accepting_starts_the_pair_once_and_again_changes_nothing(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer = offered(client, session, world)[0]
    url = f"{API}/offers/{offer['id']}/accept"
    first = client.post(url, headers=world.auth("coordinator"))
    assert first.status_code == 200, first.get_json()
    accepted = first.get_json()
    assert accepted["status"] == "accepted" and accepted["mentorship_id"]
    mentorship = session.get_one(Mentorship, accepted["mentorship_id"])
    assert (mentorship.craftsman_id, mentorship.apprentice_id, mentorship.proposal_id) == (
        offer["craftsman"]["id"],
        offer["apprentice"]["id"],
        offer["proposal_id"],
    )
    second = client.post(url, headers=world.auth("coordinator"))
    assert second.status_code == 200 and second.get_json() == accepted
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 1
    # Audited with the coordinator's name; declining an accepted offer is a conflict.
    audits = session.scalars(select(AuditEvent).where(AuditEvent.action == "offer.accept")).all()
    key_id = session.scalar(
        select(ApiKey.id).where(
            ApiKey.role == "coordinator", ApiKey.alliance_id == world.alliance.id
        )
    )
    assert [a.actor for a in audits] == [f"coordinator-key:{key_id}"]
    declined = client.post(
        f"{API}/offers/{offer['id']}/decline", json={}, headers=world.auth("coordinator")
    )
    assert declined.status_code == 409


def test_the_pair_starts_on_the_alliances_date_of_the_acceptance(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer_id = offered(client, session, world)[0]["id"]
    # 17:30 UTC on 3 March is 01:30 on 4 March in Asia/Shanghai.
    late = datetime(2026, 3, 3, 17, 30, tzinfo=UTC)
    offer = session.get_one(Offer, offer_id)
    offer.offered_at, offer.expires_at = late - timedelta(days=1), late + timedelta(days=6)
    session.commit()
    accept_offer(session, offer=offer, actor="t", now=late)
    session.commit()
    mentorship = session.get_one(Mentorship, offer.mentorship_id)
    assert mentorship.started_on == date(2026, 3, 4)
    assert mentorship.next_due_on == date(2026, 3, 4) + timedelta(days=30)


def test_declining_remembers_the_pair_and_answers_after_it_are_conflicts(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer = offered(client, session, world)[0]
    declined = client.post(
        f"{API}/offers/{offer['id']}/decline",
        json={"reason": "这段时间在外地出差"},
        headers=world.auth("coordinator"),
    )
    assert declined.status_code == 200
    assert declined.get_json()["status"] == "declined"
    assert declined.get_json()["reason"] == "这段时间在外地出差"
    rejected = session.scalars(select(RejectedPair)).one()
    assert (rejected.craftsman_id, rejected.apprentice_id, rejected.cleared_at) == (
        offer["craftsman"]["id"],
        offer["apprentice"]["id"],
        None,
    )
    for answer in ("accept", "decline"):
        again = client.post(
            f"{API}/offers/{offer['id']}/{answer}", json={}, headers=world.auth("coordinator")
        )
        assert again.status_code == 409, answer
        assert again.mimetype == "application/problem+json"
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 0
    # The next run does not propose the declined pair again.
    run = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=run)
    pairs = session.execute(
        select(Proposal.craftsman_id, Proposal.apprentice_id).where(Proposal.match_run_id == run.id)
    ).all()
    assert (offer["craftsman"]["id"], offer["apprentice"]["id"]) not in [tuple(p) for p in pairs]


def test_a_reason_too_long_or_of_the_wrong_type_is_a_422_naming_it(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer = offered(client, session, world)[0]
    for reason in ("长" * 2001, 5):
        refused = client.post(
            f"{API}/offers/{offer['id']}/decline",
            json={"reason": reason},
            headers=world.auth("coordinator"),
        )
        assert refused.status_code == 422 and "reason" in refused.get_json()["errors"]
    assert session.get_one(Offer, offer["id"]).status == "offered"


def test_an_expired_offer_cannot_be_answered_even_before_the_job_marks_it(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer_id = offered(client, session, world)[0]["id"]
    offer = session.get_one(Offer, offer_id)
    offer.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    session.commit()
    refused = client.post(f"{API}/offers/{offer_id}/accept", headers=world.auth("coordinator"))
    assert refused.status_code == 409 and "expired" in refused.get_json()["detail"]


def test_an_open_offer_holds_the_craftsmans_slot_in_later_runs(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    craftsman_ids = {o["craftsman"]["id"] for o in offers}

    def free() -> dict[int, int]:
        session.expire_all()
        return dict(
            session.execute(
                select(Craftsman.id, free_slots()).where(Craftsman.id.in_(craftsman_ids))
            ).all()
        )

    held = free()
    for craftsman_id in craftsman_ids:
        capacity = session.get_one(Craftsman, craftsman_id).capacity
        count = sum(o["craftsman"]["id"] == craftsman_id for o in offers)
        assert held[craftsman_id] == capacity - count
    # Declined, the slot is free again; accepted, the mentorship holds it instead.
    first, *_ = offers
    client.post(f"{API}/offers/{first['id']}/decline", json={}, headers=world.auth("coordinator"))
    assert free()[first["craftsman"]["id"]] == held[first["craftsman"]["id"]] + 1


def test_a_full_craftsman_with_open_offers_is_left_out_of_the_next_run(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    taken = {o["craftsman"]["id"] for o in offers}
    for craftsman_id in taken:
        craftsman = session.get_one(Craftsman, craftsman_id)
        craftsman.capacity = sum(o["craftsman"]["id"] == craftsman_id for o in offers)
    # New apprentices of both units who want what the offered craftsmen teach.
    newcomers = [
        upsert_people(
            session, kind=APPRENTICE, unit=unit, items=[apprentice_item(f"NEW-{unit.code}")]
        ).ids[0]
        for unit in (world.unit, world.sibling_unit)
    ]
    session.commit()
    run = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=run)
    proposals = session.execute(
        select(Proposal.craftsman_id, Proposal.apprentice_id).where(Proposal.match_run_id == run.id)
    ).all()
    assert not {c for c, _ in proposals} & taken
    # The offered apprentices wait for their answer: not proposed again either.
    assert not {a for _, a in proposals} & {o["apprentice"]["id"] for o in offers}
    unmatched = dict(
        session.execute(
            select(UnmatchedApprentice.apprentice_id, UnmatchedApprentice.reason_code).where(
                UnmatchedApprentice.match_run_id == run.id
            )
        ).all()
    )
    assert set(unmatched) == set(newcomers)
    # Declined, the slot is free again for the same newcomers.
    session.execute(update(MatchRun).where(MatchRun.id == run.id).values(status="failed"))
    session.commit()
    declined = client.post(
        f"{API}/offers/{offers[0]['id']}/decline", json={}, headers=world.auth("coordinator")
    )
    assert declined.status_code == 200, declined.get_json()
    again = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=again)
    assert offers[0]["craftsman"]["id"] in set(
        session.scalars(select(Proposal.craftsman_id).where(Proposal.match_run_id == again.id))
    )


def test_offer_events_go_to_the_alliances_webhooks(
    client: FlaskClient, session: Session, world: World
) -> None:
    create_endpoint(
        session,
        owner=Principal(role="coordinator", alliance_id=world.alliance.id),
        url="https://portal.example.cn/hooks",
        events=["offer.created", "offer.answered"],
        description=None,
        allow_private=False,
        https_only=True,
    )
    session.commit()
    offers = offered(client, session, world)
    client.post(
        f"{API}/offers/{offers[0]['id']}/decline",
        json={"reason": "私人原因"},
        headers=world.auth("coordinator"),
    )
    events = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert [e.type for e in events] == ["offer.created"] * len(offers) + ["offer.answered"]
    answered = events[-1].payload["data"]
    assert answered["offer_id"] == offers[0]["id"] and answered["status"] == "declined"
    assert answered["craftsman"]["id"] == offers[0]["craftsman"]["id"]
    assert "私人原因" not in str(events[-1].payload)  # no free text in events (webhooks.md)


def test_withdrawn_consent_ends_a_persons_open_offers(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    craftsman_id = offers[0]["craftsman"]["id"]
    theirs = {o["id"] for o in offers if o["craftsman"]["id"] == craftsman_id}
    assert end_open_offers_of(
        session, craftsman_ids=[craftsman_id], reason="consent withdrawn"
    ) == len(theirs)
    session.commit()
    assert end_open_offers_of(session, craftsman_ids=[craftsman_id], reason="again") == 0
    for offer in session.scalars(select(Offer)):
        ended = offer.id in theirs
        assert offer.status == ("expired" if ended else "offered")
        assert offer.reason == ("consent withdrawn" if ended else None)
    assert session.scalar(select(func.count()).select_from(RejectedPair)) == 0
    with pytest.raises(Conflict):
        accept_offer(session, offer=session.get_one(Offer, min(theirs)), actor="t")


def test_a_nightly_sync_lists_the_offers_answered_since(
    client: FlaskClient, session: Session, world: World
) -> None:
    offers = offered(client, session, world)
    since = datetime.now(UTC)
    # Made before ``since``, as if by yesterday's commit.
    session.execute(update(Offer).values(updated_at=since - timedelta(days=1)))
    session.commit()
    query = {"updated_since": since.isoformat()}
    headers = world.auth("coordinator")
    assert client.get(f"{API}/offers", query_string=query, headers=headers).get_json() == []
    client.post(f"{API}/offers/{offers[0]['id']}/accept", headers=headers)
    changed = client.get(f"{API}/offers", query_string=query, headers=headers).get_json()
    assert [o["id"] for o in changed] == [offers[0]["id"]]


def test_two_acceptances_at_once_start_one_mentorship(
    client: FlaskClient, session: Session, world: World
) -> None:
    offer = offered(client, session, world)[0]
    barrier = threading.Barrier(2)
    answers: list[tuple[int, Any]] = []

    def accept() -> None:
        other = client.application.test_client()
        barrier.wait()
        response = other.post(
            f"{API}/offers/{offer['id']}/accept", headers=world.auth("coordinator")
        )
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1] == answers[1][1]  # the same answer, the same mentorship
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 1


def test_withdrawing_cross_unit_consent_over_the_api_ends_the_open_offers(
    client: FlaskClient, session: Session, world: World
) -> None:
    """privacy.md: a craftsman's HR system withdraws their consent; their open offers end (not
    remembered as rejected), the other craftsmen's stay open."""
    offers = offered(client, session, world)
    craftsman_id = offers[0]["craftsman"]["id"]
    craftsman = session.get_one(Craftsman, craftsman_id)
    hr = next(
        who
        for who, unit in (("hr", world.unit), ("sibling_hr", world.sibling_unit))
        if unit.id == craftsman.unit_id
    )
    given = {"given_at": "2026-11-02T09:00:00+08:00", "version": "1"}
    for consent in (given, None):  # given (the factories' people carry none), then withdrawn
        withdrawn = client.patch(
            f"{API}/craftsmen/{craftsman_id}",
            json={"cross_unit_consent": consent},
            headers=world.auth(hr),
        )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    session.expire_all()
    for offer in session.scalars(select(Offer)):
        theirs = offer.craftsman_id == craftsman_id
        assert offer.status == ("expired" if theirs else "offered")
    assert not session.scalars(
        select(RejectedPair).where(RejectedPair.craftsman_id == craftsman_id)
    ).all()


def test_erasing_a_person_ends_their_open_offers(
    client: FlaskClient, session: Session, world: World
) -> None:
    """privacy.md: an erased apprentice answers no offer; theirs ends, the others stay open."""
    offers = offered(client, session, world)
    apprentice_id = offers[0]["apprentice"]["id"]
    apprentice = session.get_one(Apprentice, apprentice_id)
    hr = next(
        who
        for who, unit in (("hr", world.unit), ("sibling_hr", world.sibling_unit))
        if unit.id == apprentice.unit_id
    )
    erased = client.post(f"{API}/apprentices/{apprentice_id}/erase", headers=world.auth(hr))
    assert erased.status_code == 200, erased.get_json()
    assert erased.get_json()["rows"]["offers_ended"] == 1
    session.expire_all()
    for offer in session.scalars(select(Offer)):
        assert offer.status == ("expired" if offer.apprentice_id == apprentice_id else "offered")
