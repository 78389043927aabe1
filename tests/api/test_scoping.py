"""Auth and scoping as api.md says: 401 without a key, 404 outside the key's scope (existence is
not revealed), 403 for what the key may see but not change. Walks every endpoint."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.models import (
    Apprentice,
    Craftsman,
    MatchRun,
    Proposal,
    RejectedPair,
    WebhookDelivery,
)
from matcher.services import access
from matcher.services.channels import create_channel
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import create_mentorship
from matcher.services.offers import create_offers
from matcher.services.programme import assess
from matcher.services.skills import put_skill
from matcher.services.webhooks import Change, create_endpoint, emit, fan_out
from tests.factories import World

CRAFTSMAN_BODY = {"name": "新工匠", "skills": [{"name": "焊接", "level": 4}]}
APPRENTICE_BODY = {"name": "新学徒", "wants": [{"name": "焊接", "level": 2}]}
FOREIGN_SKILL = "外联盟专有工艺"  # a tag of the other alliance only

# (method, path template, body, {key: expected status}); {unit} is the home unit, etc.
RULES: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/alliances", None, {"admin": 200, "coordinator": 200, "hr": 403}),
    (
        "POST",
        "/alliances",
        {"code": "NEW", "name": "新联盟"},
        {"admin": 201, "coordinator": 403, "hr": 403},
    ),
    (
        "GET",
        "/alliances/{alliance}",
        None,
        {"admin": 200, "coordinator": 200, "foreign_coordinator": 404, "hr": 403},
    ),
    (
        "PATCH",
        "/alliances/{alliance}",
        {"name": "改名"},
        {"admin": 200, "coordinator": 403, "foreign_coordinator": 404, "hr": 403},
    ),
    (  # its coordinator may change the alliance's match defaults (and nothing else of it)
        "PATCH",
        "/alliances/{alliance}",
        {"match_defaults": {"max_pairs_per_unit_pair": 4}},
        {"admin": 200, "coordinator": 200, "foreign_coordinator": 404, "hr": 403},
    ),
    (  # and whether its people take part only with consent, and the notice's version
        "PATCH",
        "/alliances/{alliance}",
        {"consent_required": True, "consent_notice_version": "2"},
        {"admin": 200, "coordinator": 200, "foreign_coordinator": 404, "hr": 403},
    ),
    (  # its units' HR systems show the notice to the people they ask for consent
        "GET",
        "/alliances/{alliance}/consent-notice",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 404,
            "hr": 200,
            "sibling_hr": 200,
            "foreign_hr": 404,
        },
    ),
    (
        "PATCH",
        "/alliances/{alliance}",
        {"match_defaults": {"min_fit": 0.3}, "name": "改名"},
        {"admin": 200, "coordinator": 403, "foreign_coordinator": 404, "hr": 403},
    ),
    (
        "GET",
        "/alliances/{alliance}/units",
        None,
        {"admin": 200, "coordinator": 200, "foreign_coordinator": 404, "hr": 403},
    ),
    (
        "POST",
        "/alliances/{alliance}/units",
        {"code": "NEWU", "name": "新单位"},
        {"admin": 201, "coordinator": 201, "foreign_coordinator": 404, "hr": 403},
    ),
    (
        "GET",
        "/units/{unit}",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 404,
            "hr": 200,
            "sibling_hr": 404,
            "foreign_hr": 404,
        },
    ),
    (
        "PATCH",
        "/units/{unit}",
        {"region": "上海"},
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 404,
            "hr": 403,
            "sibling_hr": 404,
            "foreign_hr": 404,
        },
    ),
    # Each alliance owns its taxonomy: a key reads (and a coordinator writes) its own alliance's
    # tags; an admin key has no alliance and must name one (422 without it).
    (
        "GET",
        "/skills",
        None,
        {
            "admin": 422,
            "coordinator": 200,
            "foreign_coordinator": 200,
            "hr": 200,
            "foreign_hr": 200,
        },
    ),
    (
        "GET",
        "/skills?alliance_id={alliance}",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 404,
            "hr": 200,
            "foreign_hr": 404,
        },
    ),
    (
        "GET",
        "/skills/{skill}",
        None,
        {
            "admin": 422,
            "coordinator": 200,
            "foreign_coordinator": 200,
            "hr": 200,
            "foreign_hr": 200,
        },
    ),
    (
        "GET",
        "/skills/{skill}?alliance_id={alliance}",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 404,
            "hr": 200,
            "foreign_hr": 404,
        },
    ),
    (  # a tag that only the other alliance has
        "GET",
        "/skills/{foreign_skill}",
        None,
        {"coordinator": 404, "foreign_coordinator": 200, "hr": 404, "foreign_hr": 200},
    ),
    ("GET", "/skills/{foreign_skill}?alliance_id={alliance}", None, {"admin": 404}),
    (
        "PUT",
        "/skills/{skill}",
        {"aliases": ["arc"]},
        {"admin": 422, "coordinator": 200, "foreign_coordinator": 200, "hr": 403},
    ),
    (
        "PUT",
        "/skills/{skill}?alliance_id={alliance}",
        {"aliases": ["arc"]},
        {"admin": 200, "coordinator": 200, "foreign_coordinator": 404, "hr": 403},
    ),
    (  # the other alliance's tag is invisible: the coordinator creates its own of that name
        "PUT",
        "/skills/{foreign_skill}",
        {"aliases": []},
        {"coordinator": 201, "foreign_coordinator": 200},
    ),
]
for plural, body in (("craftsmen", CRAFTSMAN_BODY), ("apprentices", APPRENTICE_BODY)):
    RULES += [
        (
            "PUT",
            f"/units/{{unit}}/{plural}/NEW-1",
            body,
            {
                "admin": 201,
                "hr": 201,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 404,
            },
        ),
        (
            "POST",
            f"/units/{{unit}}/{plural}/bulk",
            [{"external_id": "NEW-2", **body}],
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 404,
            },
        ),
        (
            "GET",
            f"/units/{{unit}}/{plural}",
            None,
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 200,
                "foreign_coordinator": 404,
            },
        ),
        (
            "GET",
            f"/{plural}/{{{plural}}}",
            None,
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 200,
                "foreign_coordinator": 404,
            },
        ),
        (  # privacy.md: the copy of everything held about the person
            "GET",
            f"/{plural}/{{{plural}}}/export",
            None,
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 200,
                "foreign_coordinator": 404,
            },
        ),
        (  # erasure: the person's own unit's hr only
            "POST",
            f"/{plural}/{{{plural}}}/erase",
            None,
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 404,
            },
        ),
        (  # who read the person's record: admin and the person's own unit's hr
            "GET",
            f"/access-log?kind={plural[:-1] if plural == 'apprentices' else 'craftsman'}"
            f"&person={{{plural}}}",
            None,
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 403,
            },
        ),
        (
            "PATCH",
            f"/{plural}/{{{plural}}}",
            {"name": "改"},
            {
                "admin": 200,
                "hr": 200,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 404,
            },
        ),
        (
            "DELETE",
            f"/{plural}/{{{plural}}}",
            None,
            {
                "admin": 204,
                "hr": 204,
                "sibling_hr": 404,
                "foreign_hr": 404,
                "coordinator": 403,
                "foreign_coordinator": 404,
            },
        ),
    ]

# Two-way choice (programme.md): a person's preferences or availability are read by whoever sees
# the person, and set by the person's own unit's hr key or the alliance's coordinator.
CHOICE = {
    "admin": 200,
    "coordinator": 200,
    "foreign_coordinator": 404,
    "hr": 200,
    "sibling_hr": 404,
    "foreign_hr": 404,
}
RULES += [
    ("GET", "/apprentices/{apprentices}/preferences", None, CHOICE),
    ("PUT", "/apprentices/{apprentices}/preferences", {"ranked": [], "avoid": []}, CHOICE),
    ("GET", "/craftsmen/{craftsmen}/availability", None, CHOICE),
    (
        "PUT",
        "/craftsmen/{craftsmen}/availability",
        {"accepting": False, "paused_until": None},
        CHOICE,
    ),
]

COORDINATION = {
    "admin": 200,
    "coordinator": 200,
    "foreign_coordinator": 404,
    "hr": 403,
    "foreign_hr": 403,
}
RULES += [
    ("GET", "/alliances/{alliance}/match-runs", None, COORDINATION),
    (
        "POST",
        "/alliances/{alliance}/match-runs",
        {"params": {}},
        {**COORDINATION, "admin": 201, "coordinator": 201},
    ),
    ("GET", "/match-runs/{run}", None, COORDINATION),
    ("GET", "/match-runs/{run}/proposals", None, COORDINATION),
    ("GET", "/match-runs/{run}/unmatched", None, COORDINATION),
    ("GET", "/match-runs/{run}/proposals.csv", None, COORDINATION),
    (
        "POST",
        "/match-runs/{run}/proposals/bulk",
        {"min_score": 0, "status": "approved"},
        COORDINATION,
    ),
    ("POST", "/match-runs/{run}/commit", None, COORDINATION),
    ("GET", "/proposals/{proposal}", None, COORDINATION),
    # Allowed callers get 428 here: the scoping decides before the If-Match check.
    (
        "PATCH",
        "/proposals/{proposal}",
        {"status": "approved"},
        {**COORDINATION, "admin": 428, "coordinator": 428},
    ),
    (
        "GET",
        "/pair-score?craftsman_id={craftsmen_sibling}&apprentice_id={apprentices}",
        None,
        COORDINATION,
    ),
    ("GET", "/alliances/{alliance}/rejected-pairs", None, COORDINATION),
    (
        "DELETE",
        "/rejected-pairs/{rejected}",
        None,
        {**COORDINATION, "admin": 204, "coordinator": 204},
    ),
    ("GET", "/alliances/{alliance}/audit-events", None, COORDINATION),
]
# The mentorship pairs the sibling unit's craftsman with the home unit's apprentice: both units'
# hr keys see it; a foreign unit's does not.
PAIR_SCOPE = {
    "admin": 200,
    "coordinator": 200,
    "foreign_coordinator": 404,
    "hr": 200,
    "sibling_hr": 200,
    "foreign_hr": 404,
}
# Goals, renewal, assessments: the coordinator's; an hr key that sees the pair is refused.
PROGRAMME_MANAGE = {**PAIR_SCOPE, "hr": 403, "sibling_hr": 403}
CHECK_IN = {"author": "apprentice", "rating": 4, "good_fit": True, "comment": "师傅很耐心"}
ASSESSMENT = {
    "theory": 70,
    "practice": 55,
    "skills": [{"name": "氩弧焊", "level": 3}],
    "evaluator": "联盟考核组",
    "result": "fail",
    "comment": None,
}
SUMMARY = {"author": "apprentice", "content": "学习了氩弧焊打底焊 🔥", "hours": 4}
RULES += [
    (
        "GET",
        "/mentorships",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 200,
            "hr": 200,
            "foreign_hr": 200,
        },
    ),
    ("GET", "/mentorships/{mentorship}", None, PAIR_SCOPE),
    ("POST", "/mentorships/{mentorship}/end", {"reason_code": "other"}, PAIR_SCOPE),
    ("GET", "/mentorships/{mentorship}/summaries", None, PAIR_SCOPE),
    (
        "POST",
        "/mentorships/{mentorship}/summaries",
        SUMMARY,
        # The sibling unit's hr may not hand in for the home unit's apprentice.
        {**PAIR_SCOPE, "admin": 201, "coordinator": 201, "hr": 201, "sibling_hr": 403},
    ),
    ("GET", "/alliances/{alliance}/activity?from=2026-01-01&to=2026-06-30", None, COORDINATION),
    (
        "GET",
        "/alliances/{alliance}/activity.xlsx?from=2026-01-01&to=2026-06-30",
        None,
        COORDINATION,
    ),
    ("PATCH", "/mentorships/{mentorship}", {"goals": []}, PROGRAMME_MANAGE),
    ("POST", "/mentorships/{mentorship}/renew", {"months": 6}, PROGRAMME_MANAGE),
    ("GET", "/mentorships/{mentorship}/check-ins", None, PAIR_SCOPE),
    (
        "POST",
        "/mentorships/{mentorship}/check-ins",
        CHECK_IN,
        # Like summaries: the sibling unit's hr may not speak for the home unit's apprentice.
        {**PAIR_SCOPE, "admin": 201, "coordinator": 201, "hr": 201, "sibling_hr": 403},
    ),
    ("GET", "/mentorships/{assessed}/assessment", None, PAIR_SCOPE),
    (
        "POST",
        "/mentorships/{mentorship}/assessment",
        ASSESSMENT,
        {**PROGRAMME_MANAGE, "admin": 201, "coordinator": 201},
    ),
    ("PUT", "/mentorships/{assessed}/assessment", ASSESSMENT, PROGRAMME_MANAGE),
    (
        "GET",
        "/reminders",
        None,
        {
            "admin": 200,
            "coordinator": 200,
            "foreign_coordinator": 200,
            "hr": 403,
            "foreign_hr": 403,
        },
    ),
]

# Webhooks: each key registers for its own scope; the arranged one is the home unit's hr key's,
# seen by its alliance's coordinator too, by no other unit's key and no other alliance's.
EVERY_KEY = {
    "admin": 200,
    "coordinator": 200,
    "foreign_coordinator": 200,
    "hr": 200,
    "sibling_hr": 200,
    "foreign_hr": 200,
}
UNIT_WEBHOOK = {
    "admin": 200,
    "coordinator": 200,
    "foreign_coordinator": 404,
    "hr": 200,
    "sibling_hr": 404,
    "foreign_hr": 404,
}
WEBHOOK_BODY = {"url": "https://hr.example.cn/hooks", "events": ["*"]}
RULES += [
    ("GET", "/webhooks", None, EVERY_KEY),
    ("POST", "/webhooks", WEBHOOK_BODY, dict.fromkeys(EVERY_KEY, 201)),
    ("GET", "/webhooks/{webhook}", None, UNIT_WEBHOOK),
    ("PATCH", "/webhooks/{webhook}", {"description": "考勤系统"}, UNIT_WEBHOOK),
    (
        "DELETE",
        "/webhooks/{webhook}",
        None,
        {who: 204 if status == 200 else status for who, status in UNIT_WEBHOOK.items()},
    ),
    ("POST", "/webhooks/{webhook}/rotate-secret", None, UNIT_WEBHOOK),
    ("GET", "/webhooks/{webhook}/deliveries", None, UNIT_WEBHOOK),
    (
        "POST",
        "/webhooks/{webhook}/deliveries/{delivery}/retry",
        None,
        {who: 202 if status == 200 else status for who, status in UNIT_WEBHOOK.items()},
    ),
]

# Chat channels: the arranged one is the home unit's (its hr key's), seen by its alliance's
# coordinator too. A coordinator registers for its alliance, an hr key for its unit; an admin
# key names the alliance.
CHANNEL_BODY = {
    "kind": "wecom",
    "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    "events": ["escalation"],
}
RULES += [
    ("GET", "/notification-channels", None, EVERY_KEY),
    (
        "POST",
        "/notification-channels",
        CHANNEL_BODY,
        {**dict.fromkeys(EVERY_KEY, 201), "admin": 422},
    ),
    ("GET", "/notification-channels/{channel}", None, UNIT_WEBHOOK),
    ("PATCH", "/notification-channels/{channel}", {"description": "车间群"}, UNIT_WEBHOOK),
    (
        "DELETE",
        "/notification-channels/{channel}",
        None,
        {who: 204 if status == 200 else status for who, status in UNIT_WEBHOOK.items()},
    ),
]
# Offers (programme.md, "Two-way choice"): a sibling-unit craftsman offered a home-unit
# apprentice; both units' hr keys see it, only coordinators answer for the craftsman.
RULES += [
    ("GET", "/offers", None, EVERY_KEY),
    ("GET", "/offers?status=offered&unit_id={unit}", None, EVERY_KEY),
    ("GET", "/offers/{offer}", None, PAIR_SCOPE),
    ("POST", "/offers/{offer}/accept", None, PROGRAMME_MANAGE),
    ("POST", "/offers/{offer}/decline", {"reason": "这段时间出差"}, PROGRAMME_MANAGE),
]

CASES = [
    pytest.param(method, path, body, who, status, id=f"{method} {path} as {who}")
    for method, path, body, expected in RULES
    for who, status in expected.items()
]


def _ids(world: World, path: str, session: Session | None = None) -> dict[str, Any]:
    """What the placeholders of ``path`` stand for (runs, proposals and mentorships are made
    here when the path needs them and a session is given)."""
    ids: dict[str, Any] = {}
    if session is not None and any(k in path for k in ("{run}", "{proposal}", "{rejected}")):
        run = create_match_run(
            session, alliance=world.alliance, params=MatchParams(), created_by="test"
        )
        execute_match_run(session, run=run)
        proposal = session.scalars(select(Proposal).where(Proposal.match_run_id == run.id)).first()
        assert proposal is not None
        rejected = RejectedPair(
            craftsman_id=proposal.craftsman_id, apprentice_id=proposal.apprentice_id
        )
        session.add(rejected)
        session.commit()
        ids = {"run": run.id, "proposal": proposal.id, "rejected": rejected.id}
    if session is not None and "{foreign_skill}" in path:
        put_skill(
            session,
            alliance_id=world.other_alliance.id,
            name=FOREIGN_SKILL,
            parent=None,
            aliases=[],
        )
        session.commit()
    if session is not None and "{mentorship}" in path:
        mentorship = create_mentorship(
            session,
            craftsman=session.get_one(Craftsman, world.craftsman_ids[world.sibling_unit.code]),
            apprentice=session.get_one(Apprentice, world.apprentice_ids[world.unit.code]),
            started_on=date(2026, 1, 1),
        )
        session.commit()
        ids["mentorship"] = mentorship.id
    if session is not None and "{webhook}" in path:
        ids |= _webhook_with_a_delivery(session, world)
    if session is not None and "{offer}" in path:
        ids["offer"] = _offer(session, world)
    if session is not None and "{channel}" in path:
        owner = access.Principal(role="hr", alliance_id=world.alliance.id, unit_id=world.unit.id)
        made = create_channel(
            session, owner=owner, fields=dict(CHANNEL_BODY), allow_private=False, https_only=True
        )
        session.commit()
        ids["channel"] = made.id
    if session is not None and "{assessed}" in path:
        mentorship = create_mentorship(
            session,
            craftsman=session.get_one(Craftsman, world.craftsman_ids[world.sibling_unit.code]),
            apprentice=session.get_one(Apprentice, world.apprentice_ids[world.unit.code]),
            started_on=date(2026, 1, 1),
        )
        fields = {**ASSESSMENT, "skills": list(ASSESSMENT["skills"])}
        assess(session, mentorship=mentorship, fields=fields, today=date(2026, 6, 1), actor="test")
        session.commit()
        ids["assessed"] = mentorship.id
    return {
        "alliance": world.alliance.id,
        "unit": world.unit.id,
        "skill": "焊接",
        "foreign_skill": FOREIGN_SKILL,
        "craftsmen": world.craftsman_ids[world.unit.code],
        "apprentices": world.apprentice_ids[world.unit.code],
        "craftsmen_sibling": world.craftsman_ids[world.sibling_unit.code],
        "run": ids.get("run", 1),
        "proposal": ids.get("proposal", 1),
        "rejected": ids.get("rejected", 1),
        "mentorship": ids.get("mentorship", 1),
        "webhook": ids.get("webhook", 1),
        "delivery": ids.get("delivery", 1),
        "channel": ids.get("channel", 1),
        "assessed": ids.get("assessed", 1),
        "offer": ids.get("offer", 1),
    }


def _offer(session: Session, world: World) -> int:
    """An open offer of a committed run: the sibling unit's craftsman, the home unit's
    apprentice."""
    run = MatchRun(alliance_id=world.alliance.id, status="committed", params={})
    session.add(run)
    session.flush()
    proposal = Proposal(
        match_run_id=run.id,
        craftsman_id=world.craftsman_ids[world.sibling_unit.code],
        apprentice_id=world.apprentice_ids[world.unit.code],
        score=0.9,
        fit=0.9,
        status="approved",
    )
    session.add(proposal)
    session.flush()
    (offer,) = create_offers(session, run=run, approved=[proposal])
    session.commit()
    return offer.id


def _webhook_with_a_delivery(session: Session, world: World) -> dict[str, int]:
    """The home unit's hr webhook, with one delivery queued for it."""
    owner = access.Principal(role="hr", alliance_id=world.alliance.id, unit_id=world.unit.id)
    endpoint = create_endpoint(
        session,
        owner=owner,
        url="https://hr.example.cn/hooks",
        events=["*"],
        description=None,
        allow_private=False,
        https_only=True,
    )
    emit(
        session,
        [Change("person.deactivated", world.alliance.id, (world.unit.id,), {"id": 1})],
    )
    fan_out(session)
    session.commit()
    delivery = session.scalars(
        select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    ).one()
    return {"webhook": endpoint.id, "delivery": delivery}


def _url(world: World, path: str, session: Session | None = None) -> str:
    return "/api/v1" + path.format(**_ids(world, path, session))


def _people_count(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Craftsman)) or 0,
        session.scalar(select(func.count()).select_from(Apprentice)) or 0,
    )


# The policy's questions (matcher.services.access): whether the role may, whether a resource
# lies in the key's scope, which rows a list shows (where_visible, or scope_params for a list
# built once per shape of caller by where_visible), whose taxonomy a key reads.
POLICY_QUESTIONS = ("require", "reaches", "where_visible", "scope_params", "taxonomy_alliance_id")


def _asked_policy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each question the request asks the policy (the loaders ask through these too)."""
    asked: list[str] = []
    for name in POLICY_QUESTIONS:
        answer = getattr(access, name)

        def spy(*args: Any, _name: str = name, _answer: Any = answer, **kwargs: Any) -> Any:
            asked.append(_name)
            return _answer(*args, **kwargs)

        monkeypatch.setattr(access, name, spy)
    return asked


@pytest.mark.parametrize(("method", "path", "body", "who", "status"), CASES)
def test_every_endpoint_answers_each_key_as_the_contract_says(
    client: FlaskClient,
    session: Session,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: Any,
    who: str,
    status: int,
) -> None:
    """Each answer comes from the one policy: every endpoint asks it, with every kind of key."""
    url = _url(world, path, session)
    before = _people_count(session)
    asked = _asked_policy(monkeypatch)
    response = client.open(url, method=method, json=body, headers=world.auth(who))
    assert response.status_code == status, response.get_data(as_text=True)
    assert asked, "the endpoint decided who may do this without asking matcher.services.access"
    if status >= 400:
        assert response.mimetype == "application/problem+json"
        assert _people_count(session) == before  # a refused write wrote nothing


UNUSED = 2**31 - 1  # the largest id there can be; never one these tests make
PEOPLE_WRITES = [
    (method, path)
    for method, path, _, expected in RULES
    if path.startswith(("/units/{unit}/craftsmen", "/units/{unit}/apprentices", "/craftsmen/"))
    or path.startswith("/apprentices/")
    if expected.get("coordinator") == 403
]
# 403s for a resource the key can see but its role may not change: the only refusals where an
# existing id and an unused one rightly answer differently (403, 404).
IN_SCOPE_REFUSALS = {
    ("PATCH", "/alliances/{alliance}", "coordinator"),
    ("PATCH", "/units/{unit}", "hr"),
    ("POST", "/mentorships/{mentorship}/summaries", "sibling_hr"),
    ("POST", "/mentorships/{mentorship}/check-ins", "sibling_hr"),
    *(
        (method, path, who)
        for method, path, _, expected in RULES
        if path.startswith(("/mentorships/", "/offers/")) and expected.get("hr") == 403
        for who in ("hr", "sibling_hr")
    ),
    *((method, path, "coordinator") for method, path in PEOPLE_WRITES),
}
UNUSED_NAME = "从未用过的技能"


def _resources(path: str) -> list[str]:
    """The placeholders naming what a refusal is about: those of the path, where it has any (a
    query's ``alliance_id`` then only says where to look), else the query's. Skill names count,
    but for the tag every alliance has."""
    placeholder = re.compile(r"\{(?!skill\})(\w+)\}")
    route, _, query = path.partition("?")
    return placeholder.findall(route) or placeholder.findall(query)


REFUSALS = [
    pytest.param(method, path, body, who, id=f"{method} {path} as {who}")
    for method, path, body, expected in RULES
    if _resources(path)
    for who, status in expected.items()
    if status == 404 or (status == 403 and (method, path, who) not in IN_SCOPE_REFUSALS)
]


@pytest.mark.parametrize(("method", "path", "body", "who"), REFUSALS)
def test_out_of_scope_answers_exactly_as_an_id_never_used(
    client: FlaskClient,
    session: Session,
    world: World,
    method: str,
    path: str,
    body: Any,
    who: str,
) -> None:
    """security.md: outside a key's scope a resource does not exist. The answer for it is the
    answer for an id never used, byte for byte, but for the echo of the id asked for."""
    ids = _ids(world, path, session)
    asked = {str(ids[name]) for name in _resources(path)}
    existing = client.open(
        "/api/v1" + path.format(**ids), method=method, json=body, headers=world.auth(who)
    )
    unused_ids = {
        **ids,
        **{name: UNUSED_NAME if name.endswith("skill") else UNUSED for name in _resources(path)},
    }
    unused = client.open(
        "/api/v1" + path.format(**unused_ids), method=method, json=body, headers=world.auth(who)
    )
    echoed = existing.get_data(as_text=True)
    for ident in asked:
        unused_ident = UNUSED_NAME if ident == FOREIGN_SKILL else str(UNUSED)
        # The id echoed in the text, never the problem's status (an id may be 404 itself).
        echoed = re.sub(rf'(?<!"status": )\b{re.escape(ident)}\b', unused_ident, echoed)
    assert (existing.status_code, echoed) == (unused.status_code, unused.get_data(as_text=True))
    # The same headers too (their values differ only per request: request id, rate budget).
    assert sorted(existing.headers.keys()) == sorted(unused.headers.keys())


@pytest.mark.parametrize(("method", "path", "body"), [r[:3] for r in RULES])
@pytest.mark.parametrize("authorization", [None, "Bearer mk_not-a-real-key", "Basic abc", "Bearer"])
def test_every_endpoint_needs_a_valid_key(
    client: FlaskClient,
    session: Session,
    world: World,
    method: str,
    path: str,
    body: Any,
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.open(_url(world, path, session), method=method, json=body, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_coordinator_lists_only_its_own_alliance(client: FlaskClient, world: World) -> None:
    listed = client.get("/api/v1/alliances", headers=world.auth("coordinator")).get_json()
    assert [a["code"] for a in listed] == [world.alliance.code]
    everything = client.get("/api/v1/alliances", headers=world.auth("admin")).get_json()
    assert {a["code"] for a in everything} == {world.alliance.code, world.other_alliance.code}


def test_a_revoked_key_is_refused(client: FlaskClient, session: Session, world: World) -> None:
    from matcher.db import utcnow
    from matcher.models import ApiKey
    from matcher.services.api_keys import hash_key

    api_key = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(world.keys["hr"]))
    ).one()
    api_key.revoked_at = utcnow()
    session.commit()
    response = client.get(_url(world, "/units/{unit}"), headers=world.auth("hr"))
    assert response.status_code == 401


def test_every_api_route_has_a_rule(app: Flask) -> None:
    """A new endpoint must be added to RULES, so its access rule is decided and tested."""
    placeholder = re.compile(r"\{[^}]+\}|<[^>]+>|NEW-1")
    covered = {
        (method, placeholder.sub("<>", path.partition("?")[0])) for method, path, _, _ in RULES
    }
    routes = {
        (method, placeholder.sub("<>", rule.rule.removeprefix("/api/v1")))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and not rule.rule.endswith("openapi.json")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes - covered == set()
