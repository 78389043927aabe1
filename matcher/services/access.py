"""Who may see and change what: the scope policy, the one home of the 403 / 404 rules.

Every caller is a :class:`Principal`: an API key (``matcher.services.api_keys`` builds it from
the key's row) or a signed-in coordinator (:func:`user_principal`). Two questions are answered
here and nowhere else:

- **May P do action X on resource R?** :func:`require` says whether the role may do X at all
  (:data:`MAY`; 403 before anything is looked up, whatever the id), :func:`reaches` whether R
  lies in P's scope. A resource outside the scope is reported as absent (404), in the very
  words used for an id that was never used (:func:`matcher.errors.not_found`), so that its
  existence is not revealed; a resource in scope that P's role may not change is 403. The
  ``*_in_scope`` loaders combine the two for each kind of resource.
- **Which rows may P see?** :func:`where_visible` narrows any list's statement with the same
  rule :func:`reaches` applies to one row.

The scope rule itself: an admin reaches everything; a coordinator what belongs to its alliance;
an hr key what belongs to its own unit (a unit, its people, the mentorships one of its people
is in).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, false, or_, select
from sqlalchemy.orm import QueryableAttribute, Session, selectinload

from matcher.errors import Forbidden, ValidationFailed, not_found
from matcher.models import (
    Alliance,
    Apprentice,
    Craftsman,
    MatchRun,
    Mentorship,
    NotificationChannel,
    Offer,
    Proposal,
    RejectedPair,
    Unit,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

ADMIN, COORDINATOR, HR = "admin", "coordinator", "hr"
ROLES = (ADMIN, COORDINATOR, HR)

Action = Literal[
    "alliances.create",
    "alliances.read",
    "alliances.change",
    "alliances.settings",
    "units.change",
    "people.write",
    "skills.write",
    "matching",
    "reminders.read",
    "webhooks.manage",
    "channels.manage",
    "programme.manage",
    "choice.write",
    "privacy.access_log",
]
# The roles that may do each action on what lies in their scope; an admin may do everything.
# Actions every role may do in its scope (read units, people, skills, mentorships; end a
# mentorship, hand in a summary) need no entry.
MAY: Mapping[Action, frozenset[str]] = {
    "alliances.create": frozenset(),
    "alliances.read": frozenset({COORDINATOR}),
    "alliances.change": frozenset(),
    "alliances.settings": frozenset({COORDINATOR}),  # its own alliance's match defaults
    "units.change": frozenset({COORDINATOR}),  # people are written by their unit's HR only
    "people.write": frozenset({HR}),
    "skills.write": frozenset({COORDINATOR}),
    "matching": frozenset({COORDINATOR}),  # runs, proposals, rejections, pair scores
    "reminders.read": frozenset({COORDINATOR}),
    # Each role registers receivers for its own scope (an hr key: its unit's people).
    "webhooks.manage": frozenset({COORDINATOR, HR}),
    "channels.manage": frozenset({COORDINATOR, HR}),  # chat groups: an alliance's, a unit's
    # goals, renewal, flags, the completion assessment, the activity assessment
    "programme.manage": frozenset({COORDINATOR}),
    # an apprentice's preferences, a craftsman's availability (programme.md, "Two-way choice"):
    # the person's own unit's HR system, or the alliance's coordinator
    "choice.write": frozenset({COORDINATOR, HR}),
    # who read a person's record: the person's own unit's hr (privacy.md), and admins
    "privacy.access_log": frozenset({HR}),
}


@dataclass(frozen=True)
class Principal:
    """The caller: an API key, or a signed-in coordinator user (no ``key_id``)."""

    role: str
    alliance_id: int | None = None
    unit_id: int | None = None
    key_id: int | None = None

    @property
    def label(self) -> str:
        """How the audit trail and logs name this caller."""
        return f"{self.role}-key:{self.key_id}"


def user_principal(user: User) -> Principal:
    """A signed-in user of the pages: the coordinator of its alliance."""
    return Principal(role=COORDINATOR, alliance_id=user.alliance_id)


def may(principal: Principal, action: Action) -> bool:
    """Whether the caller's role may do ``action`` (in its scope)."""
    return principal.role == ADMIN or principal.role in MAY[action]


def require(principal: Principal, action: Action) -> None:
    """403 unless the caller's role may do ``action``."""
    if not may(principal, action):
        raise Forbidden(f"A {principal.role} key may not do this.")


def reaches(
    principal: Principal, *, alliance_id: int | None, unit_ids: Iterable[int | None] = ()
) -> bool:
    """Whether a resource of ``alliance_id`` (and, if it belongs to units, of ``unit_ids``)
    lies in the caller's scope. A resource of no unit is out of every hr key's scope."""
    if principal.role == ADMIN:
        return True
    if principal.role == COORDINATOR:
        return principal.alliance_id is not None and principal.alliance_id == alliance_id
    if principal.role == HR:
        return principal.unit_id is not None and principal.unit_id in set(unit_ids)
    return False


S = TypeVar("S", bound=Select[Any])
Column = ColumnElement[Any] | QueryableAttribute[Any]


def where_visible(
    stmt: S,
    principal: Principal,
    *,
    alliance_id: Column,
    unit_ids: Sequence[Column] = (),
) -> S:
    """``stmt`` narrowed to the rows in the caller's scope: :func:`reaches` in SQL, given the
    columns that hold each row's alliance and units (an admin's statement is left as it is).

    The caller's ids are bound as :func:`scope_params` names them, so a statement built once
    for :func:`scope_shape` serves every caller of that shape given their ``scope_params``."""
    if principal.role == ADMIN:
        return stmt
    if principal.role == COORDINATOR and principal.alliance_id is not None:
        return stmt.where(alliance_id == bindparam("scope_alliance_id", principal.alliance_id))
    if principal.role == HR and principal.unit_id is not None and unit_ids:
        unit: BindParameter[int] = bindparam("scope_unit_id", principal.unit_id)
        return stmt.where(or_(*(column == unit for column in unit_ids)))
    return stmt.where(false())


def scope_shape(principal: Principal) -> Principal:
    """A caller :func:`where_visible` narrows the same way as ``principal``, whatever its ids:
    the key of a statement built once per shape (bound with :func:`scope_params`)."""
    return Principal(
        role=principal.role,
        alliance_id=None if principal.alliance_id is None else 0,
        unit_id=None if principal.unit_id is None else 0,
    )


def scope_params(principal: Principal) -> dict[str, int | None]:
    """The values :func:`where_visible` binds for ``principal``."""
    return {"scope_alliance_id": principal.alliance_id, "scope_unit_id": principal.unit_id}


def alliance_in_scope(session: Session, principal: Principal, alliance_id: int) -> Alliance:
    """The alliance, if the caller's key reaches it (hr keys read no alliance resources)."""
    require(principal, "alliances.read")
    alliance = session.get(Alliance, alliance_id)
    if alliance is None or not reaches(principal, alliance_id=alliance.id):
        raise not_found("alliance", alliance_id)
    return alliance


def consent_notice_in_scope(session: Session, principal: Principal, alliance_id: int) -> Alliance:
    """The alliance whose consent notice the caller reads: a coordinator's own, and an hr
    key's unit's alliance too (its HR system shows the notice to the people it asks)."""
    alliance = session.get(Alliance, alliance_id)
    own_hr = principal.role == HR and principal.alliance_id == alliance_id
    if alliance is None or not (reaches(principal, alliance_id=alliance.id) or own_hr):
        raise not_found("alliance", alliance_id)
    return alliance


def taxonomy_alliance_id(session: Session, principal: Principal, alliance_id: int | None) -> int:
    """The alliance whose skill taxonomy the caller reads or writes: the key's own (coordinator,
    hr); an admin key, which has none, must name one (``?alliance_id=``, else 422). An alliance
    outside the key's scope, or none by that id, does not exist (404)."""
    if principal.role == ADMIN:
        if alliance_id is None:
            raise ValidationFailed(
                "An admin key must name the alliance whose taxonomy it means: ?alliance_id=.",
                errors={"alliance_id": ["Required for an admin key."]},
            )
        if session.get(Alliance, alliance_id) is None:
            raise not_found("alliance", alliance_id)
        return alliance_id
    own = principal.alliance_id  # every coordinator and hr key has one (api_keys "scope")
    if own is None or (alliance_id is not None and alliance_id != own):
        raise not_found("alliance", alliance_id if alliance_id is not None else "")
    return own


def can_see_unit(principal: Principal, unit: Unit) -> bool:
    """Whether the unit (and its people) lie in the caller's scope."""
    return sees_unit(principal, unit_id=unit.id, alliance_id=unit.alliance_id)


def sees_unit(principal: Principal, *, unit_id: int, alliance_id: int) -> bool:
    """:func:`can_see_unit` for a unit known by its id and alliance (read with a row that
    belongs to it, so that a read checks its scope without loading the unit)."""
    return reaches(principal, alliance_id=alliance_id, unit_ids=(unit_id,))


# Built once: a request binds ``unit_id`` only (see matcher.services.people.people_query).
_UNIT_ALLIANCE = select(Unit.__table__.c.alliance_id).where(
    Unit.__table__.c.id == bindparam("unit_id")
)


def require_unit_row_visible(
    session: Session, principal: Principal, unit_id: int, alliance_id: int | None
) -> None:
    """:func:`unit_in_scope` for a read that needs the unit's id only, 404 the same way. A read
    that holds the unit's ``alliance_id`` (read with a row of the unit) passes it; without one
    (no row), the unit's alliance is read as one column, the unit not loaded."""
    if alliance_id is None:
        alliance_id = session.execute(_UNIT_ALLIANCE, {"unit_id": unit_id}).scalar_one_or_none()
    if alliance_id is None or not sees_unit(principal, unit_id=unit_id, alliance_id=alliance_id):
        raise not_found("unit", unit_id)


def unit_in_scope(session: Session, principal: Principal, unit_id: int) -> Unit:
    """The unit, if the caller's key reaches it: its alliance's coordinator or its own hr."""
    unit = session.get(Unit, unit_id)
    if unit is None or not can_see_unit(principal, unit):
        raise not_found("unit", unit_id)
    return unit


def require_people_writer(principal: Principal, unit: Unit) -> None:
    """People are written by their own unit's HR system (or an admin); coordinators only read."""
    if not can_see_unit(principal, unit):
        raise not_found("unit", unit.id)
    require(principal, "people.write")


def require_choice_writer(principal: Principal, unit: Unit) -> None:
    """A person's preferences or availability are set by their own unit's HR or the
    alliance's coordinator (404 beyond the scope, as for any person)."""
    if not can_see_unit(principal, unit):
        raise not_found("unit", unit.id)
    require(principal, "choice.write")


def match_run_in_scope(session: Session, principal: Principal, run_id: int) -> MatchRun:
    """A match run of the caller's alliance (coordinators and admins only)."""
    require(principal, "matching")
    run = session.get(MatchRun, run_id)
    if run is None or not reaches(principal, alliance_id=run.alliance_id):
        raise not_found("match run", run_id)
    return run


_RUN_ALLIANCE = select(MatchRun.__table__.c.alliance_id).where(
    MatchRun.__table__.c.id == bindparam("run_id")
)


def require_match_run_visible(
    session: Session, principal: Principal, run_id: int, alliance_id: int | None = None
) -> None:
    """:func:`match_run_in_scope` for a read that needs the run's id only: the same 403 and
    404. A read that holds the run's ``alliance_id`` (read with a row of the run) passes it;
    without one, the run's alliance is read as one column, the run not loaded. The role is
    checked before any read (:func:`require` first, then the query, then this)."""
    require(principal, "matching")
    if alliance_id is None:
        alliance_id = session.execute(_RUN_ALLIANCE, {"run_id": run_id}).scalar_one_or_none()
    if alliance_id is None or not reaches(principal, alliance_id=alliance_id):
        raise not_found("match run", run_id)


def proposal_in_scope(session: Session, principal: Principal, proposal_id: int) -> Proposal:
    """A proposal of a run of the caller's alliance (coordinators and admins only).

    The role is checked first: an hr key is refused alike whether the id exists or not.
    """
    require(principal, "matching")
    proposal = session.get(Proposal, proposal_id)
    run = session.get(MatchRun, proposal.match_run_id) if proposal else None
    if proposal is None or run is None or not reaches(principal, alliance_id=run.alliance_id):
        raise not_found("proposal", proposal_id)
    return proposal


def standing_rejection_in_scope(
    session: Session, principal: Principal, rejected_pair_id: int
) -> RejectedPair:
    """A rejection not yet cleared, of the caller's alliance (coordinators and admins only)."""
    require(principal, "matching")
    rejected = session.get(RejectedPair, rejected_pair_id)
    if (
        rejected is None
        or rejected.cleared_at is not None
        or not reaches(principal, alliance_id=rejected.craftsman.unit.alliance_id)
    ):
        raise not_found("standing rejection", rejected_pair_id)
    return rejected


def can_see_mentorship(principal: Principal, mentorship: Mentorship) -> bool:
    """Coordinators see their alliance's; an hr key sees those of its own unit's people."""
    return reaches(
        principal,
        alliance_id=mentorship.alliance_id,
        unit_ids=(mentorship.craftsman.unit_id, mentorship.apprentice.unit_id),
    )


def mentorship_in_scope(session: Session, principal: Principal, mentorship_id: int) -> Mentorship:
    """A mentorship in the caller's scope, or 404."""
    mentorship = session.get(
        Mentorship,
        mentorship_id,
        options=[selectinload(Mentorship.craftsman), selectinload(Mentorship.apprentice)],
    )
    if mentorship is None or not can_see_mentorship(principal, mentorship):
        raise not_found("mentorship", mentorship_id)
    return mentorship


def offer_in_scope(session: Session, principal: Principal, offer_id: int) -> Offer:
    """An offer in the caller's scope, or 404: coordinators see their alliance's, an hr key
    those of its own unit's people (the craftsman asked or the apprentice offered)."""
    offer = session.get(Offer, offer_id)
    if offer is None or not reaches(
        principal,
        alliance_id=offer.alliance_id,
        unit_ids=(offer.craftsman.unit_id, offer.apprentice.unit_id),
    ):
        raise not_found("offer", offer_id)
    return offer


def reads_own_unit(principal: Principal, unit_id: int) -> bool:
    """Whether ``principal`` is the HR system of the person's own unit ``unit_id``: the one
    reader whose reads of a person are not written to the access log (privacy.md)."""
    return principal.role == HR and principal.unit_id == unit_id


def require_summary_author(principal: Principal, author_unit_id: int) -> None:
    """An hr key hands in summaries for its own unit's person only (the other one of the pair
    is in scope, being in a mentorship of its people, but not its to speak for): 403."""
    if principal.role == HR and author_unit_id != principal.unit_id:
        raise Forbidden("An hr key hands in summaries for its own unit's person only.")


def webhook_endpoint_in_scope(
    session: Session, principal: Principal, endpoint_id: int
) -> WebhookEndpoint:
    """A webhook endpoint in the caller's scope: an admin's (no alliance) only an admin's, an
    alliance's its coordinators', a unit's its hr key's and its alliance's coordinators'."""
    require(principal, "webhooks.manage")
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not reaches(
        principal, alliance_id=endpoint.alliance_id, unit_ids=(endpoint.unit_id,)
    ):
        raise not_found("webhook", endpoint_id)
    return endpoint


def webhook_delivery_in_scope(
    session: Session, principal: Principal, endpoint_id: int, delivery_id: int
) -> tuple[WebhookEndpoint, WebhookDelivery]:
    """A delivery of a webhook in the caller's scope (and of that webhook), or 404."""
    endpoint = webhook_endpoint_in_scope(session, principal, endpoint_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise not_found("delivery", delivery_id)
    return endpoint, delivery


def notification_channel_in_scope(
    session: Session, principal: Principal, channel_id: int
) -> NotificationChannel:
    """A chat channel of the caller's alliance (or, for an hr key, of its own unit), or 404."""
    require(principal, "channels.manage")
    channel = session.get(NotificationChannel, channel_id)
    if channel is None or not reaches(
        principal, alliance_id=channel.alliance_id, unit_ids=(channel.unit_id,)
    ):
        raise not_found("notification channel", channel_id)
    return channel


def own_scope(principal: Principal) -> tuple[int | None, int | None]:
    """The alliance and unit of what a caller registers for its own scope (a webhook): an
    admin's nothing in particular (it hears of everything), a coordinator's its alliance, an hr
    key's its alliance and unit."""
    if principal.role == ADMIN:
        return None, None
    if principal.role == HR:
        return principal.alliance_id, principal.unit_id
    return principal.alliance_id, None


def channel_scope(
    session: Session, principal: Principal, alliance_id: int | None, unit_id: int | None
) -> tuple[int, int | None]:
    """The alliance and unit a new chat channel belongs to: as asked, or the caller's own (an hr
    key: its unit; a coordinator: its alliance; an admin names the alliance, else 422), each in
    the caller's scope (else 404, as for an id never used)."""
    require(principal, "channels.manage")
    if principal.role == HR and unit_id is None:
        unit_id = principal.unit_id
    if unit_id is not None:
        unit = unit_in_scope(session, principal, unit_id)
        if alliance_id is not None and alliance_id != unit.alliance_id:
            raise ValidationFailed(
                "The unit is not of that alliance.", errors={"unit_id": ["Not of alliance_id."]}
            )
        return unit.alliance_id, unit.id
    if principal.role == ADMIN and alliance_id is None:
        raise ValidationFailed(
            "An admin key names the alliance the channel is for.",
            errors={"alliance_id": ["Required for an admin key."]},
        )
    chosen = alliance_id if alliance_id is not None else principal.alliance_id
    if (
        chosen is None
        or not reaches(principal, alliance_id=chosen)
        or session.get(Alliance, chosen) is None
    ):
        raise not_found("alliance", chosen if chosen is not None else "")
    return chosen, None


# privacy.md "Minimum shown across units": all another unit (its people, its HR system) may see
# of a person. Never email, external id, locale, timestamps or consent records.
CROSS_UNIT_FIELDS = ("name", "unit", "skills", "region", "honours")


def shown_across_units(person: Craftsman | Apprentice) -> dict[str, Any] | None:
    """What a person of another unit, or another unit's HR key, may see of ``person``: their
    name, unit (id and name), skills (a craftsman's, with levels) or wanted skills (an
    apprentice's), region and honours; ``None`` (nothing at all) where their alliance requires
    cross-unit consent and they have not given it. The one home of that allowlist: the API,
    the pages (summary, check-in and offer forms) and the emails show other units' people
    through it."""
    if person.unit.alliance.consent_required and person.cross_unit_consent_at is None:
        return None
    return _allowlisted(person)


def shown_to_unit(
    person: Craftsman | Apprentice, viewer_unit_id: int | None
) -> dict[str, Any] | None:
    """What a viewer of ``viewer_unit_id`` may see of ``person``: :func:`shown_across_units`
    for another unit; the same fields, consent or not, to the person's own unit and to the
    alliance's coordinators (``viewer_unit_id`` None: the recipient the person consented to)."""
    if viewer_unit_id is not None and viewer_unit_id != person.unit_id:
        return shown_across_units(person)
    return _allowlisted(person)


def _allowlisted(person: Craftsman | Apprentice) -> dict[str, Any]:
    unit = person.unit
    if isinstance(person, Craftsman):
        skills = [{"name": s.skill.name, "level": s.level} for s in person.skills]
        honours = list(person.honours or [])
    else:
        skills = [{"name": w.skill.name, "level": w.level} for w in person.wants]
        honours = []
    return {
        "name": person.name,
        "unit": {"id": unit.id, "name": unit.name},
        "skills": skills,
        "region": person.region,
        "honours": honours,
    }


def withheld_across_units(
    principal: Principal, *, unit_id: int, consented: bool, consent_required: bool
) -> bool:
    """Whether a person of ``unit_id`` is withheld from ``principal``: an hr key of another
    unit, where the person's alliance requires consent they have not given (the row-level
    form of :func:`shown_across_units`, for lists built from plain rows)."""
    return (
        principal.role == HR and principal.unit_id != unit_id and consent_required and not consented
    )


def pair_shown_to(mentorship: Mentorship, role: str) -> dict[str, dict[str, Any] | None]:
    """Both people of a pair as one of them (``role``: ``craftsman`` or ``apprentice``, the
    holder of a signed link) may see them: themselves, and the other through
    :func:`shown_across_units` (``None``: withheld)."""
    own = mentorship.craftsman if role == "craftsman" else mentorship.apprentice
    return {
        "craftsman": shown_to_unit(mentorship.craftsman, own.unit_id),
        "apprentice": shown_to_unit(mentorship.apprentice, own.unit_id),
    }


# What an event names of a person another unit may receive (no external id, no email).
_EVENT_PERSON_FIELDS = ("id", "name", "unit_id", "unit_code")


def event_data_for_unit(
    data: Mapping[str, Any], unit_id: int | None, withheld: Collection[tuple[str, int]]
) -> dict[str, Any]:
    """An event's ``data`` as a receiver of ``unit_id`` (a unit's webhook or chat group; None:
    the alliance's or the operator's, which receive it whole) may have it: the pair's person of
    another unit through the cross-unit allowlist (``external_id`` dropped), their name
    withheld (None) where ``withheld`` holds them as (role, id) (no consent where required)."""
    shown = dict(data)
    if unit_id is None:
        return shown
    for role in ("craftsman", "apprentice"):
        person = data.get(role)
        if not isinstance(person, Mapping) or person.get("unit_id") == unit_id:
            continue
        kept = {key: person[key] for key in _EVENT_PERSON_FIELDS if key in person}
        if (role, person.get("id")) in withheld:
            kept["name"] = None
        shown[role] = kept
    return shown
