"""The skill taxonomy: canonical names, parents, aliases."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.factories import World

API = "/api/v1"


def put(client: FlaskClient, world: World, name: str, body: dict[str, object]) -> Any:
    return client.put(f"{API}/skills/{quote(name)}", json=body, headers=world.auth("coordinator"))


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
