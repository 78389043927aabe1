"""Fair shares between member units over the API and the CLI: the rules as params, the alliance's
match defaults, pins over a cap refused, unit_cap reasons and stats.units stored."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.models import MatchRun
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


def cnc_class(session: Session, world: World) -> tuple[int, list[int]]:
    """A CNC master of the sibling unit with three slots, three home apprentices wanting CNC."""
    master = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=world.sibling_unit,
        items=[
            factories.craftsman_item("CNC-1", skills=[{"name": "数控车削", "level": 5}], capacity=3)
        ],
    ).ids[0]
    learners = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item(
                f"W-{i}", wants=[{"name": "数控车削", "level": 4, "weight": 1.0}]
            )
            for i in range(3)
        ],
    ).ids
    session.commit()
    return master, list(learners)


def start(client: FlaskClient, world: World, params: dict[str, Any]) -> Any:
    return client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs",
        json={"params": params},
        headers=world.auth("coordinator"),
    )


def test_a_unit_pair_cap_leaves_apprentices_unmatched_with_unit_cap(
    client: FlaskClient, session: Session, world: World
) -> None:
    master, learners = cnc_class(session, world)
    # min_fit 0.6 leaves out the world's related-skill pairs (fit 0.5).
    response = start(client, world, {"max_pairs_per_unit_pair": 2, "min_fit": 0.6})
    assert response.status_code == 201
    run = response.get_json()
    assert run["params"]["max_pairs_per_unit_pair"] == 2
    assert run["stats"]["method"] == "milp"
    units = {row["unit_id"]: row for row in run["stats"]["units"]}
    assert set(units) == {world.unit.id, world.sibling_unit.id}
    assert units[world.sibling_unit.id]["pairs_as_craftsman_unit"] == 2
    assert units[world.unit.id]["pairs_as_apprentice_unit"] == 2
    auth = world.auth("coordinator")
    unmatched = client.get(f"{API}/match-runs/{run['id']}/unmatched", headers=auth).get_json()
    capped = [u for u in unmatched if u["apprentice"]["id"] in learners]
    assert len(capped) == 1 and capped[0]["reason_code"] == "unit_cap"
    assert capped[0]["detail"]["caps"] == [
        {
            "cap": "max_pairs_per_unit_pair",
            "craftsman_unit_id": world.sibling_unit.id,
            "apprentice_unit_id": world.unit.id,
        }
    ]
    assert master in capped[0]["detail"]["craftsman_ids"]


def test_pins_that_alone_break_a_cap_are_a_422_naming_it(
    client: FlaskClient, session: Session, world: World
) -> None:
    master, learners = cnc_class(session, world)
    params = {"max_pairs_per_craftsman_unit": 1, "pinned": [[master, a] for a in learners[:2]]}
    response = start(client, world, params)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["params"]
    assert "max_pairs_per_craftsman_unit" in errors
    assert f"unit {world.sibling_unit.id}" in errors["max_pairs_per_craftsman_unit"][0]
    assert session.scalars(select(MatchRun)).all() == []


def test_bad_fair_share_params_are_field_level_422s(client: FlaskClient, world: World) -> None:
    for params, field in (
        ({"max_pairs_per_unit_pair": 0}, "max_pairs_per_unit_pair"),
        ({"max_pairs_per_craftsman_unit": 1.5}, "max_pairs_per_craftsman_unit"),
        ({"min_pairs_per_apprentice_unit": -1}, "min_pairs_per_apprentice_unit"),
    ):
        response = start(client, world, params)
        assert response.status_code == 422
        assert field in response.get_json()["errors"]["params"]


def test_alliance_match_defaults_apply_key_by_key(
    client: FlaskClient, session: Session, world: World
) -> None:
    cnc_class(session, world)
    auth = world.auth("coordinator")
    url = f"{API}/alliances/{world.alliance.id}"
    defaults = {"max_pairs_per_unit_pair": 1, "min_fit": 0.6}
    patched = client.patch(url, json={"match_defaults": defaults}, headers=auth)
    assert patched.status_code == 200
    assert patched.get_json()["match_defaults"] == defaults
    assert client.get(url, headers=auth).get_json()["match_defaults"] == defaults
    run = start(client, world, {"region_bonus": 0.1}).get_json()
    assert run["params"]["max_pairs_per_unit_pair"] == 1 and run["params"]["min_fit"] == 0.6
    assert run["params"]["region_bonus"] == 0.1
    assert run["stats"]["matched"] == 1
    # A run that turns the cap off explicitly (null) is not capped.
    free = start(client, world, {"max_pairs_per_unit_pair": None}).get_json()
    assert free["params"]["max_pairs_per_unit_pair"] is None
    assert free["stats"]["matched"] == 3
    # null clears the defaults.
    cleared = client.patch(url, json={"match_defaults": None}, headers=auth)
    assert cleared.status_code == 200 and cleared.get_json()["match_defaults"] is None


def test_match_defaults_are_validated_like_a_runs_params(
    client: FlaskClient, session: Session, world: World
) -> None:
    master, learners = cnc_class(session, world)
    url = f"{API}/alliances/{world.alliance.id}"
    auth = world.auth("coordinator")
    for defaults, field in (
        ({"max_pairs_per_unit_pair": 0}, "max_pairs_per_unit_pair"),
        ({"speed": 3}, "speed"),
        ({"unit_ids": [world.foreign_unit.id]}, "unit_ids"),
        (
            {"max_pairs_per_unit_pair": 1, "pinned": [[master, a] for a in learners[:2]]},
            "max_pairs_per_unit_pair",
        ),
    ):
        response = client.patch(url, json={"match_defaults": defaults}, headers=auth)
        assert response.status_code == 422, defaults
        assert field in response.get_json()["errors"]["match_defaults"], defaults
    assert client.get(url, headers=auth).get_json()["match_defaults"] is None
    # The coordinator changes its alliance's match defaults, not the rest of it.
    assert client.patch(url, json={"name": "改名"}, headers=auth).status_code == 403


def test_the_cli_takes_fair_share_params(app: Flask, session: Session, world: World) -> None:
    cnc_class(session, world)
    result = app.test_cli_runner().invoke(
        args=[
            "match",
            "--alliance",
            "EMCA",
            "--param",
            "max_pairs_per_unit_pair=1",
            "--param",
            "min_fit=0.6",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 matched" in result.stdout and "method milp" in result.stdout
    bad = app.test_cli_runner().invoke(
        args=["match", "--alliance", "EMCA", "--param", "max_pairs_per_unit_pair=0"]
    )
    assert bad.exit_code != 0 and "max_pairs_per_unit_pair" in bad.output
