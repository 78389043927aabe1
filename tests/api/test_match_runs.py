"""Match runs over the API: parameters checked, every pair explained, every unmatched reasoned."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


def start(client: FlaskClient, world: World, body: object) -> object:
    return client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs",
        json=body,
        headers=world.auth("coordinator"),
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"min_fit": 0}, "min_fit", "greater than 0"),
        ({"min_fit": 1.5}, "min_fit", "greater than 0"),
        ({"objective": "fastest"}, "objective", "Must be one of"),
        ({"speed": 3}, "speed", "Unknown field"),
        ({"pinned": [[1]]}, "pinned", "Length must be 2"),
    ],
)
def test_bad_params_get_a_field_level_422_and_no_run(
    client: FlaskClient, world: World, params: dict[str, object], field: str, message: str
) -> None:
    response = start(client, world, {"params": params})
    assert response.status_code == 422  # type: ignore[attr-defined]
    problem = response.get_json()  # type: ignore[attr-defined]
    assert response.content_type == "application/problem+json"  # type: ignore[attr-defined]
    assert message in str(problem["errors"]["params"][field])
    runs = client.get(
        f"{API}/alliances/{world.alliance.id}/match-runs", headers=world.auth("coordinator")
    )
    assert runs.get_json() == []


def test_an_inline_run_explains_its_pairs_and_its_unmatched(
    client: FlaskClient, session: Session, world: World
) -> None:
    # One CNC turning master in the sibling unit; two home apprentices want it: one gets him,
    # the other is left with capacity_exhausted naming him; a home apprentice wanting only
    # winding (taught by nobody) has no eligible craftsman.
    made = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.sibling_unit,
        items=[
            factories.craftsman_item("CNC-1", skills=[{"name": "CNC车削", "level": 5}], capacity=1)
        ],
    )
    master = made.ids[0]
    learners = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item("W-1", wants=[{"name": "数控车", "level": 4, "weight": 1}]),
            factories.apprentice_item("W-2", wants=[{"name": "数控车削", "level": 5, "weight": 1}]),
            factories.apprentice_item("W-3", wants=[{"name": "嵌线", "level": 3, "weight": 1}]),
        ],
    ).ids
    session.commit()
    response = start(client, world, {"params": {"region_bonus": 0}})
    assert response.status_code == 201  # type: ignore[attr-defined]
    run = response.get_json()  # type: ignore[attr-defined]
    assert run["status"] == "proposed" and run["stats"]["method"] == "dense"
    auth = world.auth("coordinator")
    proposals = client.get(f"{API}/match-runs/{run['id']}/proposals", headers=auth).get_json()
    mine = [p for p in proposals if p["craftsman"]["id"] == master]
    assert len(mine) == 1
    assert mine[0]["explanation"][0]["craftsman_skill"] == "数控车削"
    assert mine[0]["score"] == pytest.approx(1.0)
    assert mine[0]["apprentice"]["id"] in learners[:2]
    unmatched = {
        u["apprentice"]["id"]: u
        for u in client.get(f"{API}/match-runs/{run['id']}/unmatched", headers=auth).get_json()
    }
    loser = next(a for a in learners[:2] if a != mine[0]["apprentice"]["id"])
    assert unmatched[loser]["reason_code"] == "capacity_exhausted"
    assert master in unmatched[loser]["detail"]["craftsman_ids"]
    assert unmatched[learners[2]]["reason_code"] == "no_eligible_craftsman"

    score = client.get(
        f"{API}/pair-score?craftsman_id={master}&apprentice_id={loser}", headers=auth
    ).get_json()
    assert score["eligible"] and score["fit"] == pytest.approx(1.0)
    blocked = client.get(
        f"{API}/pair-score?craftsman_id={master}&apprentice_id={learners[2]}", headers=auth
    ).get_json()
    assert not blocked["eligible"] and blocked["forbidden_by"] == "below_min_fit"
