"""Review over the API: ETag / If-Match decisions, re-validated swaps, bulk, CSV, commit."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.models import AuditEvent, MatchRun, Mentorship, RejectedPair, Unit
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


@pytest.fixture
def run(session: Session, world: World) -> MatchRun:
    """A proposed run of the home alliance: two craftsmen per unit, four apprentices per unit."""
    for unit in (world.unit, world.sibling_unit):
        upsert_people(
            session,
            kind=CRAFTSMAN,
            unit=unit,
            items=[
                factories.craftsman_item(
                    f"M-{unit.code}-{i}", skills=[{"name": "氩弧焊", "level": 5 - i}], capacity=1
                )
                for i in range(2)
            ],
        )
        upsert_people(
            session,
            kind=APPRENTICE,
            unit=unit,
            items=[
                factories.apprentice_item(
                    f"L-{unit.code}-{i}", wants=[{"name": "氩弧焊", "level": 3, "weight": 1.0}]
                )
                for i in range(4)
            ],
        )
    run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    session.commit()
    assert run.status == "proposed"
    return run


def proposals(client: FlaskClient, world: World, run: MatchRun) -> list[dict[str, Any]]:
    response = client.get(f"{API}/match-runs/{run.id}/proposals", headers=world.auth("coordinator"))
    assert response.status_code == 200
    return response.get_json()


def read(client: FlaskClient, world: World, proposal_id: int) -> tuple[dict[str, Any], str]:
    response = client.get(f"{API}/proposals/{proposal_id}", headers=world.auth("coordinator"))
    return response.get_json(), response.headers["ETag"]


def patch(client: FlaskClient, world: World, proposal_id: int, body: Any, etag: str | None) -> Any:
    headers = world.auth("coordinator") | ({"If-Match": etag} if etag else {})
    return client.patch(f"{API}/proposals/{proposal_id}", json=body, headers=headers)


def test_a_decision_needs_if_match_and_a_stale_etag_is_refused(
    client: FlaskClient, world: World, run: MatchRun
) -> None:
    first = proposals(client, world, run)[0]
    assert patch(client, world, first["id"], {"status": "approved"}, None).status_code == 428
    _, etag = read(client, world, first["id"])
    approved = patch(client, world, first["id"], {"status": "approved", "comment": "好"}, etag)
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "approved" and approved.get_json()["comment"] == "好"
    assert approved.headers["ETag"] != etag
    # A second coordinator still holding the old ETag cannot overwrite silently.
    stale = patch(client, world, first["id"], {"status": "rejected"}, etag)
    assert stale.status_code == 412
    assert read(client, world, first["id"])[0]["status"] == "approved"


# If-Match as RFC 9110 §13.1.1 reads it: "*" or a list of entity tags, compared strongly.
# "{tag}" stands for the proposal's current ETag, "{weak}" for it marked weak.
IF_MATCH_CASES = [
    ("{tag}", 200),
    ("*", 200),
    ('"p0v0", {tag}', 200),
    ('{tag}, "p0v0"', 200),
    ('"p0v0" ,{tag} , ', 200),
    ('"a,b", {tag}', 200),  # a comma inside a tag is part of the tag
    ("{weak}", 412),  # weak tags never match If-Match
    ('"p0v0", {weak}', 412),
    ('"p0v0"', 412),
    ('"p0v0", "p0v1"', 412),
    ("{bare}", 412),  # an unquoted tag is not an entity tag
    ("{tag} {tag}", 412),  # two tags without a comma: not a list
    ("*, {tag}", 412),  # "*" stands alone
]


@pytest.mark.parametrize(("if_match", "status"), IF_MATCH_CASES)
def test_if_match_takes_any_listed_strong_etag_or_a_star(
    client: FlaskClient, world: World, run: MatchRun, if_match: str, status: int
) -> None:
    first = proposals(client, world, run)[0]
    _, etag = read(client, world, first["id"])
    value = if_match.format(tag=etag, weak=f"W/{etag}", bare=etag.strip('"'))
    response = patch(client, world, first["id"], {"status": "approved"}, value)
    assert response.status_code == status, (value, response.get_data(as_text=True))
    decided = read(client, world, first["id"])[0]["status"]
    assert decided == ("approved" if status == 200 else "pending")


def test_rejection_is_remembered_and_audited(
    client: FlaskClient, session: Session, world: World, run: MatchRun
) -> None:
    first = proposals(client, world, run)[0]
    _, etag = read(client, world, first["id"])
    assert (
        patch(
            client, world, first["id"], {"status": "rejected", "comment": "技能不对口"}, etag
        ).status_code
        == 200
    )
    rejected = session.scalars(select(RejectedPair)).one()
    assert (rejected.craftsman_id, rejected.apprentice_id) == (
        first["craftsman"]["id"],
        first["apprentice"]["id"],
    )
    listed = client.get(
        f"{API}/alliances/{world.alliance.id}/rejected-pairs", headers=world.auth("coordinator")
    )
    assert [r["id"] for r in listed.get_json()] == [rejected.id]
    events = client.get(
        f"{API}/alliances/{world.alliance.id}/audit-events?object_type=proposal",
        headers=world.auth("coordinator"),
    ).get_json()
    assert (
        events[0]["action"] == "proposal.rejected" and events[0]["data"]["comment"] == "技能不对口"
    )
    assert events[0]["actor"].startswith("coordinator")

    # The next run never proposes the rejected pair; clearing it allows it again.
    second = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=second)
    session.commit()
    pairs = {
        (p["craftsman"]["id"], p["apprentice"]["id"]) for p in proposals(client, world, second)
    }
    assert (rejected.craftsman_id, rejected.apprentice_id) not in pairs
    cleared = client.delete(
        f"{API}/rejected-pairs/{rejected.id}", headers=world.auth("coordinator")
    )
    assert cleared.status_code == 204
    assert (
        client.get(
            f"{API}/alliances/{world.alliance.id}/rejected-pairs", headers=world.auth("coordinator")
        ).get_json()
        == []
    )


def test_swap_is_revalidated(
    client: FlaskClient, session: Session, world: World, run: MatchRun
) -> None:
    listed = proposals(client, world, run)
    target = listed[0]
    apprentice_unit = target["apprentice"]["unit_id"]
    own_unit = next(
        p["craftsman"]["id"] for p in listed if p["craftsman"]["unit_id"] == apprentice_unit
    )
    busy = next(
        p["craftsman"]["id"]
        for p in listed
        if p["craftsman"]["unit_id"] != apprentice_unit
        and p["craftsman"]["id"] != target["craftsman"]["id"]
    )
    _, etag = read(client, world, target["id"])
    same_unit = patch(client, world, target["id"], {"craftsman_id": own_unit}, etag)
    assert (
        same_unit.status_code == 422
        and "own unit" in same_unit.get_json()["errors"]["craftsman_id"][0]
    )
    full = patch(client, world, target["id"], {"craftsman_id": busy}, etag)
    assert full.status_code == 422 and "capacity" in full.get_json()["errors"]["craftsman_id"][0]
    foreign = patch(
        client, world, target["id"], {"craftsman_id": world.craftsman_ids["FRGN"]}, etag
    )
    assert foreign.status_code == 422

    free_unit = world.sibling_unit if apprentice_unit == world.unit.id else world.unit
    # A rejected pair stays refused even when its fit is also below min_fit (the verdict would
    # name only the first constraint it breaks).
    unrelated = factories.craftsman_item("CNC", skills=[{"name": "数控车削", "level": 5}])
    cnc_id = upsert_people(session, kind=CRAFTSMAN, unit=free_unit, items=[unrelated]).ids[0]
    session.add(RejectedPair(craftsman_id=cnc_id, apprentice_id=target["apprentice"]["id"]))
    session.commit()
    rejected = patch(client, world, target["id"], {"craftsman_id": cnc_id}, etag)
    assert rejected.status_code == 422
    assert "rejected before" in rejected.get_json()["errors"]["craftsman_id"][0]

    free = factories.craftsman_item("FREE", skills=[{"name": "焊接", "level": 4}], capacity=1)
    free_id = upsert_people(session, kind=CRAFTSMAN, unit=free_unit, items=[free]).ids[0]
    session.commit()
    swapped = patch(client, world, target["id"], {"craftsman_id": free_id}, etag)
    assert swapped.status_code == 200, swapped.get_json()
    body = swapped.get_json()
    assert body["craftsman"]["id"] == free_id and body["status"] == "pending"
    assert body["fit"] == pytest.approx(
        0.5
    )  # 焊接 is the parent of the wanted 氩弧焊: related credit
    assert body["explanation"][0]["craftsman_skill"] == "焊接"
    assert (
        patch(
            client, world, target["id"], {"craftsman_id": free_id, "comment": "x"}, "*"
        ).status_code
        == 422
    )


def test_bulk_decisions_by_ids_and_by_min_score(
    client: FlaskClient, world: World, run: MatchRun
) -> None:
    listed = proposals(client, world, run)
    url = f"{API}/match-runs/{run.id}/proposals/bulk"
    response = client.post(
        url,
        json={"ids": [listed[0]["id"]], "status": "rejected"},
        headers=world.auth("coordinator"),
    )
    assert response.get_json() == {"changed": 1}
    response = client.post(
        url, json={"min_score": 0.0, "status": "approved"}, headers=world.auth("coordinator")
    )
    assert response.get_json() == {"changed": len(listed)}
    assert {p["status"] for p in proposals(client, world, run)} == {"approved"}
    both = client.post(
        url,
        json={"ids": [1], "min_score": 1, "status": "approved"},
        headers=world.auth("coordinator"),
    )
    assert both.status_code == 422
    unknown = client.post(
        url, json={"ids": [999999], "status": "approved"}, headers=world.auth("coordinator")
    )
    assert unknown.status_code == 422


def test_csv_export_opens_in_excel(client: FlaskClient, world: World, run: MatchRun) -> None:
    response = client.get(
        f"{API}/match-runs/{run.id}/proposals.csv", headers=world.auth("coordinator")
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("proposal_id,status,score")
    assert len(lines) == 1 + len(proposals(client, world, run))
    assert "氩弧焊" in lines[1]


def commit(client: FlaskClient, world: World, run: MatchRun) -> Any:
    return client.post(f"{API}/match-runs/{run.id}/commit", headers=world.auth("coordinator"))


def test_commit_turns_approved_proposals_into_mentorships_once(
    client: FlaskClient, session: Session, world: World, run: MatchRun
) -> None:
    listed = proposals(client, world, run)
    url = f"{API}/match-runs/{run.id}/proposals/bulk"
    client.post(
        url,
        json={"ids": [p["id"] for p in listed[:2]], "status": "approved"},
        headers=world.auth("coordinator"),
    )
    first = commit(client, world, run)
    assert first.status_code == 200
    assert (
        first.get_json()["mentorships_created"] == 2
        and first.get_json()["run"]["status"] == "committed"
    )
    again = commit(client, world, run)
    assert again.status_code == 200 and again.get_json()["already_committed"] is True
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 2
    # A committed run's proposals no longer change.
    _, etag = read(client, world, listed[2]["id"])
    assert patch(client, world, listed[2]["id"], {"status": "approved"}, etag).status_code == 409
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "match_run.commit")
        )
        == 1
    )


def test_commit_refuses_when_the_data_moved(
    client: FlaskClient, session: Session, world: World, run: MatchRun
) -> None:
    listed = proposals(client, world, run)
    approve = {"ids": [listed[0]["id"]], "status": "approved"}
    client.post(
        f"{API}/match-runs/{run.id}/proposals/bulk", json=approve, headers=world.auth("coordinator")
    )
    craftsman_id = listed[0]["craftsman"]["id"]
    assert (
        client.delete(f"{API}/craftsmen/{craftsman_id}", headers=world.auth("admin")).status_code
        == 204
    )
    refused = commit(client, world, run)
    assert refused.status_code == 409
    name, unit = (
        listed[0]["craftsman"]["name"],
        session.get(Unit, listed[0]["craftsman"]["unit_id"]),
    )
    assert unit is not None
    assert (
        f"Craftsman {name} (#{craftsman_id}, {unit.name}) is inactive"
        in refused.get_json()["detail"]
    )
    assert refused.get_json()["errors"]["conflicts"] == [
        {
            "kind": "craftsman_inactive",
            "person_id": craftsman_id,
            "name": name,
            "unit": unit.name,
            "free": 0,
            "wanted": 0,
        }
    ]
    assert session.scalar(select(func.count()).select_from(Mentorship)) == 0
    assert session.get(MatchRun, run.id).status == "proposed"  # type: ignore[union-attr]


def test_commit_refuses_when_another_run_took_the_capacity(
    client: FlaskClient, session: Session, world: World, run: MatchRun
) -> None:
    rival = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=rival)
    session.commit()
    for r in (run, rival):
        client.post(
            f"{API}/match-runs/{r.id}/proposals/bulk",
            json={"min_score": 0, "status": "approved"},
            headers=world.auth("coordinator"),
        )
    assert commit(client, world, rival).status_code == 200
    refused = commit(client, world, run)
    assert refused.status_code == 409
    kinds = {c["kind"] for c in refused.get_json()["errors"]["conflicts"]}
    assert kinds and kinds <= {"no_slot", "apprentice_mentored"}
    assert (
        "free slots" in refused.get_json()["detail"]
        or "already has an active mentorship" in refused.get_json()["detail"]
    )
