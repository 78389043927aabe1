"""Alliances and their member units."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.db import utcnow
from matcher.errors import Conflict, NotFound, ValidationFailed
from matcher.models import Alliance, Unit
from matcher.services.matching import validate_params

Row = TypeVar("Row", Alliance, Unit)


def create_alliance(session: Session, *, fields: Mapping[str, Any]) -> Alliance:
    """A new alliance; its code is unique."""
    if session.scalar(select(Alliance.id).where(Alliance.code == fields["code"])) is not None:
        raise Conflict(f"An alliance with code '{fields['code']}' exists already.")
    alliance = Alliance(**fields)
    session.add(alliance)
    session.flush()
    return alliance


def update_alliance(
    session: Session, *, alliance: Alliance, changes: Mapping[str, Any]
) -> Alliance:
    """Change an alliance's fields."""
    code = changes.get("code")
    if code is not None and code != alliance.code:
        if session.scalar(select(Alliance.id).where(Alliance.code == code)) is not None:
            raise Conflict(f"An alliance with code '{code}' exists already.")
    defaults = changes.get("match_defaults")
    if defaults:
        # Validated as a run's params are: ids of this alliance, pins within the caps.
        validate_params(
            session,
            alliance=alliance,
            params=MatchParams.from_json(defaults),
            field="match_defaults",
        )
    return _apply(session, alliance, changes)


def alliance_by_code(session: Session, code: str) -> Alliance:
    """The alliance with this code, or ``NotFound``."""
    alliance = session.scalars(select(Alliance).where(Alliance.code == code)).one_or_none()
    if alliance is None:
        raise NotFound(f"No alliance with code '{code}'.")
    return alliance


def create_unit(session: Session, *, alliance: Alliance, fields: Mapping[str, Any]) -> Unit:
    """A new member unit; its code is unique within the alliance."""
    _check_unit_code(session, alliance.id, fields["code"])
    unit = Unit(alliance_id=alliance.id, **fields)
    session.add(unit)
    session.flush()
    return unit


def update_unit(session: Session, *, unit: Unit, changes: Mapping[str, Any]) -> Unit:
    """Change a unit's fields."""
    code = changes.get("code")
    if code is not None and code != unit.code:
        _check_unit_code(session, unit.alliance_id, code)
    return _apply(session, unit, changes)


def unit_by_code(session: Session, *, alliance: Alliance, code: str) -> Unit:
    """The unit of an alliance with this code, or ``NotFound``."""
    unit = session.scalars(
        select(Unit).where(Unit.alliance_id == alliance.id, Unit.code == code)
    ).one_or_none()
    if unit is None:
        raise NotFound(f"No unit with code '{code}' in alliance '{alliance.code}'.")
    return unit


def unit_by_codes(session: Session, *, code: str, alliance_code: str | None = None) -> Unit:
    """The unit with this code, in the alliance ``alliance_code`` if given (unit codes are
    unique per alliance only); ``NotFound`` for none, ``ValidationFailed`` for several."""
    stmt = select(Unit).join(Alliance).where(Unit.code == code)
    if alliance_code:
        stmt = stmt.where(Alliance.code == alliance_code)
    units = session.scalars(stmt.limit(2)).all()
    if not units:
        where = f" in alliance '{alliance_code}'" if alliance_code else ""
        raise NotFound(f"No unit with code '{code}'{where}.")
    if len(units) > 1:
        raise ValidationFailed(
            f"More than one unit has the code '{code}'; name its alliance.",
            errors={"alliance": ["Needed: the unit code is used in several alliances."]},
        )
    return units[0]


def _check_unit_code(session: Session, alliance_id: int, code: str) -> None:
    taken = session.scalar(
        select(Unit.id).where(Unit.alliance_id == alliance_id, Unit.code == code)
    )
    if taken is not None:
        raise Conflict(f"A unit with code '{code}' exists already in this alliance.")


def _apply(session: Session, row: Row, changes: Mapping[str, Any]) -> Row:
    changed = False
    for name, value in changes.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = utcnow()
        session.flush()
    return row
