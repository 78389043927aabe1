"""The skill taxonomy: canonical names, parents, aliases."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


def put(
    client: FlaskClient,
    world: World,
    name: str,
    body: dict[str, object],
    who: str = "coordinator",
    query: str = "",
) -> Any:
    return client.put(f"{API}/skills/{quote(name)}{query}", json=body, headers=world.auth(who))


def listed(client: FlaskClient, world: World, who: str, query: str = "") -> dict[str, Any]:
    """The tags a key sees, by name."""
    response = client.get(f"{API}/skills?page_size=500{query}", headers=world.auth(who))
    assert response.status_code == 200, response.get_json()
    return {tag["name"]: tag for tag in response.get_json()}


def test_put_creates_then_replaces_a_tag(client: FlaskClient, world: World) -> None:
    created = put(
        client, world, "定子装配", {"parent": "电机绕组嵌线", "aliases": ["stator assembly"]}
    )
    assert created.status_code == 201
    assert created.get_json() == {
        "name": "定子装配",
        "parent": "电机绕组嵌线",
        "aliases": ["stator assembly"],
    }
    replaced = put(client, world, "定子装配", {"aliases": []})
    assert replaced.status_code == 200
    assert replaced.get_json() == {"name": "定子装配", "parent": None, "aliases": []}


def test_a_tag_is_found_by_any_of_its_names(client: FlaskClient, world: World) -> None:
    for name in ("氩弧焊", "tig", " ＴＩＧ焊 "):
        response = client.get(f"{API}/skills/{quote(name)}", headers=world.auth("hr"))
        assert response.status_code == 200, name
        assert response.get_json()["name"] == "氩弧焊"


def test_aliases_may_not_clash(client: FlaskClient, world: World) -> None:
    taken = put(client, world, "新技能", {"aliases": ["TIG"]})
    assert taken.status_code == 422
    assert taken.get_json()["errors"] == {"aliases": {"0": ["Already an alias of '氩弧焊'."]}}
    tag = put(client, world, "新技能", {"aliases": ["焊接"]})
    assert tag.get_json()["errors"] == {"aliases": {"0": ["This name is a skill tag of its own."]}}
    alias_as_tag = put(client, world, "welding", {})
    assert alias_as_tag.status_code == 409


def test_parents_must_exist_and_not_form_a_cycle(client: FlaskClient, world: World) -> None:
    assert put(client, world, "x", {"parent": "不存在"}).status_code == 422
    cycle = put(client, world, "焊接", {"parent": "氩弧焊"})
    assert cycle.status_code == 422
    assert cycle.get_json()["errors"] == {"parent": ["Would create a cycle."]}


def test_list_is_sorted_and_paginated(client: FlaskClient, world: World) -> None:
    listed = client.get(f"{API}/skills?page_size=500", headers=world.auth("hr")).get_json()
    names = [s["name"] for s in listed]
    assert len(names) == 7 and "焊接" in names
    parents = {s["name"]: s["parent"] for s in listed}
    assert parents["氩弧焊"] == "焊接" and parents["焊接"] is None


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\u2028", "\x85", "\t", "\x01"])
def test_skill_names_are_one_line_in_the_url_and_the_body(
    client: FlaskClient, world: World, breaker: str
) -> None:
    response = put(client, world, f"焊{breaker}接", {"parent": None, "aliases": []})
    assert response.status_code == 422 and "name" in response.get_json()["errors"]
    response = put(client, world, "新技能", {"parent": None, "aliases": [f"别{breaker}名"]})
    assert response.status_code == 422 and "aliases" in response.get_json()["errors"]
    response = put(client, world, "新技能", {"parent": f"焊{breaker}接", "aliases": []})
    assert response.status_code == 422 and "parent" in response.get_json()["errors"]


def test_a_coordinators_changes_leave_the_other_alliances_tags_alone(
    client: FlaskClient, session: Session, world: World
) -> None:
    """security.md: a coordinator's taxonomy changes affect its own alliance only."""
    second_unit = factories.unit(session, world.other_alliance, "FRGN2")
    craftsman_id = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=second_unit,
        items=[factories.craftsman_item("C-SIB", skills=[{"name": "钎焊", "level": 5}])],
    ).ids[0]
    apprentice_id = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.foreign_unit,
        items=[
            factories.apprentice_item("A-TIG", wants=[{"name": "TIG", "level": 4, "weight": 1.0}])
        ],
    ).ids[0]
    session.commit()
    score_url = f"{API}/pair-score?craftsman_id={craftsman_id}&apprentice_id={apprentice_id}"
    before = client.get(score_url, headers=world.auth("foreign_coordinator")).get_json()
    assert before["eligible"] and before["explanation"][0]["credit"] > 0  # 钎焊 shares 焊接

    # The home coordinator re-parents 氩弧焊 and takes the aliases off it and off 焊接.
    assert put(client, world, "氩弧焊", {"parent": "机械加工", "aliases": []}).status_code == 200
    assert put(client, world, "焊接", {"aliases": []}).status_code == 200
    ours = listed(client, world, "coordinator")
    assert ours["氩弧焊"] == {"name": "氩弧焊", "parent": "机械加工", "aliases": []}

    theirs = listed(client, world, "foreign_hr")
    assert theirs["氩弧焊"] == {"name": "氩弧焊", "parent": "焊接", "aliases": ["TIG", "TIG焊"]}
    assert theirs["焊接"]["aliases"] == ["welding"]
    pushed = client.put(
        f"{API}/units/{world.foreign_unit.id}/craftsmen/C-NEW",
        json={
            "name": "新工匠",
            "skills": [{"name": "TIG", "level": 4}, {"name": "welding", "level": 3}],
        },
        headers=world.auth("foreign_hr"),
    )
    assert pushed.status_code == 201, pushed.get_json()
    assert [s["name"] for s in pushed.get_json()["skills"]] == ["氩弧焊", "焊接"]
    assert client.get(score_url, headers=world.auth("foreign_coordinator")).get_json() == before

    # A run of the other alliance gives the pair the same related-skill credit.
    run = create_match_run(
        session, alliance=world.other_alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    session.commit()
    proposals = client.get(
        f"{API}/match-runs/{run.id}/proposals", headers=world.auth("foreign_coordinator")
    ).get_json()
    (proposal,) = [p for p in proposals if p["apprentice"]["id"] == apprentice_id]
    assert proposal["craftsman"]["id"] == craftsman_id
    assert proposal["explanation"] == before["explanation"]


def test_another_alliances_tags_are_invisible(client: FlaskClient, world: World) -> None:
    made = put(client, world, "外联盟工艺", {"aliases": ["外工"]}, who="foreign_coordinator")
    assert made.status_code == 201
    for who in ("coordinator", "hr"):
        assert "外联盟工艺" not in listed(client, world, who)
        for name in ("外联盟工艺", "外工"):
            found = client.get(f"{API}/skills/{quote(name)}", headers=world.auth(who))
            assert found.status_code == 404, (who, name)
    pushed = client.put(
        f"{API}/units/{world.unit.id}/craftsmen/C-X",
        json={"name": "x", "skills": [{"name": "外工", "level": 3}]},
        headers=world.auth("hr"),
    )
    assert pushed.status_code == 422
    assert pushed.get_json()["errors"] == {
        "skills": {
            "0": {"name": ["Unknown skill tag '外工'; coordinators manage tags at /skills."]}
        }
    }
    # A PUT of that name makes the coordinator's own tag; the other alliance's stays as it was.
    own = put(client, world, "外联盟工艺", {"parent": "焊接"})
    assert own.status_code == 201
    assert own.get_json() == {"name": "外联盟工艺", "parent": "焊接", "aliases": []}
    theirs = client.get(f"{API}/skills/{quote('外联盟工艺')}", headers=world.auth("foreign_hr"))
    assert theirs.get_json() == {"name": "外联盟工艺", "parent": None, "aliases": ["外工"]}
    # The other alliance's alias is free to be an alias here too.
    assert put(client, world, "钎焊", {"aliases": ["外工"]}).status_code == 200


def test_an_admin_names_the_alliance_whose_taxonomy_it_means(
    client: FlaskClient, world: World
) -> None:
    home, other = world.alliance.id, world.other_alliance.id
    for method, url in (
        ("GET", "/skills"),
        ("GET", f"/skills/{quote('焊接')}"),
        ("PUT", f"/skills/{quote('新工艺')}"),
    ):
        missing = client.open(f"{API}{url}", method=method, json={}, headers=world.auth("admin"))
        assert missing.status_code == 422, url
        assert missing.get_json()["errors"] == {"alliance_id": ["Required for an admin key."]}
    made = put(
        client, world, "新工艺", {"parent": "焊接"}, who="admin", query=f"?alliance_id={other}"
    )
    assert made.status_code == 201
    assert made.get_json() == {"name": "新工艺", "parent": "焊接", "aliases": []}
    assert "新工艺" in listed(client, world, "admin", f"&alliance_id={other}")
    assert "新工艺" in listed(client, world, "foreign_hr")
    assert "新工艺" not in listed(client, world, "admin", f"&alliance_id={home}")
    assert "新工艺" not in listed(client, world, "hr")
    read = client.get(
        f"{API}/skills/{quote('新工艺')}?alliance_id={home}", headers=world.auth("admin")
    )
    assert read.status_code == 404
    unknown = client.get(f"{API}/skills?alliance_id=999999", headers=world.auth("admin"))
    assert unknown.status_code == 404
    # Another alliance's id is out of a coordinator's scope; its own is fine.
    assert (
        client.get(
            f"{API}/skills?alliance_id={other}", headers=world.auth("coordinator")
        ).status_code
        == 404
    )
    assert "焊接" in listed(client, world, "coordinator", f"&alliance_id={home}")


def test_aliases_resolve_in_each_alliances_own_taxonomy(
    client: FlaskClient, session: Session, world: World
) -> None:
    assert put(client, world, "钎焊", {"aliases": ["硬钎"]}).status_code == 200
    theirs = put(client, world, "数控铣削", {"aliases": ["硬钎"]}, who="foreign_coordinator")
    assert theirs.status_code == 200, theirs.get_json()
    for who, unit, tag in (
        ("hr", world.unit, "钎焊"),
        ("foreign_hr", world.foreign_unit, "数控铣削"),
    ):
        assert (
            client.get(f"{API}/skills/{quote('硬钎')}", headers=world.auth(who)).get_json()["name"]
            == tag
        )
        pushed = client.put(
            f"{API}/units/{unit.id}/apprentices/A-X",
            json={"name": "x", "wants": [{"name": " 硬钎 ", "level": 2}]},
            headers=world.auth(who),
        )
        assert pushed.status_code == 201, pushed.get_json()
        assert pushed.get_json()["wants"][0]["name"] == tag
    # Training summaries name skills as their mentorship's alliance does.
    pair = factories.mentorship(session, world.sibling_unit, world.unit, date(2026, 1, 1), "S")
    session.commit()
    summary = client.post(
        f"{API}/mentorships/{pair.id}/summaries",
        json={"author": "apprentice", "content": "练习", "hours": 2, "skills": ["硬钎", "数控车"]},
        headers=world.auth("coordinator"),
    )
    assert summary.status_code == 201, summary.get_json()
    assert summary.get_json()["skills"] == ["钎焊", "数控车削"]
