"""The busiest lists are built from plain rows (``matcher/api/base.py: json_list``): each must
say exactly what the documented schema says of the same record read through the ORM, page after
page, with the page total carried by the page itself."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import marshmallow as ma
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.api.match_runs import ProposalSchema, UnmatchedSchema
from matcher.api.schemas import ApprenticeSchema, CraftsmanSchema
from matcher.models import (
    Apprentice,
    Craftsman,
    MatchRun,
    Proposal,
    UnmatchedApprentice,
)
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"
PEOPLE = [
    ("craftsmen", Craftsman, CraftsmanSchema),
    ("apprentices", Apprentice, ApprenticeSchema),
]


def every_page(client: FlaskClient, url: str, headers: dict[str, str], size: int) -> list[Any]:
    """All items of a list, page by page, checking each page's X-Pagination on the way."""
    items: list[Any] = []
    page = 1
    while True:
        response = client.get(
            f"{url}{'&' if '?' in url else '?'}page={page}&page_size={size}", headers=headers
        )
        assert response.status_code == 200, response.get_json()
        assert response.mimetype == "application/json"
        meta = json.loads(response.headers["X-Pagination"])
        assert meta["page"] == page and meta["page_size"] == size
        items.extend(response.get_json())
        if page >= meta["total_pages"]:
            assert len(items) == meta["total"]
            return items
        assert len(response.get_json()) == size
        page += 1


def orm_dump(schema: ma.Schema, obj: Any) -> Any:
    """What flask-smorest would have sent for ``obj``: the schema's dump, through JSON."""
    return json.loads(json.dumps(schema.dump(obj)))


@pytest.fixture
def crowd(session: Session, world: World) -> World:
    """Seven more people of each kind in the home unit, with several skills in a set order."""
    upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.unit,
        items=[
            factories.craftsman_item(
                f"C-{i}",
                email=f"c{i}@example.cn" if i % 2 else None,
                honours=["劳模", "大国工匠"][: i % 3],
                skills=[
                    {"name": "焊接", "level": 1 + i % 5},
                    {"name": "氩弧焊", "level": 5},
                    {"name": "数控车削", "level": 3},
                ][i % 3 :],
                capacity=1 + i % 4,
                active=i != 3,
            )
            for i in range(7)
        ],
    )
    upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item(
                f"A-{i}",
                locale="en" if i % 2 else "zh-CN",
                region=None if i == 4 else "杭州",
                wants=[
                    {"name": "数控车削", "level": 2, "weight": 0.5},
                    {"name": "氩弧焊", "level": 1 + i % 5, "weight": 2.0},
                ][i % 2 :],
            )
            for i in range(7)
        ],
    )
    session.commit()
    return world


@pytest.mark.parametrize(("plural", "model", "schema"), PEOPLE)
def test_people_lists_say_what_the_schema_says(
    client: FlaskClient,
    session: Session,
    crowd: World,
    plural: str,
    model: type[Craftsman] | type[Apprentice],
    schema: type[ma.Schema],
) -> None:
    url = f"{API}/units/{crowd.unit.id}/{plural}"
    listed = every_page(client, url, crowd.auth("coordinator"), size=3)
    people = session.scalars(select(model).where(model.unit_id == crowd.unit.id).order_by(model.id))
    assert listed == [orm_dump(schema(), person) for person in people]
    assert len(listed) == 8
    for item in listed:
        single = client.get(f"{API}/{plural}/{item['id']}", headers=crowd.auth("hr"))
        assert single.get_json() == item
    filtered = every_page(client, url + "?active=false", crowd.auth("hr"), size=2)
    assert filtered == [item for item in listed if not item["active"]]


def test_a_page_past_the_end_still_knows_the_total(client: FlaskClient, crowd: World) -> None:
    url = f"{API}/units/{crowd.unit.id}/apprentices"
    response = client.get(url + "?page=9&page_size=3", headers=crowd.auth("hr"))
    assert response.status_code == 200 and response.get_json() == []
    meta = json.loads(response.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["previous_page"]) == (8, 3, 3)
    assert "next_page" not in meta
    empty = f"{API}/units/{crowd.sibling_unit.id}/apprentices?external_id=nobody"
    meta = json.loads(client.get(empty, headers=crowd.auth("coordinator")).headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"]) == (0, 1)


@pytest.fixture
def run(session: Session, crowd: World) -> MatchRun:
    upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=crowd.sibling_unit,
        items=[
            factories.craftsman_item(f"S-{i}", skills=[{"name": "氩弧焊", "level": 5}], capacity=2)
            for i in range(2)
        ],
    )
    run = create_match_run(
        session, alliance=crowd.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    session.commit()
    return run


def test_proposals_and_unmatched_say_what_the_schema_says(
    client: FlaskClient, session: Session, crowd: World, run: MatchRun
) -> None:
    auth = crowd.auth("coordinator")
    decided = session.scalars(select(Proposal.id).where(Proposal.match_run_id == run.id)).first()
    etag = client.get(f"{API}/proposals/{decided}", headers=auth).headers["ETag"]
    response = client.patch(
        f"{API}/proposals/{decided}",
        json={"status": "rejected", "comment": "同单位已有安排"},
        headers=auth | {"If-Match": etag},
    )
    assert response.status_code == 200, response.get_json()
    listed = every_page(client, f"{API}/match-runs/{run.id}/proposals", auth, size=2)
    proposals = session.scalars(
        select(Proposal)
        .where(Proposal.match_run_id == run.id)
        .order_by(Proposal.score.desc(), Proposal.id)
    ).all()
    assert len(proposals) >= 3  # enough for two pages
    assert listed == [orm_dump(ProposalSchema(), p) for p in proposals]
    for item in listed:
        assert client.get(f"{API}/proposals/{item['id']}", headers=auth).get_json() == item
    pending = every_page(client, f"{API}/match-runs/{run.id}/proposals?status=pending", auth, 2)
    assert pending == [item for item in listed if item["status"] == "pending"]
    assert [item["comment"] for item in listed if item["status"] == "rejected"] == [
        "同单位已有安排"
    ]

    unmatched = every_page(client, f"{API}/match-runs/{run.id}/unmatched", auth, size=2)
    rows = session.scalars(
        select(UnmatchedApprentice)
        .where(UnmatchedApprentice.match_run_id == run.id)
        .order_by(UnmatchedApprentice.apprentice_id)
    ).all()
    assert len(rows) >= 1
    assert unmatched == [orm_dump(UnmatchedSchema(), u) for u in rows]


def test_mentorship_list_matches_each_mentorship(
    client: FlaskClient, session: Session, world: World
) -> None:
    for i in range(5):
        factories.mentorship(
            session, world.unit, world.sibling_unit, date(2026, 1, 1 + i), f"L{i}", every=7 + i
        )
    factories.mentorship(session, world.sibling_unit, world.unit, date(2026, 3, 1), "R")
    session.commit()
    listed = every_page(client, f"{API}/mentorships", world.auth("coordinator"), size=4)
    assert len(listed) == 6
    assert all(item["overdue_periods"] > 0 for item in listed)  # all started long ago
    for item in listed:
        single = client.get(f"{API}/mentorships/{item['id']}", headers=world.auth("coordinator"))
        assert single.get_json() == item
    own = every_page(client, f"{API}/mentorships", world.auth("sibling_hr"), size=4)
    assert own == listed  # every pair has one person of the sibling unit


def test_a_list_built_once_still_shows_each_caller_its_own_rows(
    client: FlaskClient, session: Session, world: World
) -> None:
    """The mentorships list is built once per shape of caller: two keys of one role, asking in
    turn, each still see their own scope (their ids are bound per request, not cached)."""
    home = factories.mentorship(session, world.unit, world.sibling_unit, date(2026, 1, 1), "H")
    session.commit()
    expected = {
        "coordinator": [home.id],
        "foreign_coordinator": [],
        "hr": [home.id],
        "foreign_hr": [],
    }
    for _ in range(2):  # the second round runs on statements the first one built
        for who, ids in expected.items():
            for query in ("", f"?unit_id={world.unit.id}", "?status=active"):
                response = client.get(f"{API}/mentorships{query}", headers=world.auth(who))
                assert response.status_code == 200, (who, query, response.get_json())
                assert [item["id"] for item in response.get_json()] == ids, (who, query)


@pytest.mark.parametrize(("plural", "model", "schema"), PEOPLE)
def test_a_single_read_says_what_the_schema_says_with_no_skills_and_with_many(
    client: FlaskClient,
    session: Session,
    crowd: World,
    plural: str,
    model: type[Craftsman] | type[Apprentice],
    schema: type[ma.Schema],
) -> None:
    """A single read is one statement of the person joined to their skills: a person with none
    still reads as one item (``[]``), one with several keeps their order."""
    kind = CRAFTSMAN if model is Craftsman else APPRENTICE
    item = (factories.craftsman_item if model is Craftsman else factories.apprentice_item)("BARE")
    item[kind.child_attr] = []
    upsert_people(session, kind=kind, unit=crowd.unit, items=[item])
    session.commit()
    people = session.scalars(select(model).where(model.unit_id == crowd.unit.id))
    counts = set()
    for person in people:
        single = client.get(f"{API}/{plural}/{person.id}", headers=crowd.auth("coordinator"))
        assert single.status_code == 200 and single.mimetype == "application/json"
        assert single.get_json() == orm_dump(schema(), person)
        counts.add(len(single.get_json()[kind.child_attr]))
    assert {0, 2} <= counts
