"""Alliances (admin) and their units (coordinators)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import World

API = "/api/v1"


def test_admin_creates_an_alliance_with_defaults(client: FlaskClient, world: World) -> None:
    response = client.post(
        f"{API}/alliances",
        json={"code": "JSCA", "name": "江苏省劳模创新工作室联盟"},
        headers=world.auth("admin"),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["timezone"] == "Asia/Shanghai" and body["summary_every_days"] == 30
    assert body["created_at"].endswith("+00:00")


def test_alliance_codes_are_unique(client: FlaskClient, world: World) -> None:
    response = client.post(
        f"{API}/alliances",
        json={"code": world.alliance.code, "name": "x"},
        headers=world.auth("admin"),
    )
    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:matcher:problem:conflict"


def test_alliance_fields_are_validated(client: FlaskClient, world: World) -> None:
    response = client.post(
        f"{API}/alliances",
        json={"code": "has space", "name": "x", "timezone": "Mars/Base", "summary_every_days": 0},
        headers=world.auth("admin"),
    )
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"code", "timezone", "summary_every_days"}


def test_admin_patches_an_alliance(client: FlaskClient, world: World) -> None:
    url = f"{API}/alliances/{world.alliance.id}"
    response = client.patch(
        url, json={"summary_every_days": 14, "timezone": "Asia/Urumqi"}, headers=world.auth("admin")
    )
    assert response.status_code == 200
    assert response.get_json()["summary_every_days"] == 14
    assert client.patch(url, json={"id": 9}, headers=world.auth("admin")).status_code == 422


def test_coordinator_manages_units_with_codes_unique_in_the_alliance(
    client: FlaskClient, world: World
) -> None:
    url = f"{API}/alliances/{world.alliance.id}/units"
    created = client.post(
        url,
        json={
            "code": "DLDJ",
            "name": "大连电机",
            "region": "大连",
            "contact_email": "hr@dl.example.cn",
        },
        headers=world.auth("coordinator"),
    )
    assert created.status_code == 201
    assert created.get_json()["alliance_id"] == world.alliance.id
    duplicate = client.post(
        url, json={"code": "DLDJ", "name": "again"}, headers=world.auth("coordinator")
    )
    assert duplicate.status_code == 409
    # The same code in another alliance is fine.
    other = client.post(
        f"{API}/alliances/{world.other_alliance.id}/units",
        json={"code": "DLDJ", "name": "x"},
        headers=world.auth("foreign_coordinator"),
    )
    assert other.status_code == 201
    listed = client.get(url, headers=world.auth("coordinator")).get_json()
    assert {u["code"] for u in listed} == {"HZDJ", "XTDJ", "DLDJ"}


def test_unit_patch_cannot_move_it_to_another_alliance(client: FlaskClient, world: World) -> None:
    response = client.patch(
        f"{API}/units/{world.unit.id}",
        json={"alliance_id": world.other_alliance.id},
        headers=world.auth("coordinator"),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"alliance_id": ["Read-only: set by the service."]}
    renamed = client.patch(
        f"{API}/units/{world.unit.id}", json={"code": "XTDJ"}, headers=world.auth("coordinator")
    )
    assert renamed.status_code == 409
