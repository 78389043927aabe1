"""Test data built through the services, so tests arrange data the way the service stores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from matcher.models import Alliance, Apprentice, Craftsman, Mentorship, Unit
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.api_keys import create_key
from matcher.services.mentorships import create_mentorship
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.skills import put_skill

TAXONOMY = [
    ("焊接", None, ["welding"]),
    ("氩弧焊", "焊接", ["TIG", "TIG焊"]),
    ("钎焊", "焊接", []),
    ("机械加工", None, []),
    ("数控车削", "机械加工", ["数控车", "CNC车削"]),
    ("数控铣削", "机械加工", []),
    ("电机绕组嵌线", None, ["嵌线"]),
]


def skills(session: Session, owner: Alliance) -> None:
    """A small taxonomy with parents and aliases, the alliance's own."""
    for name, parent, aliases in TAXONOMY:
        put_skill(session, alliance_id=owner.id, name=name, parent=parent, aliases=aliases)


def alliance(session: Session, code: str = "EMCA", **fields: Any) -> Alliance:
    """An alliance; unlike a new one made through the API, it does not require cross-unit
    consent unless asked (``consent_required=True``): tests that are not about consent arrange
    people without it and expect them to take part (tests/services/test_consent.py asks)."""
    return create_alliance(
        session,
        fields={
            "code": code,
            "name": f"{code} 工匠联盟",
            "timezone": "Asia/Shanghai",
            "summary_every_days": 30,
            "consent_required": False,
            **fields,
        },
    )


def unit(session: Session, parent: Alliance, code: str, **fields: Any) -> Unit:
    return create_unit(
        session,
        alliance=parent,
        fields={
            "code": code,
            "name": f"{code} 电机有限公司",
            "region": "杭州",
            "contact_email": f"hr@{code.lower()}.example.cn",
            **fields,
        },
    )


def key(
    session: Session, role: str, *, alliance: Alliance | None = None, unit: Unit | None = None
) -> str:
    return create_key(session, role=role, alliance=alliance, unit=unit).secret


def craftsman_item(external_id: str, **fields: Any) -> dict[str, Any]:
    """A full craftsman record as the API schema would load it."""
    return {
        "external_id": external_id,
        "name": f"工匠{external_id}",
        "email": None,
        "locale": "zh-CN",
        "region": "杭州",
        "active": True,
        "honours": ["全国技术能手"],
        "skills": [{"name": "氩弧焊", "level": 5}],
        "capacity": 2,
        **fields,
    }


def apprentice_item(external_id: str, **fields: Any) -> dict[str, Any]:
    """A full apprentice record as the API schema would load it."""
    return {
        "external_id": external_id,
        "name": f"学徒{external_id}",
        "email": None,
        "locale": "zh-CN",
        "region": "杭州",
        "active": True,
        "wants": [{"name": "焊接", "level": 3, "weight": 1.0}],
        **fields,
    }


@dataclass
class World:
    """Two alliances, three units, keys of every role and scope, and a few people."""

    alliance: Alliance
    other_alliance: Alliance
    unit: Unit
    sibling_unit: Unit
    foreign_unit: Unit
    keys: dict[str, str] = field(default_factory=dict)
    craftsman_ids: dict[str, int] = field(default_factory=dict)
    apprentice_ids: dict[str, int] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def world(session: Session) -> World:
    """Arrange the World and commit it; each alliance has its own copy of the taxonomy."""
    home = alliance(session, "EMCA")
    other = alliance(session, "OTHER")
    skills(session, home)
    skills(session, other)
    w = World(
        alliance=home,
        other_alliance=other,
        unit=unit(session, home, "HZDJ"),
        sibling_unit=unit(session, home, "XTDJ", region="湘潭"),
        foreign_unit=unit(session, other, "FRGN"),
    )
    w.keys = {
        "admin": key(session, "admin"),
        "coordinator": key(session, "coordinator", alliance=home),
        "foreign_coordinator": key(session, "coordinator", alliance=other),
        "hr": key(session, "hr", unit=w.unit),
        "sibling_hr": key(session, "hr", unit=w.sibling_unit),
        "foreign_hr": key(session, "hr", unit=w.foreign_unit),
    }
    for u in (w.unit, w.sibling_unit, w.foreign_unit):
        made = upsert_people(session, kind=CRAFTSMAN, unit=u, items=[craftsman_item(f"C-{u.code}")])
        w.craftsman_ids[u.code] = made.ids[0]
        made = upsert_people(
            session, kind=APPRENTICE, unit=u, items=[apprentice_item(f"A-{u.code}")]
        )
        w.apprentice_ids[u.code] = made.ids[0]
    session.commit()
    return w


def mentorship(
    session: Session,
    craftsman_unit: Unit,
    apprentice_unit: Unit,
    started_on: date,
    tag: str,
    *,
    every: int | None = None,
    craftsman: dict[str, Any] | None = None,
    apprentice: dict[str, Any] | None = None,
) -> Mentorship:
    """A new craftsman and a new apprentice (with emails, fields overridable), paired from
    ``started_on``; flushed, not committed."""
    craftsman_id = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=craftsman_unit,
        items=[
            craftsman_item(
                f"MC-{tag}",
                **{"name": f"师傅{tag}", "email": f"master-{tag}@example.cn"} | (craftsman or {}),
            )
        ],
    ).ids[0]
    apprentice_id = upsert_people(
        session,
        kind=APPRENTICE,
        unit=apprentice_unit,
        items=[
            apprentice_item(
                f"MA-{tag}",
                **{"name": f"学徒{tag}", "email": f"learner-{tag}@example.cn"} | (apprentice or {}),
            )
        ],
    ).ids[0]
    return create_mentorship(
        session,
        craftsman=session.get_one(Craftsman, craftsman_id),
        apprentice=session.get_one(Apprentice, apprentice_id),
        started_on=started_on,
        summary_every_days=every,
    )
