"""The scope policy on its own: each rule of ``matcher.services.access``, and its one home."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.errors import Forbidden, NotFound
from matcher.models import Alliance, Mentorship, Reminder, Unit, User
from matcher.services import access
from matcher.services.access import ADMIN, COORDINATOR, HR, MAY, Principal
from matcher.services.people import LEARNER, MENTOR
from tests import factories
from tests.factories import World

ROOT = Path(__file__).resolve().parents[2]

ADMIN_KEY = Principal(role=ADMIN, key_id=1)
COORD_1 = Principal(role=COORDINATOR, alliance_id=1, key_id=2)
HR_10 = Principal(role=HR, alliance_id=1, unit_id=10, key_id=3)


@pytest.mark.parametrize(
    ("principal", "alliance_id", "unit_ids", "expected"),
    [
        (ADMIN_KEY, 7, (), True),  # an admin reaches everything
        (ADMIN_KEY, None, (), True),
        (COORD_1, 1, (), True),  # a coordinator: its alliance's
        (COORD_1, 1, (10, 11), True),
        (COORD_1, 2, (), False),
        (COORD_1, 2, (10,), False),  # the alliance decides, not a unit id
        (COORD_1, None, (), False),
        (Principal(role=COORDINATOR), None, (), False),  # no alliance reaches nothing
        (HR_10, 1, (10,), True),  # hr: what belongs to its unit
        (HR_10, 1, (11, 10), True),  # either side of a pair
        (HR_10, 1, (11,), False),  # a sibling unit of its alliance
        (HR_10, 1, (), False),  # what belongs to no unit (a run, an alliance)
        (Principal(role=HR, alliance_id=1), 1, (None,), False),  # no unit reaches nothing
        (Principal(role="guest", alliance_id=1, unit_id=10), 1, (10,), False),  # unknown role
    ],
)
def test_reaches(
    principal: Principal, alliance_id: int | None, unit_ids: tuple[int, ...], expected: bool
) -> None:
    assert access.reaches(principal, alliance_id=alliance_id, unit_ids=unit_ids) is expected


@pytest.mark.parametrize("action", list(MAY))
@pytest.mark.parametrize("role", [ADMIN, COORDINATOR, HR, "guest"])
def test_require_follows_the_table_and_admin_may_everything(action: str, role: str) -> None:
    principal = Principal(role=role, alliance_id=1, unit_id=10)
    allowed = role == ADMIN or role in MAY[action]  # type: ignore[index]
    assert access.may(principal, action) is allowed  # type: ignore[arg-type]
    if allowed:
        access.require(principal, action)  # type: ignore[arg-type]
    else:
        with pytest.raises(Forbidden):
            access.require(principal, action)  # type: ignore[arg-type]


def test_the_table_says_what_the_contract_says() -> None:
    """api.md: admin creates and changes alliances; coordinators read theirs and patch its
    settings (match defaults), manage units, taxonomy and matching, read the outbox; people are
    written by their unit's HR."""
    assert dict(MAY) == {
        "alliances.create": frozenset(),
        "alliances.read": {COORDINATOR},
        "alliances.change": frozenset(),
        "alliances.settings": {COORDINATOR},
        "units.change": {COORDINATOR},
        "people.write": {HR},
        "skills.write": {COORDINATOR},
        "matching": {COORDINATOR},
        "reminders.read": {COORDINATOR},
        # webhooks.md: each key registers webhooks and chat groups for its own scope.
        "webhooks.manage": {COORDINATOR, HR},
        "channels.manage": {COORDINATOR, HR},
        "programme.manage": {COORDINATOR},
        # programme.md, two-way choice: preferences and availability, by the person's unit's
        # HR or the coordinator.
        "choice.write": {COORDINATOR, HR},
        # privacy.md: the access log, for admins and the person's own unit's HR.
        "privacy.access_log": {HR},
    }


def test_a_signed_in_user_is_its_alliances_coordinator() -> None:
    user = User(email="c@example.cn", alliance_id=5, locale="en")
    assert access.user_principal(user) == Principal(role=COORDINATOR, alliance_id=5)


def test_only_the_persons_own_units_hr_reads_them_unlogged() -> None:
    assert access.reads_own_unit(HR_10, 10)
    assert not access.reads_own_unit(HR_10, 11)
    assert not access.reads_own_unit(COORD_1, 10)
    assert not access.reads_own_unit(ADMIN_KEY, 10)


def test_an_hr_key_hands_in_summaries_for_its_own_units_person_only() -> None:
    access.require_summary_author(HR_10, 10)
    with pytest.raises(Forbidden):
        access.require_summary_author(HR_10, 11)
    access.require_summary_author(COORD_1, 11)  # the rule is hr's
    access.require_summary_author(ADMIN_KEY, 11)


def _principals(world: World) -> dict[str, Principal]:
    return {
        "admin": ADMIN_KEY,
        "coordinator": Principal(role=COORDINATOR, alliance_id=world.alliance.id),
        "foreign_coordinator": Principal(role=COORDINATOR, alliance_id=world.other_alliance.id),
        "hr": Principal(role=HR, alliance_id=world.alliance.id, unit_id=world.unit.id),
        "sibling_hr": Principal(
            role=HR, alliance_id=world.alliance.id, unit_id=world.sibling_unit.id
        ),
        "foreign_hr": Principal(
            role=HR, alliance_id=world.other_alliance.id, unit_id=world.foreign_unit.id
        ),
    }


def _mentorships(session: Session, world: World) -> list[Mentorship]:
    """A pair across the home alliance's two units, and one inside the other alliance."""
    pairs = [
        factories.mentorship(session, world.sibling_unit, world.unit, date(2026, 1, 1), "a"),
        factories.mentorship(
            session, world.foreign_unit, world.foreign_unit, date(2026, 1, 1), "b"
        ),
    ]
    session.commit()
    return pairs


def test_where_visible_selects_the_rows_reaches_allows(session: Session, world: World) -> None:
    """The list filter and the one-row rule are the same rule: for every kind of key, the
    units, alliances and mentorships a list shows are exactly those ``reaches`` allows, and
    each kind of key sees a different set."""
    _mentorships(session, world)
    units = session.scalars(select(Unit)).all()
    alliances = session.scalars(select(Alliance)).all()
    mentorships = session.scalars(select(Mentorship)).all()
    seen = set()
    for who, principal in _principals(world).items():
        listed_units = session.scalars(
            access.where_visible(
                select(Unit.id), principal, alliance_id=Unit.alliance_id, unit_ids=(Unit.id,)
            )
        ).all()
        assert sorted(listed_units) == sorted(
            u.id for u in units if access.can_see_unit(principal, u)
        ), who
        listed_alliances = session.scalars(
            access.where_visible(select(Alliance.id), principal, alliance_id=Alliance.id)
        ).all()
        assert sorted(listed_alliances) == sorted(
            a.id for a in alliances if access.reaches(principal, alliance_id=a.id)
        ), who
        listed_pairs = session.scalars(
            access.where_visible(
                select(Mentorship.id)
                .join(MENTOR, Mentorship.craftsman_id == MENTOR.id)
                .join(LEARNER, Mentorship.apprentice_id == LEARNER.id),
                principal,
                alliance_id=Mentorship.alliance_id,
                unit_ids=(MENTOR.unit_id, LEARNER.unit_id),
            )
        ).all()
        assert sorted(listed_pairs) == sorted(
            m.id for m in mentorships if access.can_see_mentorship(principal, m)
        ), who
        seen.add(tuple(map(tuple, map(sorted, (listed_units, listed_alliances, listed_pairs)))))
    assert len(seen) == 6  # six kinds of key, six different views


def test_an_hr_key_sees_no_row_of_a_kind_without_units(session: Session, world: World) -> None:
    session.add(
        Reminder(
            alliance_id=world.alliance.id,
            kind="digest",
            recipient="c@example.cn",
            recipient_role="coordinator",
            locale="zh-CN",
            dedupe_key="t",
            status="pending",
            attempts=0,
        )
    )
    session.commit()
    principals = _principals(world)
    counts = {
        who: len(
            session.scalars(
                access.where_visible(select(Reminder.id), p, alliance_id=Reminder.alliance_id)
            ).all()
        )
        for who, p in principals.items()
    }
    assert counts == {
        "admin": 1,
        "coordinator": 1,
        "foreign_coordinator": 0,
        "hr": 0,
        "sibling_hr": 0,
        "foreign_hr": 0,
    }


def test_loaders_refuse_out_of_scope_as_never_used(session: Session, world: World) -> None:
    principals = _principals(world)
    pair = _mentorships(session, world)[0]
    for who in ("admin", "coordinator", "hr", "sibling_hr"):
        assert access.mentorship_in_scope(session, principals[who], pair.id) is pair
    for who in ("foreign_coordinator", "foreign_hr"):
        with pytest.raises(NotFound) as caught:
            access.mentorship_in_scope(session, principals[who], pair.id)
        with pytest.raises(NotFound) as never_used:
            access.mentorship_in_scope(session, principals[who], 2**31 - 1)
        assert caught.value.detail.replace(str(pair.id), "N") == never_used.value.detail.replace(
            str(2**31 - 1), "N"
        )
    assert access.unit_in_scope(session, principals["hr"], world.unit.id) == world.unit
    with pytest.raises(NotFound):
        access.unit_in_scope(session, principals["sibling_hr"], world.unit.id)
    with pytest.raises(Forbidden):  # a role that never reaches alliances: 403 before the look-up
        access.alliance_in_scope(session, principals["hr"], world.alliance.id)
    with pytest.raises(NotFound):
        access.alliance_in_scope(session, principals["foreign_coordinator"], world.alliance.id)
    with pytest.raises(Forbidden):  # in scope, not the role's to change
        access.require_people_writer(principals["coordinator"], world.unit)
    with pytest.raises(NotFound):
        access.require_people_writer(principals["sibling_hr"], world.unit)
    access.require_people_writer(principals["hr"], world.unit)


# Where the scope rule may be written: the policy, and the key lifecycle (which roles a key
# may be created with). Anywhere else, a comparison with a caller's role is a second copy.
POLICY_FILES = {"matcher/services/access.py", "matcher/services/api_keys.py"}


def _role_comparisons(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr == "role" for o in operands):
                lines.append(node.lineno)
    return lines


def test_no_scope_rule_outside_the_policy() -> None:
    """``principal.role == ...`` and the like are written in the policy only: views, pages,
    services, the CLI and jobs ask it."""
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("matcher", "jobs")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in POLICY_FILES and "migrations" not in path.parts
        for line in _role_comparisons(path)
    }
    assert found == set()
