"""Two-way choice, first half (programme.md): apprentices' preferences, craftsmen's availability.

An apprentice ranks up to 3 craftsmen and avoids up to 20; every one must be an active craftsman
of another unit of the apprentice's alliance. A craftsman says whether they accept apprentices
and may pause until a date. How both enter a run: ``services/matching.py`` loads them, the
engine scores and forbids (``algorithms/scoring.py: pair_bonus``, ``MatchProblem.avoided``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.errors import ValidationFailed
from matcher.models import Apprentice, ApprenticePreference, Craftsman, Unit
from matcher.services.hr_import import PAIR
from matcher.services.review import audit

MAX_RANKED = 3
MAX_AVOIDED = 20


@dataclass(frozen=True)
class Preferences:
    """An apprentice's ranked craftsmen (best first) and the ones to avoid, by id."""

    ranked: list[int]
    avoid: list[int]
    updated_at: datetime | None  # None: never set


def preferences_of(session: Session, apprentice: Apprentice) -> Preferences:
    """The apprentice's preferences as stored."""
    rows = session.execute(
        select(ApprenticePreference.craftsman_id, ApprenticePreference.rank)
        .where(ApprenticePreference.apprentice_id == apprentice.id)
        .order_by(ApprenticePreference.rank, ApprenticePreference.craftsman_id)
    ).all()
    return Preferences(
        ranked=[craftsman for craftsman, rank in rows if rank is not None],
        avoid=[craftsman for craftsman, rank in rows if rank is None],
        updated_at=apprentice.preferences_updated_at,
    )


def choosable_craftsmen(session: Session, apprentice: Apprentice, ids: set[int]) -> set[int]:
    """Those of ``ids`` that are active craftsmen of another unit of the apprentice's alliance."""
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Craftsman.id)
            .join(Unit, Craftsman.unit_id == Unit.id)
            .where(
                Craftsman.id.in_(ids),
                Craftsman.active.is_(True),
                Unit.alliance_id == apprentice.unit.alliance_id,
                Craftsman.unit_id != apprentice.unit_id,
            )
        )
    )


def check_preferences(
    session: Session, *, apprentice: Apprentice, ranked: Sequence[int], avoid: Sequence[int]
) -> dict[str, Any]:
    """Field-level messages for what is wrong with ``ranked`` and ``avoid`` (empty: nothing),
    each naming the craftsman id."""
    allowed = choosable_craftsmen(session, apprentice, {*ranked, *avoid})
    errors: dict[str, Any] = {}
    for name, ids, most in (("ranked", ranked, MAX_RANKED), ("avoid", avoid, MAX_AVOIDED)):
        if len(ids) > most:
            errors[name] = [f"At most {most} craftsmen."]
            continue
        seen: set[int] = set()
        bad: dict[str, list[str]] = {}
        for index, craftsman_id in enumerate(ids):
            if craftsman_id not in allowed:
                bad[str(index)] = [
                    f"Craftsman {craftsman_id} is not an active craftsman of another unit of "
                    "this alliance."
                ]
            elif craftsman_id in seen:
                bad[str(index)] = [f"Craftsman {craftsman_id} is listed twice."]
            elif name == "avoid" and craftsman_id in ranked:
                bad[str(index)] = [f"Craftsman {craftsman_id} is ranked too; not both."]
            seen.add(craftsman_id)
        if bad:
            errors[name] = bad
    return errors


def set_preferences(
    session: Session,
    *,
    apprentice: Apprentice,
    ranked: Sequence[int],
    avoid: Sequence[int],
    actor: str,
) -> Preferences:
    """Replace the apprentice's preferences (422 naming each bad id; nothing written then)."""
    errors = check_preferences(session, apprentice=apprentice, ranked=ranked, avoid=avoid)
    if errors:
        raise ValidationFailed(
            "Some craftsmen cannot be ranked or avoided by this apprentice.", errors=errors
        )
    before = preferences_of(session, apprentice)
    if (before.ranked, sorted(before.avoid)) == (list(ranked), sorted(avoid)):
        return before  # the same choice again changes nothing
    session.execute(
        delete(ApprenticePreference).where(ApprenticePreference.apprentice_id == apprentice.id)
    )
    rows = [
        {"apprentice_id": apprentice.id, "craftsman_id": c, "rank": r}
        for r, c in enumerate(ranked, start=1)
    ] + [{"apprentice_id": apprentice.id, "craftsman_id": c, "rank": None} for c in avoid]
    if rows:
        session.execute(insert(ApprenticePreference), rows)
    apprentice.preferences_updated_at = utcnow()
    audit(
        session,
        alliance_id=apprentice.unit.alliance_id,
        actor=actor,
        action="apprentice.preferences",
        object_type="apprentice",
        object_id=apprentice.id,
        data={"ranked": list(ranked), "avoid": list(avoid)},
    )
    session.flush()
    return preferences_of(session, apprentice)


def craftsmen_named(
    session: Session, *, apprentice_unit: Unit, names: set[str]
) -> dict[str, int | str]:
    """Craftsmen of the other units of ``apprentice_unit``'s alliance as an HR export names
    them: their external id, or ``UNIT_CODE:external_id`` where two units use the same id.
    Per name, the craftsman's id, or why there is none (a sentence naming it)."""
    qualified = {name: tuple(PAIR.split(name, maxsplit=1)) for name in names}
    wanted = names | {parts[-1] for parts in qualified.values()}
    rows = session.execute(
        select(Craftsman.id, Craftsman.external_id, Unit.code)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(
            Unit.alliance_id == apprentice_unit.alliance_id,
            Craftsman.unit_id != apprentice_unit.id,
            Craftsman.external_id.in_(wanted),
        )
    ).all()
    found: dict[str, int | str] = {}
    for name in names:
        plain = [row.id for row in rows if row.external_id == name]
        if not plain and len(qualified[name]) == 2:
            code, external_id = (part.strip() for part in qualified[name])
            plain = [row.id for row in rows if (row.code, row.external_id) == (code, external_id)]
        if len(plain) == 1:
            found[name] = plain[0]
        elif plain:
            found[name] = (
                f"Craftsman {name!r} is an external id of several units: write UNIT_CODE:{name}."
            )
        else:
            found[name] = f"No craftsman {name!r} in another unit of this alliance."
    return found


def set_named_preferences(
    session: Session,
    *,
    apprentice_ids: Sequence[int],
    choices: Sequence[tuple[list[str], list[str]] | None],
    actor: str,
) -> None:
    """Set each apprentice's preferences from an HR export's names (``choices[i]`` for
    ``apprentice_ids[i]``; None: leave them). Every problem, keyed by the row's index and
    column, in one 422; nothing is set then (the caller rolls back)."""
    chosen = {i for i, choice in zip(apprentice_ids, choices, strict=True) if choice is not None}
    loaded = {a.id: a for a in session.scalars(select(Apprentice).where(Apprentice.id.in_(chosen)))}
    errors: dict[str, Any] = {}
    for index, (apprentice_id, choice) in enumerate(zip(apprentice_ids, choices, strict=True)):
        if choice is None:
            continue
        apprentice = loaded[apprentice_id]
        ranked_names, avoid_names = choice
        named = craftsmen_named(
            session, apprentice_unit=apprentice.unit, names={*ranked_names, *avoid_names}
        )
        problems = {
            column: [named[name]]
            for column, name in [
                *((f"preferred_{rank}", n) for rank, n in enumerate(ranked_names, start=1)),
                *(("avoid", n) for n in avoid_names),
            ]
            if isinstance(named[name], str)
        }
        if problems:
            errors[str(index)] = problems
            continue
        try:
            set_preferences(
                session,
                apprentice=apprentice,
                ranked=[int(named[n]) for n in ranked_names],
                avoid=[int(named[n]) for n in avoid_names],
                actor=actor,
            )
        except ValidationFailed as exc:
            errors[str(index)] = exc.errors
    if errors:
        raise ValidationFailed(
            "Some preferred or avoided craftsmen cannot be chosen; nothing was imported.",
            errors=errors,
        )


@dataclass(frozen=True)
class Availability:
    """Whether a craftsman takes apprentices, and until when they are paused."""

    accepting: bool
    paused_until: date | None
    updated_at: datetime | None  # None: never set


def availability_of(craftsman: Craftsman) -> Availability:
    """The craftsman's availability as stored."""
    return Availability(
        accepting=craftsman.accepting,
        paused_until=craftsman.paused_until,
        updated_at=craftsman.availability_updated_at,
    )


def set_availability(
    session: Session,
    *,
    craftsman: Craftsman,
    accepting: bool,
    paused_until: date | None,
    actor: str,
) -> Availability:
    """Set whether the craftsman accepts apprentices and until when they are paused."""
    if (craftsman.accepting, craftsman.paused_until) == (accepting, paused_until):
        return availability_of(craftsman)  # the same answer again changes nothing
    craftsman.accepting = accepting
    craftsman.paused_until = paused_until
    craftsman.availability_updated_at = utcnow()
    audit(
        session,
        alliance_id=craftsman.unit.alliance_id,
        actor=actor,
        action="craftsman.availability",
        object_type="craftsman",
        object_id=craftsman.id,
        data={
            "accepting": accepting,
            "paused_until": paused_until.isoformat() if paused_until else None,
        },
    )
    session.flush()
    return availability_of(craftsman)
