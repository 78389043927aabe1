"""Schema fuzzing: schemathesis drives the live app from its own ``/api/v1/openapi.json``.

Every operation is fuzzed with a valid key of each role (admin, coordinator, hr) on SQLite and on
PostgreSQL, with positive and negative (schema-violating) data, and every response is held to the
document: no 5xx, only documented status codes, documented content types, bodies and headers
that match their schemas, and schema-violating requests refused with a 4xx.

The suite's run is kept short: ``FUZZ_EXAMPLES`` (default 5) examples per operation, generated
deterministically, and a deadline per example. ``make fuzz`` sets
``FUZZ_EXAMPLES=200``: fresh random examples each time, plus schemathesis' coverage phase (the
boundary values of every field and one field broken at a time, a few hundred cases per
operation; it is built while collecting, which is why the suite's run leaves it out).

What the fuzzer found is pinned down by the plain tests at the end of this file.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.app import create_app
from matcher.db import utcnow
from matcher.models import MatchRun, Proposal, RejectedPair, WebhookDelivery
from matcher.services.access import Principal
from matcher.services.channels import create_channel
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import SummaryInput, add_summary
from matcher.services.offers import create_offers
from matcher.services.programme import CheckInInput, add_check_in, assess
from matcher.services.reminders import queue_reminders
from matcher.services.review import decide, etag
from matcher.services.webhooks import Change, create_endpoint, emit, fan_out
from tests import factories
from tests.factories import World

DEFAULT_EXAMPLES = 5
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
LONG_RUN = FUZZ_EXAMPLES > DEFAULT_EXAMPLES
MAX_ID = 2**31 - 1

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": FUZZ_EXAMPLES,
            "deterministic": not LONG_RUN,
            # The test sends the role's key; generated Authorization headers would replace it.
            "with-security-parameters": False,
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            # Schema-violating data (unknown or read-only fields, wrong types, out-of-range
            # values, missing bodies) must be refused with a 4xx, never stored.
            "negative_data_rejection": {"enabled": True},
            # Other methods on a documented path: 405 with an Allow header that is right.
            "unsupported_method": {"enabled": True},
            "allow_header_conformance": {"enabled": True},
            # Not enabled: positive_data_acceptance. The API has rules an OpenAPI document
            # cannot state (skill tags must exist in the taxonomy, a body's external_id must
            # match the path, "status" xor "craftsman_id"), so schema-valid requests are rightly
            # refused with a 422. ignored_auth is covered endpoint by endpoint in test_scoping.
        },
        "phases": {
            "coverage": {"enabled": LONG_RUN},
            # Stateful sequences need links between operations, which the document does not
            # declare; the arranged resources (``known``) give the random cases ids to work on.
            "stateful": {"enabled": False},
        },
    }
)

# The schema is the app's own document, read from an app object through its WSGI interface; each
# test then calls the app of its backend (the ``app`` fixture), so nothing leaves the process.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json",
    create_app({"env": "testing", "database_url": "sqlite://", "secret_key": "s" * 40}),
    config=CONFIG,
)

# Ids of the arranged resources, by path or query parameter name; set by the ``known`` fixture
# before each test generates its cases (hooks have no access to fixtures).
_known: dict[str, list[Any]] = {}


def _plausible(value: Any, like: Any) -> bool:
    """A value of the known one's type that the schema allows (negative cases stay invalid)."""
    if isinstance(value, bool) or type(value) is not type(like):
        return False
    if isinstance(value, int):
        return 1 <= value <= MAX_ID
    return isinstance(value, str) and 1 <= len(value) <= 100 and "/" not in value


def _towards_known(values: dict[str, Any] | None, path: str) -> st.SearchStrategy[Any]:
    """Each id either as generated or one that exists: random ids alone would only meet 404s."""
    if not values:
        return st.just(values)
    kind = "craftsmen" if "/craftsmen" in path else "apprentices"
    choices = {}
    for name, value in values.items():
        known = _known.get(f"{kind}.{name}") or _known.get(name) or []
        if known and _plausible(value, known[0]):
            choices[name] = st.sampled_from([value, *known])
        else:
            choices[name] = st.just(value)
    return st.fixed_dictionaries(choices)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _towards_known(path_parameters, context.operation.path if context.operation else "")


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _towards_known(query, context.operation.path if context.operation else "")


@schema.hook
def flatmap_headers(
    context: schemathesis.HookContext, headers: dict[str, Any]
) -> st.SearchStrategy[Any]:
    if not headers or "If-Match" not in headers:
        return st.just(headers)
    return _towards_known(headers, context.operation.path if context.operation else "")


ROLES = ("admin", "coordinator", "hr")


@pytest.fixture
def known(session: Session, world: World) -> dict[str, list[Any]]:
    """The world, plus what the other resources need to be more than 404s: a proposed run with
    one pair rejected (a standing rejection, an audit event), three mentorships, one with a
    summary and a check-in, one overdue for weeks (its reminders and escalation queued), one
    assessed and completed (its certificate issued), an hr key's webhook with a delivery, and
    the alliance's chat channel."""
    home, sibling = world.unit, world.sibling_unit
    run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="fuzz"
    )
    execute_match_run(session, run=run)
    proposals = list(session.scalars(select(Proposal).where(Proposal.match_run_id == run.id)))
    assert proposals, "the arranged run proposes pairs"
    decide(
        session,
        proposal=proposals[-1],
        status="rejected",
        comment="拒绝",
        actor="fuzz",
        expected_etag="*",
    )
    rejected = session.scalars(select(RejectedPair)).one()
    started = date.today() - timedelta(days=45)
    mentorships = [
        factories.mentorship(session, home, sibling, started, "FZ1"),
        factories.mentorship(session, sibling, home, started, "FZ2"),
        factories.mentorship(session, sibling, home, started, "FZ3"),
    ]
    # The programme's resources: a check-in on the first pair, the third assessed and passed.
    add_check_in(
        session,
        mentorship=mentorships[0],
        check_in=CheckInInput(author="craftsman", rating=4, good_fit=True, comment="不错"),
        submitted_by="fuzz",
    )
    assess(
        session,
        mentorship=mentorships[2],
        fields={
            "theory": 80,
            "practice": 90,
            "skills": [{"name": "氩弧焊", "level": 3}],
            "evaluator": "考核组",
            "result": "pass",
            "comment": None,
        },
        today=date.today(),
        actor="fuzz",
    )
    add_summary(
        session,
        mentorship=mentorships[0],
        summary=SummaryInput(
            author="apprentice", content="练习了氩弧焊", hours=6.5, skills=["TIG"]
        ),
        submitted_by="fuzz",
    )
    queued = queue_reminders(session, now=utcnow())
    assert queued["overdue"] and queued["escalation"], queued
    # A webhook of the home unit's hr key, with a delivery queued for it.
    webhook = create_endpoint(
        session,
        owner=Principal(role="hr", alliance_id=world.alliance.id, unit_id=home.id),
        url="https://hr.example.cn/hooks",
        events=["*"],
        description="人事系统",
        allow_private=False,
        https_only=True,
    )
    assert emit(session, [Change("person.deactivated", world.alliance.id, (home.id,), {})]) == 1
    assert fan_out(session) == 1
    chat = create_channel(
        session,
        owner=Principal(role="coordinator", alliance_id=world.alliance.id),
        fields={
            "kind": "dingtalk",
            "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
            "secret": "SEC1",
            "events": ["digest", "escalation"],
        },
        allow_private=False,
        https_only=True,
    )
    # Two open offers of a committed run (an alliance that requires its craftsmen's consent).
    offered_run = MatchRun(alliance_id=world.alliance.id, status="committed", params={})
    session.add(offered_run)
    session.flush()
    offered = [
        Proposal(
            match_run_id=offered_run.id,
            craftsman_id=world.craftsman_ids[craftsman_unit.code],
            apprentice_id=world.apprentice_ids[apprentice_unit.code],
            score=0.8,
            fit=0.8,
            status="approved",
        )
        for craftsman_unit, apprentice_unit in ((sibling, home), (home, sibling))
    ]
    session.add_all(offered)
    session.flush()
    offers = create_offers(session, run=offered_run, approved=offered)
    session.commit()
    deliveries = list(session.scalars(select(WebhookDelivery.id)))
    craftsmen = sorted(world.craftsman_ids.values())
    apprentices = sorted(world.apprentice_ids.values())
    _known.clear()
    _known.update(
        {
            "alliance_id": [world.alliance.id, world.other_alliance.id],
            "unit_id": [home.id, sibling.id, world.foreign_unit.id],
            "craftsmen.person_id": craftsmen,
            "apprentices.person_id": apprentices,
            "craftsmen.external_id": [f"C-{home.code}"],
            "apprentices.external_id": [f"A-{home.code}"],
            "craftsman_id": craftsmen,
            "apprentice_id": apprentices,
            "name": ["焊接", "TIG"],
            "run_id": [run.id],
            "proposal_id": [p.id for p in proposals],
            "If-Match": [etag(proposals[0])],
            "rejected_pair_id": [rejected.id],
            "mentorship_id": [m.id for m in mentorships],
            "webhook_id": [webhook.id],
            "delivery_id": deliveries,
            "channel_id": [chat.id],
            "offer_id": [offer.id for offer in offers],
            "match_run_id": [run.id, offered_run.id],
        }
    )
    return _known


@schema.parametrize()
@pytest.mark.usefixtures("known")
@settings(
    deadline=timedelta(seconds=5),
    # The arranged world is shared by the examples of one operation on purpose: what one request
    # changes (a person deactivated, a run committed) is the next request's starting point.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_every_response_is_as_documented(case: schemathesis.Case, app: Flask, world: World) -> None:
    # Coverage cases (boundary values of each field, one field broken at a time: some hundred
    # per operation) go with the admin key, which every rule lets through to the services; the
    # random cases go with the key of each role.
    roles = ("admin",) if case.meta and case.meta.phase.name == "coverage" else ROLES
    for role in roles:
        try:
            case.call_and_validate(app=app, headers=world.auth(role))
        except Exception as exc:
            exc.add_note(f"(sent with the {role} key)")
            raise


# What the fuzzer found, as plain tests.


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]


def test_every_operation_lists_its_error_statuses_as_problems(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    responses = spec["components"]["responses"]
    operations = _operations(spec)
    assert len(operations) > 40
    for method, path, operation in operations:
        statuses = set(operation["responses"])
        assert "default" not in statuses, (method, path)  # each status is listed, no catch-all
        expected = {"401", "403", "503"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "413", "415", "422"}
        if method != "get":
            expected.add("409")
        assert expected <= statuses, (method, path, expected - statuses)
        for status in statuses - {"200", "201", "202", "204"}:
            response = operation["responses"][status]
            if "$ref" in response:
                response = responses[response["$ref"].rpartition("/")[2]]
            assert set(response["content"]) == {"application/problem+json"}, (path, status)
    patch_proposal = spec["paths"]["/api/v1/proposals/{proposal_id}"]["patch"]
    assert {"412", "428"} <= set(patch_proposal["responses"])
    assert [p["name"] for p in patch_proposal["parameters"]] == ["If-Match"]
    assert "404" in spec["paths"]["/api/v1/pair-score"]["get"]["responses"]


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (None, None, 400),  # no body at all
        ("", "application/json", 400),  # an empty one
        ("region=上海", "application/x-www-form-urlencoded", 415),
        ('{"region": "上海"}', "text/plain", 415),
    ],
)
def test_a_body_that_is_not_json_is_refused_not_read_as_empty(
    client: FlaskClient, world: World, data: str | None, content_type: str | None, status: int
) -> None:
    headers = world.auth("coordinator") | ({"Content-Type": content_type} if content_type else {})
    response = client.patch(f"/api/v1/units/{world.unit.id}", data=data, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert "nothing was written" in response.get_json()["detail"]
    unit = client.get(f"/api/v1/units/{world.unit.id}", headers=world.auth("coordinator"))
    assert unit.get_json()["region"] == "杭州"


@pytest.mark.parametrize("plural", ["craftsmen", "apprentices"])
def test_bulk_is_the_bulk_endpoint_not_an_external_id(
    client: FlaskClient, world: World, plural: str
) -> None:
    people = f"/api/v1/units/{world.unit.id}/{plural}"
    url = f"{people}/bulk"
    put = client.put(url, json={"name": "x"}, headers=world.auth("hr"))
    assert put.status_code == 405
    assert put.mimetype == "application/problem+json"
    assert set(put.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    options = client.options(url, headers=world.auth("hr"))
    assert "PUT" not in options.headers["Allow"]
    # Ids that merely start or end with "bulk" are ids like any other.
    for external_id in ("bulk-1", "xbulk"):
        body = (
            factories.craftsman_item(external_id)
            if plural == "craftsmen"
            else factories.apprentice_item(external_id)
        )
        created = client.put(f"{people}/{external_id}", json=body, headers=world.auth("hr"))
        assert created.status_code == 201, created.get_data(as_text=True)


@pytest.mark.parametrize(
    "defaults",
    [
        {"max_pairs_per_unit_pair": "4"},
        {"max_pairs_per_unit_pair": 2**40},
        {"min_pairs_per_apprentice_unit": True},
        {"pinned": [[MAX_ID, MAX_ID]], "max_pairs_per_craftsman_unit": 1},
        {"unit_ids": []},
        [],
        "none",
    ],
)
def test_match_defaults_that_do_not_fit_are_a_422(
    client: FlaskClient, world: World, defaults: Any
) -> None:
    response = client.patch(
        f"/api/v1/alliances/{world.alliance.id}",
        json={"match_defaults": defaults},
        headers=world.auth("coordinator"),
    )
    assert response.status_code == 422
    assert "match_defaults" in response.get_json()["errors"]
