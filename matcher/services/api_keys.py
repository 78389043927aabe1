"""API keys: what a valid key is, the caller it stands for, and the keys' lifecycle.

A key is valid when the SHA-256 of what the client sent is a stored ``key_hash`` and the key is
not revoked (:func:`valid_key`); the caller is built from the row's scope columns
(:data:`SCOPE_COLUMNS`, :func:`principal_of`). Both the request's usual authentication
(:func:`authenticate`) and the rate limiter's single statement (``matcher.rate_limits``) are
built from these, so the two cannot disagree on what a valid key is.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.errors import Forbidden, Unauthorized, ValidationFailed, not_found
from matcher.models import Alliance, ApiKey, Unit
from matcher.services.access import ADMIN, COORDINATOR, HR, ROLES, Principal
from matcher.services.alliances import alliance_by_code, unit_by_code
from matcher.services.review import audit

KEY_PREFIX = "mk_"
UNKNOWN_KEY = "The key is unknown or revoked."
# What a caller is, read from its key's row (in this order: see principal_of).
SCOPE_COLUMNS = (ApiKey.id, ApiKey.role, ApiKey.alliance_id, ApiKey.unit_id)


def hash_key(key: str) -> str:
    """Keys are 256-bit random, so a plain SHA-256 is a safe, fast lookup hash."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_key(key_hash: Any) -> ColumnElement[bool]:
    """The rows of ``api_keys`` a request presenting a key of this hash may use: the key's own,
    while it is not revoked. ``key_hash`` is a value or a bound parameter."""
    return and_(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))


def principal_of(row: Sequence[Any]) -> Principal:
    """The caller a key's :data:`SCOPE_COLUMNS` stand for."""
    key_id, role, alliance_id, unit_id = row
    return Principal(role=role, alliance_id=alliance_id, unit_id=unit_id, key_id=key_id)


def bearer_key(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or raise 401."""
    if not authorization:
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send 'Authorization: Bearer <key>'.")
    return key


def authenticate(session: Session, authorization: str | None) -> Principal:
    """Turn an ``Authorization: Bearer <key>`` header into the caller, or raise 401."""
    key_hash = hash_key(bearer_key(authorization))
    row = session.execute(select(*SCOPE_COLUMNS).where(valid_key(key_hash))).one_or_none()
    if row is None:
        raise Unauthorized(UNKNOWN_KEY)
    return principal_of(row)


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
    if role not in ROLES:
        raise Forbidden(f"Unknown role '{role}'.")
    if role == ADMIN and (alliance or unit):
        raise Forbidden("An admin key is not scoped to an alliance or a unit.")
    if role == COORDINATOR and (alliance is None or unit is not None):
        raise Forbidden("A coordinator key needs an alliance and no unit.")
    if role == HR and unit is None:
        raise Forbidden("An hr key needs a unit.")
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


def create_key_by_codes(
    session: Session,
    *,
    role: str,
    alliance_code: str | None = None,
    unit_code: str | None = None,
    name: str | None = None,
) -> CreatedKey:
    """:func:`create_key` with the alliance and the unit named by their codes (a unit's code
    is unique in its alliance only, so a unit is named by both)."""
    if unit_code and not alliance_code:
        raise ValidationFailed(
            "A unit is named by its alliance and its code: name the alliance too.",
            errors={"alliance": ["Required with a unit."]},
        )
    alliance = alliance_by_code(session, alliance_code) if alliance_code else None
    unit = None
    if alliance is not None and unit_code:
        unit = unit_by_code(session, alliance=alliance, code=unit_code)
    return create_key(session, role=role, alliance=alliance, unit=unit, name=name)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first (their hashes only: the keys themselves are never stored)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, *, key_id: int, actor: str) -> ApiKey:
    """Revoke a key: refused (401) from its next request on. Idempotent; the first revocation
    is audited (under the key's alliance, so that its coordinator sees it too)."""
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        raise not_found("key", key_id)
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit(
            session,
            alliance_id=api_key.alliance_id,
            actor=actor,
            action="api_key.revoke",
            object_type="api_key",
            object_id=api_key.id,
            data={"role": api_key.role, "prefix": api_key.prefix, "unit_id": api_key.unit_id},
        )
        session.flush()
    return api_key
