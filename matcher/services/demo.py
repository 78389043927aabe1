"""The demo alliance ``make run`` shows: loaded through the same services as real data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.models import Alliance
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.skills import put_skill


@dataclass(frozen=True)
class DemoLoaded:
    """What the demo put in the database."""

    alliance_code: str
    units: int
    skills: int
    craftsmen: int
    apprentices: int


def load_demo(session: Session, *, data: Mapping[str, Any]) -> DemoLoaded | None:
    """Load the demo if the database has no alliance yet; ``None`` if it was not loaded.

    People records must be validated already (the CLI loads them through the API's schemas).
    """
    if session.scalar(select(Alliance.id).limit(1)) is not None:
        return None
    for skill in data["skills"]:
        put_skill(
            session,
            name=skill["name"],
            parent=skill.get("parent"),
            aliases=skill.get("aliases", []),
        )
    alliance = create_alliance(session, fields=data["alliance"])
    craftsmen = apprentices = 0
    for unit_data in data["units"]:
        fields = {k: v for k, v in unit_data.items() if k not in ("craftsmen", "apprentices")}
        unit = create_unit(session, alliance=alliance, fields=fields)
        craftsmen += upsert_people(
            session,
            kind=CRAFTSMAN,
            unit=unit,
            items=unit_data["craftsmen"],
        ).created
        apprentices += upsert_people(
            session,
            kind=APPRENTICE,
            unit=unit,
            items=unit_data["apprentices"],
        ).created
    return DemoLoaded(
        alliance_code=alliance.code,
        units=len(data["units"]),
        skills=len(data["skills"]),
        craftsmen=craftsmen,
        apprentices=apprentices,
    )
