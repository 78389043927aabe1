"""The demo alliance ``make run`` shows: loaded through the same services as real data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.models import Alliance, Apprentice, Craftsman, Unit
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.mentorships import create_mentorship, local_today
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
    mentorships: int


# Days before today that each unit's demo pair started (cadence 30): due later, due within the
# reminder window, just overdue, overdue for weeks (escalated) — so the scheduler has work at once.
DEMO_STARTS_DAYS_AGO = (5, 28, 29, 31, 35, 40, 46, 50, 60, 75, 3, 15)


def load_demo(
    session: Session, *, data: Mapping[str, Any], today: date | None = None
) -> DemoLoaded | None:
    """Load the demo if the database has no alliance yet; ``None`` if it was not loaded.

    People records must be validated already (the CLI loads them through the API's schemas).
    """
    if session.scalar(select(Alliance.id).limit(1)) is not None:
        return None
    alliance = create_alliance(session, fields=data["alliance"])
    for skill in data["skills"]:  # the demo alliance's own taxonomy
        put_skill(
            session,
            alliance_id=alliance.id,
            name=skill["name"],
            parent=skill.get("parent"),
            aliases=skill.get("aliases", []),
        )
    # The demo's people consented to be shown to other units when their units enrolled them
    # (new alliances require it), so that its runs have people to match.
    consent = {"given_at": utcnow(), "version": alliance.consent_notice_version}
    craftsmen = apprentices = 0
    units = []
    for unit_data in data["units"]:
        fields = {k: v for k, v in unit_data.items() if k not in ("craftsmen", "apprentices")}
        unit = create_unit(session, alliance=alliance, fields=fields)
        units.append(unit)
        craftsmen += upsert_people(
            session,
            kind=CRAFTSMAN,
            unit=unit,
            items=[{"cross_unit_consent": consent, **item} for item in unit_data["craftsmen"]],
        ).created
        apprentices += upsert_people(
            session,
            kind=APPRENTICE,
            unit=unit,
            items=[{"cross_unit_consent": consent, **item} for item in unit_data["apprentices"]],
        ).created
    pairs = _demo_mentorships(session, units, today or local_today(alliance.timezone))
    return DemoLoaded(
        alliance_code=alliance.code,
        units=len(data["units"]),
        skills=len(data["skills"]),
        craftsmen=craftsmen,
        apprentices=apprentices,
        mentorships=pairs,
    )


def _demo_mentorships(session: Session, units: list[Unit], today: date) -> int:
    """One committed cross-unit pair per unit: its first apprentice with the next unit's first
    craftsman, started at staggered dates."""
    created = 0
    for index, unit in enumerate(units):
        mentor_unit = units[(index + 1) % len(units)]
        craftsman = session.scalars(
            select(Craftsman).where(Craftsman.unit_id == mentor_unit.id).order_by(Craftsman.id)
        ).first()
        apprentice = session.scalars(
            select(Apprentice).where(Apprentice.unit_id == unit.id).order_by(Apprentice.id)
        ).first()
        if craftsman is None or apprentice is None or mentor_unit.id == unit.id:
            continue
        days_ago = DEMO_STARTS_DAYS_AGO[index % len(DEMO_STARTS_DAYS_AGO)]
        create_mentorship(
            session,
            craftsman=craftsman,
            apprentice=apprentice,
            started_on=today - timedelta(days=days_ago),
        )
        created += 1
    return created
