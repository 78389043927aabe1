"""Who may see and change what: the 401 / 403 / 404 rules of the API contract.

A resource outside the caller's scope is reported as absent (404), in the very words used for
an id that was never used (:func:`matcher.errors.not_found`), so that its existence is not
revealed; a resource in scope that the caller's role may not change is 403. A role that may not
use a route at all is refused (403) before anything is looked up, whatever the id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.errors import Forbidden, Unauthorized, ValidationFailed, not_found
from matcher.models import Alliance, ApiKey, MatchRun, Proposal, RejectedPair, Unit

KEY_PREFIX = "mk_"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    role: str
    alliance_id: int | None = None
    unit_id: int | None = None
    key_id: int | None = None

    @property
    def label(self) -> str:
        """How the audit trail and logs name this caller."""
        return f"{self.role}-key:{self.key_id}"


def hash_key(key: str) -> str:
    """Keys are 256-bit random, so a plain SHA-256 is a safe, fast lookup hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is shown once and never stored."""

    secret: str
    api_key: ApiKey


def create_key(
    session: Session,
    *,
    role: str,
    alliance: Alliance | None = None,
    unit: Unit | None = None,
    name: str | None = None,
) -> CreatedKey:
    """Create an API key of a role, scoped to an alliance (coordinator) or a unit (hr)."""
    if role == "admin" and (alliance or unit):
        raise Forbidden("An admin key is not scoped to an alliance or a unit.")
    if role == "coordinator" and (alliance is None or unit is not None):
        raise Forbidden("A coordinator key needs an alliance and no unit.")
    if role == "hr" and unit is None:
        raise Forbidden("An hr key needs a unit.")
    if role not in ("admin", "coordinator", "hr"):
        raise Forbidden(f"Unknown role '{role}'.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        key_hash=hash_key(secret),
        prefix=secret[:10],
        role=role,
        name=name,
        alliance_id=unit.alliance_id if unit else (alliance.id if alliance else None),
        unit_id=unit.id if unit else None,
    )
    session.add(api_key)
    session.flush()
    return CreatedKey(secret=secret, api_key=api_key)


def bearer_key(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or raise 401."""
    if not authorization:
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    return key


UNKNOWN_KEY = "The key is unknown or revoked."


def authenticate(session: Session, authorization: str | None) -> Principal:
    """Turn an ``Authorization: Bearer <key>`` header into the caller, or raise 401."""
    key = bearer_key(authorization)
    api_key = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if api_key is None:
        raise Unauthorized(UNKNOWN_KEY)
    return Principal(
        role=api_key.role,
        alliance_id=api_key.alliance_id,
        unit_id=api_key.unit_id,
        key_id=api_key.id,
    )


def require_role(principal: Principal, *roles: str) -> None:
    """403 unless the caller has one of the roles (admin always passes)."""
    if principal.role != "admin" and principal.role not in roles:
        raise Forbidden(f"A {principal.role} key may not do this.")


def in_alliance(principal: Principal, alliance_id: int) -> bool:
    """Whether the caller's key reaches what belongs to this alliance."""
    return principal.role == "admin" or principal.alliance_id == alliance_id


def alliance_in_scope(session: Session, principal: Principal, alliance_id: int) -> Alliance:
    """The alliance, if the caller's key reaches it (hr keys read no alliance resources)."""
    require_role(principal, "coordinator")
    alliance = session.get(Alliance, alliance_id)
    if alliance is None or not in_alliance(principal, alliance.id):
        raise not_found("alliance", alliance_id)
    return alliance


def taxonomy_alliance_id(session: Session, principal: Principal, alliance_id: int | None) -> int:
    """The alliance whose skill taxonomy the caller reads or writes: the key's own (coordinator,
    hr); an admin key, which has none, must name one (``?alliance_id=``, else 422). An alliance
    outside the key's scope, or none by that id, does not exist (404)."""
    if principal.role == "admin":
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


def unit_in_scope(session: Session, principal: Principal, unit_id: int) -> Unit:
    """The unit, if the caller's key reaches it: its alliance's coordinator or its own hr."""
    unit = session.get(Unit, unit_id)
    if unit is None or not can_see_unit(principal, unit):
        raise not_found("unit", unit_id)
    return unit


def can_see_unit(principal: Principal, unit: Unit) -> bool:
    """Whether the unit (and its people) lie in the caller's scope."""
    if principal.role == "hr":
        return principal.unit_id == unit.id
    return in_alliance(principal, unit.alliance_id)


def can_see_unit_id(session: Session, principal: Principal, unit_id: int) -> bool:
    """:func:`can_see_unit` for a unit known by its id."""
    unit = session.get(Unit, unit_id)
    return unit is not None and can_see_unit(principal, unit)


def require_people_writer(principal: Principal, unit: Unit) -> None:
    """People are written by their own unit's HR system (or an admin); coordinators only read."""
    if not can_see_unit(principal, unit):
        raise not_found("unit", unit.id)
    require_role(principal, "hr")


def match_run_in_scope(session: Session, principal: Principal, run_id: int) -> MatchRun:
    """A match run of the caller's alliance (coordinators and admins only)."""
    require_role(principal, "coordinator")
    run = session.get(MatchRun, run_id)
    if run is None or not in_alliance(principal, run.alliance_id):
        raise not_found("match run", run_id)
    return run


def proposal_in_scope(session: Session, principal: Principal, proposal_id: int) -> Proposal:
    """A proposal of a run of the caller's alliance (coordinators and admins only).

    The role is checked first: an hr key is refused alike whether the id exists or not.
    """
    require_role(principal, "coordinator")
    proposal = session.get(Proposal, proposal_id)
    run = session.get(MatchRun, proposal.match_run_id) if proposal else None
    if proposal is None or run is None or not in_alliance(principal, run.alliance_id):
        raise not_found("proposal", proposal_id)
    return proposal


def standing_rejection_in_scope(
    session: Session, principal: Principal, rejected_pair_id: int
) -> RejectedPair:
    """A rejection not yet cleared, of the caller's alliance (coordinators and admins only)."""
    require_role(principal, "coordinator")
    rejected = session.get(RejectedPair, rejected_pair_id)
    if (
        rejected is None
        or rejected.cleared_at is not None
        or not in_alliance(principal, rejected.craftsman.unit.alliance_id)
    ):
        raise not_found("standing rejection", rejected_pair_id)
    return rejected
