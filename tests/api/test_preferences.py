"""Two-way choice, first half (programme.md): preferences and availability over the API, and
what they do to a run (matching.md, "Preferences and availability")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.models import AuditEvent
from matcher.services.mentorships import local_today
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from tests import factories
from tests.factories import World

API = "/api/v1"


def prefs_url(apprentice_id: int) -> str:
    return f"{API}/apprentices/{apprentice_id}/preferences"


def availability_url(craftsman_id: int) -> str:
    return f"{API}/craftsmen/{craftsman_id}/availability"


def sibling_craftsmen(session: Session, world: World, *items: dict[str, Any]) -> list[int]:
    made = upsert_people(session, kind=CRAFTSMAN, unit=world.sibling_unit, items=list(items))
    session.commit()
    return list(made.ids)


def test_preferences_start_empty_and_are_replaced_as_a_whole(
    client: FlaskClient, session: Session, world: World
) -> None:
    apprentice = world.apprentice_ids[world.unit.code]
    first, second = sibling_craftsmen(
        session, world, factories.craftsman_item("S-1"), factories.craftsman_item("S-2")
    )
    empty = client.get(prefs_url(apprentice), headers=world.auth("hr")).get_json()
    assert empty == {"ranked": [], "avoid": [], "updated_at": None}

    body = {"ranked": [second, world.craftsman_ids[world.sibling_unit.code]], "avoid": [first]}
    put = client.put(prefs_url(apprentice), json=body, headers=world.auth("hr"))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["ranked"] == body["ranked"] and put.get_json()["avoid"] == [first]
    assert put.get_json()["updated_at"] is not None
    read = client.get(prefs_url(apprentice), headers=world.auth("coordinator")).get_json()
    assert read == put.get_json()

    # The coordinator replaces them; the same choice again changes nothing (no second audit).
    again = {"ranked": [first], "avoid": []}
    for _ in range(2):
        response = client.put(prefs_url(apprentice), json=again, headers=world.auth("coordinator"))
        assert response.status_code == 200
    assert response.get_json()["ranked"] == [first] and response.get_json()["avoid"] == []
    audits = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "apprentice.preferences", AuditEvent.object_id == apprentice)
    )
    assert audits == 2


@pytest.mark.parametrize(
    ("make_body", "field", "index", "named"),
    [
        # a craftsman of the apprentice's own unit
        (lambda w, _c: {"ranked": [w.craftsman_ids[w.unit.code]], "avoid": []}, "ranked", "0", 0),
        # of another alliance
        (
            lambda w, c: {"ranked": [], "avoid": [c, w.craftsman_ids[w.foreign_unit.code]]},
            "avoid",
            "1",
            1,
        ),
        # no such craftsman
        (lambda _w, c: {"ranked": [c, 2**31 - 1], "avoid": []}, "ranked", "1", 1),
        # twice in the ranking
        (lambda _w, c: {"ranked": [c, c], "avoid": []}, "ranked", "1", 1),
        # ranked and avoided
        (lambda _w, c: {"ranked": [c], "avoid": [c]}, "avoid", "0", 0),
    ],
)
def test_a_bad_craftsman_gets_a_422_naming_it_and_nothing_is_written(
    client: FlaskClient,
    session: Session,
    world: World,
    make_body: Any,
    field: str,
    index: str,
    named: int,
) -> None:
    apprentice = world.apprentice_ids[world.unit.code]
    (good,) = sibling_craftsmen(session, world, factories.craftsman_item("S-1"))
    keep = {"ranked": [good], "avoid": []}
    assert client.put(prefs_url(apprentice), json=keep, headers=world.auth("hr")).status_code == 200
    body = make_body(world, good)
    response = client.put(prefs_url(apprentice), json=body, headers=world.auth("hr"))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    message = str(response.get_json()["errors"][field][index])
    assert str(body[field][named]) in message
    read = client.get(prefs_url(apprentice), headers=world.auth("hr")).get_json()
    assert (read["ranked"], read["avoid"]) == ([good], [])


def test_an_inactive_craftsman_cannot_be_chosen(
    client: FlaskClient, session: Session, world: World
) -> None:
    (gone,) = sibling_craftsmen(session, world, factories.craftsman_item("S-9", active=False))
    response = client.put(
        prefs_url(world.apprentice_ids[world.unit.code]),
        json={"ranked": [gone], "avoid": []},
        headers=world.auth("hr"),
    )
    assert response.status_code == 422
    assert str(gone) in str(response.get_json()["errors"]["ranked"]["0"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ranked": [1, 2, 3, 4], "avoid": []}, "ranked"),
        ({"ranked": [], "avoid": list(range(1, 22))}, "avoid"),
        ({"ranked": []}, "avoid"),
        ({"ranked": ["1"], "avoid": []}, "ranked"),
        ({"ranked": [], "avoid": [], "updated_at": "2026-01-01T00:00:00Z"}, "updated_at"),
        ({"ranked": [], "avoid": [], "extra": 1}, "extra"),
    ],
)
def test_malformed_preferences_are_field_errors(
    client: FlaskClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = client.put(
        prefs_url(world.apprentice_ids[world.unit.code]), json=body, headers=world.auth("hr")
    )
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_availability_defaults_to_accepting_and_is_set_by_hr_or_coordinator(
    client: FlaskClient, world: World
) -> None:
    craftsman = world.craftsman_ids[world.sibling_unit.code]
    assert client.get(
        availability_url(craftsman), headers=world.auth("coordinator")
    ).get_json() == {
        "accepting": True,
        "paused_until": None,
        "updated_at": None,
    }
    paused = client.put(
        availability_url(craftsman),
        json={"accepting": True, "paused_until": "2027-03-01"},
        headers=world.auth("sibling_hr"),
    )
    assert paused.status_code == 200
    assert paused.get_json()["paused_until"] == "2027-03-01"
    closed = client.put(
        availability_url(craftsman), json={"accepting": False}, headers=world.auth("coordinator")
    )
    assert closed.get_json()["accepting"] is False and closed.get_json()["paused_until"] is None
    assert client.get(availability_url(craftsman), headers=world.auth("sibling_hr")).get_json() == (
        closed.get_json()
    )


@pytest.mark.parametrize(
    "body",
    [
        {"accepting": "yes"},
        {"accepting": 1},
        {"paused_until": "2027-03-01"},
        {"accepting": True, "paused_until": "next week"},
        {"accepting": True, "paused_until": "2027-02-30"},
        {"accepting": True, "updated_at": "2026-01-01T00:00:00Z"},
    ],
)
def test_malformed_availability_is_a_field_error(
    client: FlaskClient, world: World, body: dict[str, Any]
) -> None:
    craftsman = world.craftsman_ids[world.sibling_unit.code]
    response = client.put(availability_url(craftsman), json=body, headers=world.auth("sibling_hr"))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["errors"]


# --- in a run -------------------------------------------------------------------------------

# The home apprentice wants 氩弧焊 (weight 1) and 数控车削 (weight 3), both at level 5. In the
# sibling unit, BEST teaches both at 5 (fit 1); NEAR teaches 氩弧焊 at 4 and 数控车削 at 5
# (fit (0.8·1 + 1·3) / 4 = 0.95): a slightly worse fit. Both share the apprentice's region.
WANTS = [{"name": "氩弧焊", "level": 5, "weight": 1}, {"name": "数控车削", "level": 5, "weight": 3}]
FIT_BEST = (1.0 * 1 + 1.0 * 3) / 4
FIT_NEAR = (min(1, 4 / 5) * 1 + 1.0 * 3) / 4


def two_masters(session: Session, world: World) -> tuple[int, int, int]:
    best, near = sibling_craftsmen(
        session,
        world,
        factories.craftsman_item(
            "BEST",
            capacity=1,
            skills=[{"name": "氩弧焊", "level": 5}, {"name": "数控车削", "level": 5}],
        ),
        factories.craftsman_item(
            "NEAR",
            capacity=1,
            skills=[{"name": "氩弧焊", "level": 4}, {"name": "数控车削", "level": 5}],
        ),
    )
    (learner,) = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[factories.apprentice_item("P-1", wants=WANTS)],
    ).ids
    session.commit()
    return best, near, learner


def run_proposals(
    client: FlaskClient, world: World, params: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    auth = world.auth("coordinator")
    response = client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs", json={"params": params}, headers=auth
    )
    assert response.status_code == 201, response.get_json()
    run = response.get_json()
    listed = client.get(f"{API}/match-runs/{run['id']}/proposals", headers=auth).get_json()
    return run, listed


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("bonus", [0.1, 0.02])
def test_a_ranked_craftsman_wins_over_a_slightly_better_fit_exactly_as_the_formula_says(
    client: FlaskClient, session: Session, world: World, rank: int, bonus: float
) -> None:
    best, near, learner = two_masters(session, world)
    # NEAR at ``rank``: fill the places above it with craftsmen of no use to the learner.
    fillers = sibling_craftsmen(
        session,
        world,
        *(
            factories.craftsman_item(f"F-{i}", skills=[{"name": "电机绕组嵌线", "level": 1}])
            for i in range(rank - 1)
        ),
    )
    ranked = [*fillers, near]
    put = client.put(
        prefs_url(learner), json={"ranked": ranked, "avoid": []}, headers=world.auth("hr")
    )
    assert put.status_code == 200, put.get_json()
    region = 0.05  # the default region bonus: both masters share the learner's region
    near_score = FIT_NEAR + region + bonus * (4 - rank) / 3
    best_score = FIT_BEST + region
    _, proposals = run_proposals(client, world, {"preference_bonus": bonus})
    (mine,) = [p for p in proposals if p["apprentice"]["id"] == learner]
    if near_score > best_score:
        assert mine["craftsman"]["id"] == near
        assert mine["preference_rank"] == rank
        assert mine["score"] == pytest.approx(near_score, abs=1e-9)
    else:
        assert mine["craftsman"]["id"] == best
        assert mine["preference_rank"] is None
        assert mine["score"] == pytest.approx(best_score, abs=1e-9)
    assert mine["fit"] == pytest.approx(FIT_NEAR if mine["craftsman"]["id"] == near else FIT_BEST)
    # what-if shows the rank too, and the same score
    auth = world.auth("coordinator")
    what_if = client.get(
        f"{API}/pair-score?craftsman_id={near}&apprentice_id={learner}", headers=auth
    ).get_json()
    assert what_if["preference_rank"] == rank
    assert what_if["score"] == pytest.approx(FIT_NEAR + region + 0.1 * (4 - rank) / 3, abs=1e-9)


def test_the_two_outcomes_above_both_occur() -> None:
    """Rank 1 at 0.1 beats the better fit; rank 3 at 0.1 and rank 1 at 0.02 do not."""
    assert FIT_NEAR + 0.1 > FIT_BEST
    assert FIT_NEAR + 0.1 / 3 < FIT_BEST
    assert FIT_NEAR + 0.02 < FIT_BEST


def test_an_avoided_pair_is_never_proposed_nor_pinned_nor_swapped_to(
    client: FlaskClient, session: Session, world: World
) -> None:
    best, near, learner = two_masters(session, world)
    auth = world.auth("coordinator")
    put = client.put(prefs_url(learner), json={"ranked": [], "avoid": [best]}, headers=auth)
    assert put.status_code == 200
    run, proposals = run_proposals(client, world, {})
    (mine,) = [p for p in proposals if p["apprentice"]["id"] == learner]
    assert mine["craftsman"]["id"] == near
    assert all((p["craftsman"]["id"], p["apprentice"]["id"]) != (best, learner) for p in proposals)

    # what-if names the avoid list
    what_if = client.get(
        f"{API}/pair-score?craftsman_id={best}&apprentice_id={learner}", headers=auth
    ).get_json()
    assert what_if["eligible"] is False and what_if["forbidden_by"] == "avoided"

    # swapping to the avoided craftsman is refused
    proposal = client.get(f"{API}/proposals/{mine['id']}", headers=auth)
    swap = client.patch(
        f"{API}/proposals/{mine['id']}",
        json={"craftsman_id": best},
        headers=auth | {"If-Match": proposal.headers["ETag"]},
    )
    assert swap.status_code == 422
    assert "avoid" in str(swap.get_json()["errors"]["craftsman_id"])

    # pinning the avoided pair is refused, naming it; no run is made
    client.post(f"{API}/match-runs/{run['id']}/commit", headers=auth)
    pinned = client.post(
        f"{API}/alliances/{world.alliance.id}/match-runs",
        json={"params": {"pinned": [[near, learner], [best, learner]]}},
        headers=auth,
    )
    assert pinned.status_code == 422
    errors = pinned.get_json()["errors"]["params"]["pinned"]
    assert list(errors) == ["1"] and f"[{best}, {learner}]" in str(errors["1"])


def test_an_apprentice_who_avoids_every_eligible_craftsman_is_unmatched_as_excluded(
    client: FlaskClient, session: Session, world: World
) -> None:
    best, near, learner = two_masters(session, world)
    auth = world.auth("coordinator")
    # C-XTDJ teaches 氩弧焊 at 5: eligible too (fit 0.25)
    every = [best, near, world.craftsman_ids[world.sibling_unit.code]]
    put = client.put(prefs_url(learner), json={"ranked": [], "avoid": every}, headers=auth)
    assert put.status_code == 200
    run, _ = run_proposals(client, world, {})
    unmatched = client.get(f"{API}/match-runs/{run['id']}/unmatched", headers=auth).get_json()
    (mine,) = [u for u in unmatched if u["apprentice"]["id"] == learner]
    assert mine["reason_code"] == "excluded"


@pytest.mark.parametrize(
    ("availability", "takes_part"),
    [
        ({"accepting": False}, False),
        ({"accepting": True, "paused_until": 0}, False),  # paused until the run's date
        ({"accepting": True, "paused_until": 30}, False),
        ({"accepting": True, "paused_until": -1}, True),  # the pause ended yesterday
        ({"accepting": True}, True),
    ],
)
def test_a_craftsman_not_accepting_or_paused_takes_no_part(
    client: FlaskClient,
    session: Session,
    world: World,
    availability: dict[str, Any],
    takes_part: bool,
) -> None:
    best, near, learner = two_masters(session, world)
    today = local_today(world.alliance.timezone)
    body = dict(availability)
    if "paused_until" in body:
        body["paused_until"] = (today + timedelta(days=body["paused_until"])).isoformat()
    auth = world.auth("coordinator")
    assert client.put(availability_url(best), json=body, headers=auth).status_code == 200
    run, proposals = run_proposals(client, world, {})
    (mine,) = [p for p in proposals if p["apprentice"]["id"] == learner]
    assert (mine["craftsman"]["id"] == best) is takes_part
    what_if = client.get(
        f"{API}/pair-score?craftsman_id={best}&apprentice_id={learner}", headers=auth
    ).get_json()
    assert (what_if["forbidden_by"] == "craftsman_unavailable") is not takes_part
    # a pin of the unavailable craftsman fails the run, naming the pair
    if not takes_part:
        client.post(f"{API}/match-runs/{run['id']}/commit", headers=auth)
        response = client.post(
            f"{API}/alliances/{world.alliance.id}/match-runs",
            json={"params": {"pinned": [[best, learner]]}},
            headers=auth,
        )
        failed = response.get_json()
        assert failed["status"] == "failed" and f"[{best}, {learner}]" in failed["error"]
        assert failed["id"] != run["id"]


def test_preference_bonus_is_a_parameter_like_the_others_and_an_alliance_default(
    client: FlaskClient, world: World
) -> None:
    auth = world.auth("coordinator")
    alliance = f"{API}/alliances/{world.alliance.id}"
    bad = client.patch(alliance, json={"match_defaults": {"preference_bonus": 1.5}}, headers=auth)
    assert bad.status_code == 422
    assert "preference_bonus" in bad.get_json()["errors"]["match_defaults"]
    refused = client.post(
        f"{alliance}/match-runs", json={"params": {"preference_bonus": -0.1}}, headers=auth
    )
    assert refused.status_code == 422
    assert "preference_bonus" in refused.get_json()["errors"]["params"]
    good = client.patch(alliance, json={"match_defaults": {"preference_bonus": 0.4}}, headers=auth)
    assert good.status_code == 200
    run, _ = run_proposals(client, world, {})
    assert run["params"]["preference_bonus"] == 0.4
    client.post(f"{API}/match-runs/{run['id']}/commit", headers=auth)
    own, _ = run_proposals(client, world, {"preference_bonus": 0})
    assert own["params"]["preference_bonus"] == 0
