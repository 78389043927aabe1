"""HR pushes of craftsmen and apprentices: upserts, bulk, lists, validation, round-trips."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.models import Apprentice, ApprenticeWant, Craftsman
from tests.factories import World

API = "/api/v1"


def put_craftsman(
    client: FlaskClient, world: World, external_id: str, body: Any, who: str = "hr"
) -> Any:
    return client.put(
        f"{API}/units/{world.unit.id}/craftsmen/{external_id}", json=body, headers=world.auth(who)
    )


def test_put_creates_then_updates_and_identical_resend_changes_nothing(
    client: FlaskClient, world: World
) -> None:
    body = {
        "name": "王工",
        "capacity": 3,
        "skills": [{"name": "数控车削", "level": 5}],
        "honours": ["大国工匠"],
    }
    created = put_craftsman(client, world, "C-100", body)
    assert created.status_code == 201
    first = created.get_json()
    assert first["unit_id"] == world.unit.id and first["external_id"] == "C-100"
    assert first["skills"] == [{"name": "数控车削", "level": 5}]

    again = put_craftsman(client, world, "C-100", body)
    assert again.status_code == 200
    assert again.get_json() == first  # not even updated_at moved

    changed = put_craftsman(client, world, "C-100", {**body, "capacity": 4})
    assert changed.status_code == 200
    assert changed.get_json()["capacity"] == 4
    assert changed.get_json()["updated_at"] > first["updated_at"]
    assert changed.get_json()["id"] == first["id"]


def test_put_is_a_full_replacement_with_documented_defaults(
    client: FlaskClient, world: World
) -> None:
    put_craftsman(
        client, world, "C-1", {"name": "甲", "capacity": 4, "email": "a@x.cn", "honours": ["x"]}
    )
    replaced = put_craftsman(client, world, "C-1", {"name": "甲"}).get_json()
    assert replaced["capacity"] == 2 and replaced["email"] is None and replaced["honours"] == []
    assert replaced["locale"] == "zh-CN" and replaced["active"] is True


@pytest.mark.parametrize(
    "text",
    [
        "张伟",
        "李“铁”匠 'quoted' \"double\"",
        "焊接大师 🔧⚡️👩🏽‍🏭",
        "Ünïcödé  two  spaces ",
        "ﾊﾝｶｸ 半角",
    ],
)
def test_text_round_trips_exactly(client: FlaskClient, world: World, text: str) -> None:
    response = put_craftsman(
        client, world, "C-RT", {"name": text, "honours": [text], "region": text[:50]}
    )
    assert response.status_code == 201
    raw = response.get_data()
    assert json.dumps(text, ensure_ascii=False).encode() in raw  # UTF-8 on the wire, not \u escapes
    person = client.get(
        f"{API}/craftsmen/{response.get_json()['id']}", headers=world.auth("hr")
    ).get_json()
    assert person["name"] == text and person["honours"] == [text]


def test_skill_names_are_normalised_and_aliases_resolved(client: FlaskClient, world: World) -> None:
    response = put_craftsman(
        client,
        world,
        "C-N",
        {
            "name": "甲",
            "skills": [{"name": "  ｔｉｇ ", "level": 4}, {"name": " Cnc车削  ", "level": 3}],
        },
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["skills"] == [
        {"name": "氩弧焊", "level": 4},
        {"name": "数控车削", "level": 3},
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"name": "x", "skills": [{"name": "焊接", "level": 6}]},
            {
                "skills": {
                    "0": {
                        "level": ["Must be greater than or equal to 1 and less than or equal to 5."]
                    }
                }
            },
        ),
        (
            {"name": "x", "skills": [{"name": "焊接", "level": "5"}]},
            {"skills": {"0": {"level": ["Not a valid integer."]}}},
        ),
        (
            {"name": "x", "capacity": 11},
            {"capacity": ["Must be greater than or equal to 1 and less than or equal to 10."]},
        ),
        ({"name": "x", "capacity": True}, {"capacity": ["Not a valid integer."]}),
        ({"name": "x", "nickname": "y"}, {"nickname": ["Unknown field."]}),
        ({"name": "x", "id": 5}, {"id": ["Read-only: set by the service."]}),
        ({"name": "x", "unit_id": 5}, {"unit_id": ["Read-only: set by the service."]}),
        (
            {"name": "x", "updated_at": "2026-01-01T00:00:00+08:00"},
            {"updated_at": ["Read-only: set by the service."]},
        ),
        ({"name": "   "}, {"name": ["Must not be blank."]}),
        ({}, {"name": ["Missing data for required field."]}),
        ({"name": "x", "locale": "fr"}, {"locale": ["Must be one of: zh-CN, en."]}),
        ({"name": "x", "email": "not-an-email"}, {"email": ["Not a valid email address."]}),
        ({"name": "a\x00b"}, {"name": ["Must not contain NUL characters."]}),
        (
            {"name": "x", "skills": [{"name": "焊接"}]},
            {"skills": {"0": {"level": ["Missing data for required field."]}}},
        ),
        (
            {"name": "x", "skills": [{"name": "不存在的技能", "level": 3}]},
            {
                "skills": {
                    "0": {
                        "name": [
                            "Unknown skill tag '不存在的技能'; coordinators manage tags at /skills."
                        ]
                    }
                }
            },
        ),
        (
            {
                "name": "x",
                "skills": [{"name": "焊接", "level": 3}, {"name": "welding", "level": 4}],
            },
            {"skills": {"1": {"name": ["Same skill as item 0 (after aliases are resolved)."]}}},
        ),
        (
            {"name": "x", "external_id": "OTHER"},
            {"external_id": ["Must match the external id in the URL."]},
        ),
    ],
)
def test_invalid_fields_get_problem_details_and_nothing_is_written(
    client: FlaskClient, session: Session, world: World, body: Any, errors: Any
) -> None:
    before = session.scalar(select(func.count()).select_from(Craftsman))
    response = put_craftsman(client, world, "C-BAD", body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"] and problem["detail"] and problem["type"]
    assert problem["errors"] == errors
    assert session.scalar(select(func.count()).select_from(Craftsman)) == before


def test_lone_surrogates_are_refused_not_a_500(client: FlaskClient, world: World) -> None:
    raw = b'{"name": "bad \\ud800 text"}'
    response = client.put(
        f"{API}/units/{world.unit.id}/craftsmen/C-S",
        data=raw,
        content_type="application/json",
        headers=world.auth("hr"),
    )
    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"null",
        b"[]",
        b"42",
        b'"text"',
        b"\xff\xfe",
        b'{"name": {"a": 1}}',
        b'{"name": ["x"]}',
        b'{"name": "x", "skills": {}}',
        b'{"name": "x", "skills": [1]}',
        b'{"name": "x", "skills": [[]]}',
        b'{"name": "x", "capacity": 1e400}',
        b'{"name": "x", "capacity": 99999999999999999999999}',
        b'{"name": "x", "honours": [null]}',
        b'{"name": 1}' * 2,
    ],
)
def test_malformed_bodies_never_give_a_500(client: FlaskClient, world: World, raw: bytes) -> None:
    for path in (
        f"/units/{world.unit.id}/craftsmen/C-M",
        f"/units/{world.unit.id}/apprentices/A-M",
    ):
        response = client.put(
            API + path, data=raw, content_type="application/json", headers=world.auth("hr")
        )
        assert 400 <= response.status_code < 500, (raw, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"


def test_bodies_over_five_mebibytes_get_413(client: FlaskClient, world: World) -> None:
    items = [{"external_id": f"A-{i}", "name": "学" * 200} for i in range(10_000)]
    raw = json.dumps(items, ensure_ascii=False).encode()
    assert len(raw) > 5 * 1024 * 1024
    response = client.post(
        f"{API}/units/{world.unit.id}/apprentices/bulk",
        data=raw,
        content_type="application/json",
        headers=world.auth("hr"),
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def _bulk(client: FlaskClient, world: World, items: list[dict[str, Any]]) -> Any:
    return client.post(
        f"{API}/units/{world.unit.id}/apprentices/bulk", json=items, headers=world.auth("hr")
    )


def test_bulk_counts_created_updated_unchanged(client: FlaskClient, world: World) -> None:
    items = [
        {"external_id": f"A-{i}", "name": f"学徒{i}", "wants": [{"name": "焊接", "level": 3}]}
        for i in range(5)
    ]
    assert _bulk(client, world, items).get_json() == {"created": 5, "updated": 0, "unchanged": 0}
    items[1]["wants"] = [{"name": "焊接", "level": 4, "weight": 2}]
    items[2]["region"] = "湘潭"
    items.append({"external_id": "A-new", "name": "新", "wants": []})
    assert _bulk(client, world, items).get_json() == {"created": 1, "updated": 2, "unchanged": 3}
    assert _bulk(client, world, items).get_json() == {"created": 0, "updated": 0, "unchanged": 6}
    listed = client.get(
        f"{API}/units/{world.unit.id}/apprentices?external_id=A-1", headers=world.auth("hr")
    ).get_json()
    assert listed[0]["wants"] == [{"name": "焊接", "level": 4, "weight": 2.0}]


def test_bulk_with_one_bad_item_writes_nothing_and_keys_errors_by_index(
    client: FlaskClient, session: Session, world: World
) -> None:
    good = {"external_id": "A-ok", "name": "好", "wants": [{"name": "焊接", "level": 3}]}
    existing_before = session.scalar(select(func.count()).select_from(Apprentice))
    wants_before = session.scalar(select(func.count()).select_from(ApprenticeWant))
    response = _bulk(
        client,
        world,
        [
            good,
            {"external_id": "A-bad", "name": "坏", "wants": [{"name": "焊接", "level": 0}]},
            {"external_id": "A-ok", "name": "重复"},
            {
                "external_id": "A-unknown",
                "name": "未知",
                "wants": [{"name": "神秘技能", "level": 1}],
            },
        ],
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"1"}  # schema errors come first; domain checks run on valid input
    assert "level" in errors["1"]["wants"]["0"]

    response = _bulk(
        client,
        world,
        [
            good,
            {"external_id": "A-ok", "name": "重复"},
            {"external_id": "A-u", "name": "未知", "wants": [{"name": "神秘技能", "level": 1}]},
        ],
    )
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"1", "2"}
    assert "external_id" in response.get_json()["errors"]["1"]
    assert session.scalar(select(func.count()).select_from(Apprentice)) == existing_before
    assert session.scalar(select(func.count()).select_from(ApprenticeWant)) == wants_before


def test_bulk_items_need_an_external_id(client: FlaskClient, world: World) -> None:
    response = _bulk(client, world, [{"name": "无编号"}])
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "0": {"external_id": ["Missing data for required field."]}
    }


def test_list_paginates_and_filters(client: FlaskClient, world: World) -> None:
    items = [{"external_id": f"A-{i:02}", "name": f"学徒{i}"} for i in range(7)]
    _bulk(client, world, items)
    url = f"{API}/units/{world.unit.id}/apprentices"
    page = client.get(url + "?page=2&page_size=3", headers=world.auth("hr"))
    assert page.status_code == 200
    meta = json.loads(page.headers["X-Pagination"])
    assert meta["total"] == 8 and meta["total_pages"] == 3 and meta["page"] == 2
    assert len(page.get_json()) == 3
    seen = [
        p["external_id"]
        for n in (1, 2, 3)
        for p in client.get(f"{url}?page={n}&page_size=3", headers=world.auth("hr")).get_json()
    ]
    assert len(seen) == len(set(seen)) == 8
    assert client.get(url + "?page_size=501", headers=world.auth("hr")).status_code == 422
    assert client.get(url + "?page=0", headers=world.auth("hr")).status_code == 422
    assert client.get(url + "?colour=red", headers=world.auth("hr")).status_code == 422


def test_updated_since_returns_only_later_changes(client: FlaskClient, world: World) -> None:
    _bulk(client, world, [{"external_id": "A-old", "name": "旧"}])
    url = f"{API}/units/{world.unit.id}/apprentices"
    latest = max(p["updated_at"] for p in client.get(url, headers=world.auth("hr")).get_json())
    _bulk(
        client,
        world,
        [{"external_id": "A-old", "name": "旧"}, {"external_id": "A-new", "name": "新"}],
    )
    since = client.get(
        url, query_string={"updated_since": latest}, headers=world.auth("hr")
    ).get_json()
    assert {p["external_id"] for p in since} >= {"A-new"}
    later = [p for p in since if p["updated_at"] > latest]
    assert [p["external_id"] for p in later] == ["A-new"]
    naive = client.get(
        url, query_string={"updated_since": "2026-01-01T00:00:00"}, headers=world.auth("hr")
    )
    assert naive.status_code == 422  # an offset is required


def test_delete_deactivates_and_keeps_the_record(client: FlaskClient, world: World) -> None:
    person_id = world.apprentice_ids[world.unit.code]
    assert (
        client.delete(f"{API}/apprentices/{person_id}", headers=world.auth("hr")).status_code == 204
    )
    person = client.get(f"{API}/apprentices/{person_id}", headers=world.auth("hr")).get_json()
    assert person["active"] is False and person["wants"]
    url = f"{API}/units/{world.unit.id}/apprentices"
    assert client.get(url + "?active=true", headers=world.auth("hr")).get_json() == []
    assert len(client.get(url + "?active=false", headers=world.auth("hr")).get_json()) == 1


def test_patch_changes_only_what_is_sent(client: FlaskClient, world: World) -> None:
    person_id = world.craftsman_ids[world.unit.code]
    url = f"{API}/craftsmen/{person_id}"
    before = client.get(url, headers=world.auth("hr")).get_json()
    after = client.patch(url, json={"capacity": 4}, headers=world.auth("hr")).get_json()
    assert after["capacity"] == 4
    assert {k: v for k, v in after.items() if k not in ("capacity", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("capacity", "updated_at")
    }
    refused = client.patch(url, json={"external_id": "other"}, headers=world.auth("hr"))
    assert refused.status_code == 422
    nested = client.patch(url, json={"skills": [{"name": "焊接"}]}, headers=world.auth("hr"))
    assert nested.status_code == 422  # a skill still needs its level in a PATCH


# Every way a line can end (or a control character hide) in a single-line field.
NOT_ONE_LINE = [
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x1c",
    "\t",
    "\x07",
    "\x9b",
]


def _problem_names(response: Any, *path: str) -> str:
    """The messages at ``path`` in a 422 problem's errors (after checking it is one)."""
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    errors: Any = response.get_json()["errors"]
    for key in path:
        errors = errors[key]
    return " ".join(errors)


@pytest.mark.parametrize("breaker", NOT_ONE_LINE)
def test_single_line_fields_refuse_line_breaks_and_controls_on_every_write(
    client: FlaskClient, session: Session, world: World, breaker: str
) -> None:
    bad = f"王{breaker}工"
    before = session.scalar(select(func.count()).select_from(Craftsman))
    cases: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"name": bad}, ("name",)),
        ({"name": "x", "region": bad}, ("region",)),
        ({"name": "x", "honours": ["ok", bad]}, ("honours", "1")),
        (
            {"name": "x", "skills": [{"name": f"焊{breaker}接", "level": 3}]},
            ("skills", "0", "name"),
        ),
        ({"name": "x", "email": f"a@b.cn{breaker}"}, ("email",)),
    ]
    craftsman_id = world.craftsman_ids["HZDJ"]
    for body, path in cases:
        message = _problem_names(put_craftsman(client, world, "C-LB", body), *path)
        assert "single line" in message or "email" in message
        patch = client.patch(f"{API}/craftsmen/{craftsman_id}", json=body, headers=world.auth("hr"))
        _problem_names(patch, *path)
        item = {"external_id": "C-LB", **body}
        bulk = client.post(
            f"{API}/units/{world.unit.id}/craftsmen/bulk",
            json=[{"external_id": "C-OK", "name": "好"}, item],
            headers=world.auth("hr"),
        )
        _problem_names(bulk, "1", *path)
    bulk = client.post(
        f"{API}/units/{world.unit.id}/apprentices/bulk",
        json=[{"external_id": f"A{breaker}1", "name": "徒"}],
        headers=world.auth("hr"),
    )
    assert "single line" in _problem_names(bulk, "0", "external_id")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Craftsman)) == before
    assert session.get(Craftsman, craftsman_id).name == "工匠C-HZDJ"  # type: ignore[union-attr]


@pytest.mark.parametrize("breaker", NOT_ONE_LINE)
def test_units_and_alliances_refuse_line_breaks_too(
    client: FlaskClient, world: World, breaker: str
) -> None:
    unit = f"{API}/units/{world.unit.id}"
    for body, field in [
        ({"name": f"杭州{breaker}电机"}, "name"),
        ({"region": f"杭{breaker}州"}, "region"),
        ({"contact_email": f"hr@hz.cn{breaker}"}, "contact_email"),
        ({"code": f"HZ{breaker}"}, "code"),
    ]:
        response = client.patch(unit, json=body, headers=world.auth("coordinator"))
        _problem_names(response, field)
    response = client.post(
        f"{API}/alliances",
        json={"code": "NEW", "name": f"联盟{breaker}"},
        headers=world.auth("admin"),
    )
    _problem_names(response, "name")


@pytest.mark.parametrize(
    ("external_id", "expected"),
    [
        ("%20%20", "Must not be blank."),
        ("C-1%0D%0A", "single line"),
        ("C%0A1", "single line"),
        ("C%E2%80%A81", "single line"),
        ("C%C2%851", "single line"),
        ("C%091", "single line"),
        ("C%001", "NUL"),
        ("DUP-2%20", "whitespace"),
        ("%20DUP-2", "whitespace"),
        ("X" * 101, "Length must be between 1 and 100."),
    ],
)
def test_the_urls_external_id_is_validated_like_the_bodys(
    client: FlaskClient, session: Session, world: World, external_id: str, expected: str
) -> None:
    before = session.scalar(select(func.count()).select_from(Craftsman))
    response = put_craftsman(client, world, external_id, {"name": "甲"})
    assert expected in _problem_names(response, "external_id")
    body = client.post(
        f"{API}/units/{world.unit.id}/craftsmen/bulk",
        json=[{"external_id": unquote(external_id), "name": "甲"}],
        headers=world.auth("hr"),
    )
    assert expected in _problem_names(body, "0", "external_id")
    assert session.scalar(select(func.count()).select_from(Craftsman)) == before


@pytest.mark.parametrize("raw", ["C-%FF", "%C3", "C-%ED%A0%80", "%E4%B8"])
def test_a_url_that_is_not_utf8_names_nothing(
    client: FlaskClient, session: Session, world: World, raw: str
) -> None:
    before = session.scalar(select(func.count()).select_from(Craftsman))
    response = put_craftsman(client, world, raw, {"name": "甲"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    listed = client.get(
        f"{API}/units/{world.unit.id}/craftsmen?external_id={raw}", headers=world.auth("hr")
    )
    assert listed.status_code == 404
    assert session.scalar(select(func.count()).select_from(Craftsman)) == before
