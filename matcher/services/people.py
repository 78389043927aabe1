"""Craftsmen and apprentices as HR systems push them: idempotent, set-based upserts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Row,
    Select,
    Subquery,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, aliased, selectinload

from matcher.db import utcnow
from matcher.errors import ValidationFailed, not_found
from matcher.models import Apprentice, ApprenticeWant, Craftsman, CraftsmanSkill, Skill, Unit
from matcher.services.access import Principal, sees_unit
from matcher.services.skills import resolve_skill_keys
from matcher.services.webhooks import Change, emit
from matcher.text import skill_key

Person = Craftsman | Apprentice
Item = Mapping[str, Any]
_CHUNK = 1000  # keeps IN lists well under every database's bound-parameter limit


@dataclass(frozen=True)
class PersonKind:
    """What differs between craftsmen and apprentices; everything else is shared."""

    label: str
    model: type[Craftsman] | type[Apprentice]
    child_model: type[CraftsmanSkill] | type[ApprenticeWant]
    child_attr: Literal["skills", "wants"]
    owner_fk: Literal["craftsman_id", "apprentice_id"]
    scalar_fields: tuple[str, ...]
    child_fields: tuple[str, ...]

    @property
    def child_names(self) -> tuple[str, ...]:
        """The keys of one skill as the API shows it."""
        return ("name", *self.child_fields)


_COMMON = ("name", "email", "locale", "region", "active")
CRAFTSMAN = PersonKind(
    label="craftsman",
    model=Craftsman,
    child_model=CraftsmanSkill,
    child_attr="skills",
    owner_fk="craftsman_id",
    scalar_fields=(*_COMMON, "honours", "capacity"),
    child_fields=("level",),
)
APPRENTICE = PersonKind(
    label="apprentice",
    model=Apprentice,
    child_model=ApprenticeWant,
    child_attr="wants",
    owner_fk="apprentice_id",
    scalar_fields=_COMMON,
    child_fields=("level", "weight"),
)
KINDS = {"craftsmen": CRAFTSMAN, "apprentices": APPRENTICE}


@dataclass
class UpsertOutcome:
    """Counts of a batch and, per item in order, the person's id and what happened to it."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[int] = field(default_factory=list)
    results: list[Literal["created", "updated", "unchanged"]] = field(default_factory=list)


# A person's skills as comparable rows: (skill_id, level[, weight]) in the order sent.
Children = tuple[tuple[Any, ...], ...]


def upsert_people(
    session: Session, *, kind: PersonKind, unit: Unit, items: Sequence[Item]
) -> UpsertOutcome:
    """Create or fully replace people of one unit by external id, all or nothing.

    Raises ``ValidationFailed`` with errors keyed by item index before anything is written.
    Re-sending identical data changes nothing, not even ``updated_at``.
    """
    targets = _resolve(session, kind, items, alliance_id=unit.alliance_id)
    existing = _load_existing(session, kind, unit.id, [item["external_id"] for item in items])
    now = utcnow()
    outcome = UpsertOutcome()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    replaced_children: list[int] = []
    deactivated: list[Change] = []
    withdrawn: list[int] = []
    restored: list[int] = []  # consent given again after none
    for item, children in zip(items, targets, strict=True):
        current = existing.get(item["external_id"])
        scalars = {name: item[name] for name in kind.scalar_fields}
        scalars.update(_consent_columns(item, current[1] if current else None))
        if current is None:
            inserts.append(
                {
                    "unit_id": unit.id,
                    "external_id": item["external_id"],
                    **scalars,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            outcome.results.append("created")
            outcome.ids.append(0)  # filled in once the database assigns it
            continue
        person_id, old_scalars, old_children = current
        outcome.ids.append(person_id)
        if old_scalars == scalars and old_children == children:
            outcome.results.append("unchanged")
            continue
        updates.append({"id": person_id, **scalars, "updated_at": now})
        if old_scalars["active"] and not scalars["active"]:
            deactivated.append(
                deactivation(kind, person_id, item["external_id"], scalars["name"], unit)
            )
        if old_scalars["cross_unit_consent_at"] and not scalars["cross_unit_consent_at"]:
            withdrawn.append(person_id)
        elif scalars["cross_unit_consent_at"] and not old_scalars["cross_unit_consent_at"]:
            restored.append(person_id)
        if old_children != children:
            replaced_children.append(person_id)
        outcome.results.append("updated")

    new_ids: dict[str, int] = {}
    if inserts:
        rows = session.execute(
            insert(kind.model).returning(kind.model.id, kind.model.external_id), inserts
        )
        new_ids = {external_id: person_id for person_id, external_id in rows}
    if updates:
        session.execute(update(kind.model), updates)
    owner = getattr(kind.child_model, kind.owner_fk)
    for start in range(0, len(replaced_children), _CHUNK):
        chunk = replaced_children[start : start + _CHUNK]
        session.execute(delete(kind.child_model).where(owner.in_(chunk)))

    child_rows: list[dict[str, Any]] = []
    replaced = set(replaced_children)
    for index, (item, children) in enumerate(zip(items, targets, strict=True)):
        if outcome.results[index] == "created":
            outcome.ids[index] = new_ids[item["external_id"]]
        elif outcome.ids[index] not in replaced:
            continue
        for position, child in enumerate(children):
            row = {kind.owner_fk: outcome.ids[index], "skill_id": child[0], "position": position}
            row.update(zip(kind.child_fields, child[1:], strict=True))
            child_rows.append(row)
    if child_rows:
        session.execute(insert(kind.child_model), child_rows)

    emit(session, deactivated, now=now)
    if withdrawn or restored:
        # consent reads people's kinds
        from matcher.services.consent import consent_restored, consent_withdrawn

        if withdrawn:
            consent_withdrawn(session, kind=kind.label, person_ids=withdrawn, unit=unit, now=now)
        if restored:
            consent_restored(session, kind=kind.label, person_ids=restored, unit=unit, now=now)
    outcome.created = outcome.results.count("created")
    outcome.updated = outcome.results.count("updated")
    outcome.unchanged = outcome.results.count("unchanged")
    return outcome


CONSENT_COLUMNS = ("cross_unit_consent_at", "cross_unit_consent_version")


def _consent_columns(item: Item, current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The consent columns a person's body asks for: ``cross_unit_consent`` as sent (an object,
    or null to withdraw it). Left out of the body, the consent recorded stays as it is (none for
    a new person): consent is the person's act, never lost to a sync that does not know it."""
    if "cross_unit_consent" not in item:
        if current is None:
            return dict.fromkeys(CONSENT_COLUMNS)
        return {name: current[name] for name in CONSENT_COLUMNS}
    consent = item["cross_unit_consent"]
    if consent is None:
        return dict.fromkeys(CONSENT_COLUMNS)
    return {
        "cross_unit_consent_at": consent["given_at"],
        "cross_unit_consent_version": consent["version"],
    }


def consent_item(given_at: datetime | None, version: str | None) -> dict[str, Any] | None:
    """``cross_unit_consent`` as the API shows it (as ``PersonMixin.cross_unit_consent``)."""
    return None if given_at is None else {"given_at": given_at, "version": version}


def upsert_person(session: Session, *, kind: PersonKind, unit: Unit, item: Item) -> UpsertOutcome:
    """One person through the same path as a batch, with errors not keyed by index."""
    try:
        return upsert_people(session, kind=kind, unit=unit, items=[item])
    except ValidationFailed as exc:
        errors = (exc.errors or {}).get("0", exc.errors)
        raise ValidationFailed(exc.detail, errors=errors) from exc


def patch_person(session: Session, *, kind: PersonKind, person: Person, changes: Item) -> Person:
    """Change some fields of a person; the rest stays as it is."""
    item: dict[str, Any] = {name: getattr(person, name) for name in kind.scalar_fields}
    # Not in ``item``: left out of ``changes``, the recorded consent stays as it is.
    item[kind.child_attr] = [
        _child_as_item(kind, child) for child in getattr(person, kind.child_attr)
    ]
    item.update(changes)
    item["external_id"] = person.external_id
    upsert_person(session, kind=kind, unit=person.unit, item=item)
    session.expire(person)
    return get_person(session, kind=kind, person_id=person.id)


def deactivate_person(session: Session, *, kind: PersonKind, person: Person) -> None:
    """Deactivation keeps the person and their history; they just stop taking part."""
    if person.active:
        session.execute(
            update(kind.model)
            .where(kind.model.id == person.id)
            .values(active=False, updated_at=utcnow())
        )
        emit(session, [deactivation(kind, person.id, person.external_id, person.name, person.unit)])
        session.expire(person)


def deactivation(
    kind: PersonKind, person_id: int, external_id: str, name: str, unit: Unit
) -> Change:
    """The ``person.deactivated`` event of one person."""
    return Change(
        type="person.deactivated",
        alliance_id=unit.alliance_id,
        unit_ids=(unit.id,),
        data={
            "kind": kind.label,
            "id": person_id,
            "external_id": external_id,
            "name": name,
            "unit_id": unit.id,
            "unit_code": unit.code,
        },
    )


def get_person(session: Session, *, kind: PersonKind, person_id: int) -> Person:
    """A person with their skills, or ``NotFound``."""
    person: Person | None = session.scalars(  # type: ignore[assignment]
        select(kind.model)
        .where(kind.model.id == person_id)
        .options(selectinload(getattr(kind.model, kind.child_attr)))
        .execution_options(populate_existing=True)
    ).one_or_none()
    if person is None:
        raise not_found(kind.label, person_id)
    return person


def people_query(
    *,
    kind: PersonKind,
    active: bool | None = None,
    updated_since: bool = False,
    external_id: bool = False,
) -> Select[Any]:
    """The list of a unit's people of a kind as plain rows of their columns and their unit's
    ``unit_alliance_id``, oldest first by id (stable across pages); :func:`with_children` adds
    their skills to a page and :func:`people_items` turns it into what the API shows.
    Parameters: ``unit_id`` and, where asked for here, ``updated_since`` and ``external_id``.

    Built once per filter combination: the request binds values, so SQLAlchemy neither builds
    nor hashes the statement again (its compiled cache is keyed on the statement's shape).
    """
    return _people_query(kind, active, updated_since, external_id)


@functools.cache
def _people_query(
    kind: PersonKind, active: bool | None, updated_since: bool, external_id: bool
) -> Select[Any]:
    people, units = _table(kind.model), _table(Unit)
    # Each row carries its unit's alliance, so that a page answers its own scope question
    # (access.sees_unit) without a look-up of the unit first.
    stmt = (
        select(*_shown_columns(kind, people), units.c.alliance_id.label("unit_alliance_id"))
        .join(units, units.c.id == people.c.unit_id)
        .where(people.c.unit_id == bindparam("unit_id"))
    )
    if active is not None:
        stmt = stmt.where(people.c.active.is_(active))
    if updated_since:
        stmt = stmt.where(people.c.updated_at >= bindparam("updated_since"))
    if external_id:
        stmt = stmt.where(people.c.external_id == bindparam("external_id"))
    return stmt.order_by(people.c.id)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def with_children(kind: PersonKind, dialect: str) -> Callable[[Subquery], Select[Any]]:
    """For :func:`matcher.api.base.page_rows`: a page of :func:`people_query` rows widened with
    their skills (or wants) as one JSON text per person (``children_json``), in one round trip;
    :func:`people_items` reads the result. ``dialect``: the session's (``postgresql``,
    ``sqlite``), which writes the JSON."""
    return _with_children[kind, dialect]


def _children_json(kind: PersonKind, dialect: str, owner_id: ColumnElement[int]) -> Any:
    """The skills (or wants) of the person ``owner_id`` as the API shows them, in the order HR
    sent them: a JSON array as text, built by the database. A page's children then cost neither
    a row each nor any Python: the text goes out as it is (``orjson.Fragment``)."""
    child, skills = _table(kind.child_model), _table(Skill)
    columns = (skills.c.name, *(child.c[name] for name in kind.child_fields))
    of_owner = (
        select()
        .join_from(child, skills, skills.c.id == child.c.skill_id)
        .where(child.c[kind.owner_fk] == owner_id)
        # The owner's row is the enclosing query's, also from inside the FROM subquery below.
        .correlate_except(child, skills)
    )
    if dialect == "postgresql":
        objects = func.json_build_object(*_json_pairs(kind, columns))
        array = func.json_agg(aggregate_order_by(objects, child.c.position))
        as_text = cast(func.coalesce(array, literal_column("'[]'::json")), Text)
        return of_owner.add_columns(as_text).scalar_subquery()
    # SQLite (before 3.44) has no ORDER BY inside an aggregate: the rows come from a subquery
    # in order, which SQLite keeps (it never flattens an ordered subquery into an aggregate).
    labelled = (column.label(name) for name, column in zip(kind.child_names, columns, strict=True))
    items = of_owner.add_columns(*labelled).order_by(child.c.position).subquery("items")
    objects = func.json_object(*_json_pairs(kind, tuple(items.c)))
    return select(func.json_group_array(objects)).scalar_subquery()


def _json_pairs(kind: PersonKind, columns: Sequence[Any]) -> list[Any]:
    """``'name', column, 'level', column, ...``: the arguments of a JSON object constructor."""
    pairs: list[Any] = []
    for name, column in zip(kind.child_names, columns, strict=True):
        pairs += [literal(name), column]
    return pairs


def _joined_children(kind: PersonKind, dialect: str, people: Subquery) -> Select[Any]:
    """``people``'s rows with their children as JSON text (``children_json``), in id order."""
    children = _children_json(kind, dialect, people.c.id).label("children_json")
    return select(people, children).order_by(people.c.id)


# One function per kind and dialect, made once: page_rows caches the widened statement by it.
_with_children: dict[tuple[PersonKind, str], Callable[[Subquery], Select[Any]]] = {
    (kind, dialect): functools.partial(_joined_children, kind, dialect)
    for kind in (CRAFTSMAN, APPRENTICE)
    for dialect in ("postgresql", "sqlite")
}


@functools.cache
def _person_rows(kind: PersonKind, dialect: str) -> Select[Any]:
    """One person by ``person_id`` as a row of :func:`with_children`, with its unit's alliance
    (``unit_alliance_id``) for the scope check."""
    people, units = _table(kind.model), _table(Unit)
    person = (
        select(*_shown_columns(kind, people), units.c.alliance_id.label("unit_alliance_id"))
        .join(units, units.c.id == people.c.unit_id)
        .where(people.c.id == bindparam("person_id"))
        .subquery("person")
    )
    return _joined_children(kind, dialect, person)


# The two people of a pair, as the proposal and mentorship queries join them.
MENTOR = aliased(Craftsman, name="mentor")
LEARNER = aliased(Apprentice, name="learner")


def person_ref(person_id: int, name: str, unit_id: int) -> dict[str, Any]:
    """Another person as a proposal or a mentorship shows them."""
    return {"id": person_id, "name": name, "unit_id": unit_id}


# Both people's names and units, for a query that joins MENTOR and LEARNER to a pair.
PAIR_COLUMNS = (
    MENTOR.name.label("craftsman_name"),
    MENTOR.unit_id.label("craftsman_unit_id"),
    LEARNER.name.label("apprentice_name"),
    LEARNER.unit_id.label("apprentice_unit_id"),
)


def pair_refs(pair: Row[Any], names: Row[Any]) -> dict[str, dict[str, Any]]:
    """``craftsman`` and ``apprentice`` of a pair (a proposal, a mentorship): their ids from
    ``pair``, their names and units from the :data:`PAIR_COLUMNS` of ``names``."""
    return {
        "craftsman": person_ref(pair.craftsman_id, names.craftsman_name, names.craftsman_unit_id),
        "apprentice": person_ref(
            pair.apprentice_id, names.apprentice_name, names.apprentice_unit_id
        ),
    }


def person_item(
    session: Session, *, kind: PersonKind, person_id: int, principal: Principal | None = None
) -> dict[str, Any]:
    """One person as the API shows them (as :func:`people_items`), or ``NotFound``; with
    ``principal``, also when the person lies outside its scope (as if they did not exist).
    The scope is checked on the person's own row: no separate look-up of the unit."""
    stmt = _person_rows(kind, session.get_bind().dialect.name)
    row = session.execute(stmt, {"person_id": person_id}).one_or_none()
    if row is None or (
        principal is not None
        and not sees_unit(principal, unit_id=row.unit_id, alliance_id=row.unit_alliance_id)
    ):
        raise not_found(kind.label, person_id)
    return people_items(kind, [row])[0]


def people_items(kind: PersonKind, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`with_children` as the API shows the people (written by
    :func:`matcher.api.base.json_item`: the children are JSON text already)."""
    fields = _item_fields(kind)
    items: list[dict[str, Any]] = []
    for row in rows:
        mapping = row._mapping
        item = {name: mapping[name] for name in fields}
        item["cross_unit_consent"] = consent_item(
            mapping["cross_unit_consent_at"], mapping["cross_unit_consent_version"]
        )
        item[kind.child_attr] = orjson.Fragment(mapping["children_json"])
        items.append(item)
    return items


@functools.cache
def _item_fields(kind: PersonKind) -> tuple[str, ...]:
    return ("id", "unit_id", "external_id", *kind.scalar_fields, "created_at", "updated_at")


def _shown_columns(kind: PersonKind, people: Table) -> list[Column[Any]]:
    """The columns a person's API item is made of: a list page reads no more (each date-time
    column read costs a conversion per row)."""
    return [people.c[name] for name in (*_item_fields(kind), *CONSENT_COLUMNS)]


def _child_as_item(kind: PersonKind, child: CraftsmanSkill | ApprenticeWant) -> dict[str, Any]:
    row: dict[str, Any] = {"name": child.skill.name}
    row.update({name: getattr(child, name) for name in kind.child_fields})
    return row


def _resolve(
    session: Session, kind: PersonKind, items: Sequence[Item], *, alliance_id: int
) -> list[Children]:
    """Skill names to ids of the alliance's taxonomy, checking every item; raises with all
    problems found, by index."""
    errors: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        seen_at = first_seen.setdefault(item["external_id"], index)
        if seen_at != index:
            errors.setdefault(str(index), {})["external_id"] = [
                f"Appears more than once in this batch (first at item {seen_at})."
            ]
    known = resolve_skill_keys(
        session,
        (skill_key(child["name"]) for item in items for child in item[kind.child_attr]),
        alliance_id=alliance_id,
    )
    targets: list[Children] = []
    for index, item in enumerate(items):
        rows: list[tuple[Any, ...]] = []
        seen: dict[int, int] = {}
        for position, child in enumerate(item[kind.child_attr]):
            skill_id = known.get(skill_key(child["name"]))
            if skill_id is None or skill_id in seen:
                problem = (
                    f"Unknown skill tag '{child['name']}'; coordinators manage tags at /skills."
                    if skill_id is None
                    else f"Same skill as item {seen[skill_id]} (after aliases are resolved)."
                )
                errors.setdefault(str(index), {}).setdefault(kind.child_attr, {})[str(position)] = {
                    "name": [problem]
                }
                continue
            seen[skill_id] = position
            rows.append((skill_id, *(child[name] for name in kind.child_fields)))
        targets.append(tuple(rows))
    if errors:
        raise ValidationFailed(
            f"{len(errors)} of {len(items)} {kind.label} records are invalid; nothing was written.",
            errors=errors,
        )
    return targets


def _load_existing(
    session: Session, kind: PersonKind, unit_id: int, external_ids: Sequence[str]
) -> dict[str, tuple[int, dict[str, Any], Children]]:
    """The current state of the unit's people among ``external_ids``, in two queries a chunk."""
    model = kind.model
    stored = (*kind.scalar_fields, *CONSENT_COLUMNS)
    columns = [getattr(model, name) for name in stored]
    owner = getattr(kind.child_model, kind.owner_fk)
    child_columns = [getattr(kind.child_model, name) for name in kind.child_fields]
    existing: dict[str, tuple[int, dict[str, Any], Children]] = {}
    unique_ids = sorted(set(external_ids))
    for start in range(0, len(unique_ids), _CHUNK):
        chunk = unique_ids[start : start + _CHUNK]
        rows = session.execute(
            select(model.id, model.external_id, *columns).where(
                model.unit_id == unit_id, model.external_id.in_(chunk)
            )
        ).all()
        if not rows:
            continue
        children: dict[int, list[tuple[Any, ...]]] = {row[0]: [] for row in rows}
        for owner_id, skill_id, *values in session.execute(
            select(owner, kind.child_model.skill_id, *child_columns)
            .where(owner.in_(list(children)))
            .order_by(owner, kind.child_model.position)
        ):
            children[owner_id].append((skill_id, *values))
        for person_id, external_id, *values in rows:
            existing[external_id] = (
                person_id,
                dict(zip(stored, values, strict=True)),
                tuple(children[person_id]),
            )
    return existing
