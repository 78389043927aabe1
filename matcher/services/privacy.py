"""Access, copy, erasure and retention of one person's data (privacy.md).

:data:`PERSON_DATA` is the one list of every table that holds something of a craftsman or an
apprentice: how :func:`export_person` shows it (or why it does not) and how
:func:`erase_person` treats it. A table added with a person column (a foreign key to craftsmen or
apprentices, or an email address) fails ``tests/api/test_privacy.py`` until it has a line here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from matcher.db import Base, utcnow
from matcher.errors import Conflict
from matcher.models import (
    ACCESS_READ,
    CHANNEL_FAILED,
    CHANNEL_PENDING,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    MENTORSHIP_ACTIVE,
    REMINDER_CANCELLED,
    REMINDER_PENDING,
    REMINDER_SENT,
    AccessLogEntry,
    Alliance,
    ChannelMessage,
    Mentorship,
    Reminder,
    Unit,
    WebhookDelivery,
)
from matcher.services import access
from matcher.services.access import Principal
from matcher.services.emails import message_id
from matcher.services.mentorships import add_months
from matcher.services.offers import end_open_offers_of
from matcher.services.people import APPRENTICE, CRAFTSMAN, Person, PersonKind, person_ref
from matcher.services.review import audit

PSEUDONYM_PREFIX = "已删除-"
_PSEUDONYM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L: read aloud safely
CANCELLED_BY_ERASURE = "cancelled: the person it named was erased"


@dataclass(frozen=True)
class Subject:
    """The person being exported or erased, and what identifies them in text."""

    kind: PersonKind
    id: int
    unit_id: int
    name: str
    email: str | None
    external_id: str
    mentorship_ids: tuple[int, ...]


Exporter = Callable[[Session, Subject, Table], list[dict[str, Any]]]


@dataclass(frozen=True)
class Holding:
    """How one table holds a person: how it is exported, and what erasure does to it.

    ``export``: the rows of the person (``None``: not exported, ``why_not`` says why).
    ``authored``: free-text columns of rows the person wrote (``author`` is their kind, or, in a
    table without an ``author`` column, ``author_kind``): emptied on erasure, and withheld from
    the other one's export (it is their text).
    ``scrub``: text or JSON columns that may name the person (their name, email or external id):
    each occurrence is replaced by the pseudonym on erasure.
    ``erase``: what else erasure does, for the inventory (docs/privacy.md follows this list).
    """

    export: Exporter | None
    why_not: str = ""
    authored: tuple[str, ...] = ()
    author_kind: str | None = None
    scrub: tuple[str, ...] = ()
    erase: str = "kept: ids and figures only (the alliance's statistics)"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(session: Session, stmt: Select[Any]) -> list[dict[str, Any]]:
    return [
        {name: _jsonable(value) for name, value in row.items()}
        for row in session.execute(stmt).mappings()
    ]


def _owner_columns(subject: Subject, table: Table) -> list[Column[Any]]:
    """The table's foreign keys to the subject's table."""
    people = subject.kind.model.__tablename__
    return [
        column
        for column in table.columns
        if any(fk.column.table.name == people for fk in column.foreign_keys)
    ]


def by_person(session: Session, subject: Subject, table: Table) -> list[dict[str, Any]]:
    """Rows with a foreign key to the person (none for a table of the other kind of person)."""
    owners = _owner_columns(subject, table)
    if not owners:
        return []
    stmt = select(table).where(or_(*(c == subject.id for c in owners)))
    return _rows(session, stmt.order_by(*table.primary_key.columns))


def by_mentorship(session: Session, subject: Subject, table: Table) -> list[dict[str, Any]]:
    """Rows of the person's mentorships; the other one's free text withheld (it is theirs)."""
    if not subject.mentorship_ids:
        return []
    stmt = select(table).where(table.c.mentorship_id.in_(subject.mentorship_ids))
    rows = _rows(session, stmt.order_by(*table.primary_key.columns))
    withheld = PERSON_DATA[table.name].authored
    for row in rows:
        if withheld and row.get("author") not in (None, subject.kind.label):
            row.update(dict.fromkeys(withheld))
    return rows


def the_person(session: Session, subject: Subject, table: Table) -> list[dict[str, Any]]:
    """The person's own row (an empty list for the other kind's table)."""
    if table.name != subject.kind.model.__tablename__:
        return []
    return _rows(session, select(table).where(table.c.id == subject.id))


def emails_to(session: Session, subject: Subject, table: Table) -> list[dict[str, Any]]:
    """The emails sent or queued to the person: to their address, or to their role in a pair."""
    to_them = [table.c.recipient == subject.email] if subject.email else []
    if subject.mentorship_ids:
        to_them.append(
            table.c.mentorship_id.in_(subject.mentorship_ids)
            & (table.c.recipient_role == subject.kind.label)
        )
    if not to_them:
        return []
    columns = [c for c in table.columns if c.name not in ("locked_until", "claimed_by")]
    stmt = select(*columns).where(or_(*to_them)).order_by(table.c.id)
    return _rows(session, stmt)


def reads_of(session: Session, subject: Subject, table: Table) -> list[dict[str, Any]]:
    """Who read the person's record (the access log)."""
    stmt = select(table).where(
        table.c.person_kind == subject.kind.label, table.c.person_id == subject.id
    )
    return _rows(session, stmt.order_by(table.c.id))


_COPIES = "not exported: copies of the rows above, as told to the alliance's receivers"
_NOT_A_PERSON = "not about a craftsman or an apprentice"

# Every table that holds something of a craftsman or an apprentice (and every table with an
# email address column, with why it is not theirs). Adding a table is one line here.
PERSON_DATA: Mapping[str, Holding] = {
    "craftsmen": Holding(
        the_person,
        erase="name, external id → pseudonym; email, region, honours removed; deactivated",
    ),
    "apprentices": Holding(
        the_person, erase="name, external id → pseudonym; email, region removed; deactivated"
    ),
    "craftsman_skills": Holding(by_person),
    "apprentice_wants": Holding(by_person),
    "proposals": Holding(by_person, scrub=("comment",)),
    "unmatched_apprentices": Holding(by_person),
    "rejected_pairs": Holding(by_person),
    "apprentice_preferences": Holding(by_person),
    "offers": Holding(
        by_person,
        authored=("reason",),
        author_kind="craftsman",
        scrub=("reason", "answered_by"),
        erase="the decline reason the craftsman wrote emptied; mentions → pseudonym",
    ),
    "mentorships": Holding(by_person, scrub=("goals", "end_comment")),
    "training_summaries": Holding(by_mentorship, authored=("content",), scrub=("content",)),
    "check_ins": Holding(by_mentorship, authored=("comment",), scrub=("comment",)),
    "assessments": Holding(by_mentorship, scrub=("comment", "evaluator")),
    "certificates": Holding(by_mentorship),
    "reminders": Holding(
        emails_to,
        scrub=("last_error",),
        erase="pending emails to them cancelled; their address → pseudonym",
    ),
    "access_log": Holding(reads_of, erase="kept: ids only (who read the record, when)"),
    "webhook_events": Holding(None, _COPIES, scrub=("payload",)),
    "webhook_deliveries": Holding(
        None, _COPIES, erase="pending deliveries of an event that named them cancelled"
    ),
    "channel_messages": Holding(
        None, _COPIES, scrub=("data",), erase="pending messages that named them cancelled"
    ),
    "audit_events": Holding(
        None, "not exported: the alliance's record of decisions (ids)", scrub=("data",)
    ),
    "users": Holding(None, f"{_NOT_A_PERSON}: coordinators' accounts", erase="not touched"),
    "units": Holding(None, f"{_NOT_A_PERSON}: a unit's contact address", erase="not touched"),
    "sign_in_throttles": Holding(
        None, f"{_NOT_A_PERSON}: coordinators' failed sign-ins", erase="not touched"
    ),
}


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def subject_of(session: Session, kind: PersonKind, person: Person) -> Subject:
    """The person as export and erasure see them, with the ids of their mentorships."""
    owner = Mentorship.craftsman_id if kind is CRAFTSMAN else Mentorship.apprentice_id
    mentorship_ids = tuple(
        session.scalars(select(Mentorship.id).where(owner == person.id).order_by(Mentorship.id))
    )
    return Subject(
        kind=kind,
        id=person.id,
        unit_id=person.unit_id,
        name=person.name,
        email=person.email,
        external_id=person.external_id,
        mentorship_ids=mentorship_ids,
    )


# --- access log ------------------------------------------------------------------------------

_LOG_COLUMNS = (
    "person_kind",
    "person_id",
    "unit_id",
    "action",
    "reader",
    "reader_role",
    "reader_alliance_id",
    "reader_unit_id",
    "created_at",
)
_LOG_SQL: dict[str, tuple[str, tuple[str, ...] | None]] = {}


def _log_sql(dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
    """The access log's INSERT for ``dialect``, compiled once: its text, and the parameters'
    order where the driver takes them by position (SQLite)."""
    made = _LOG_SQL.get(dialect.name)
    if made is None:
        table = Base.metadata.tables[AccessLogEntry.__tablename__]
        compiled = (
            insert(table)
            .values({name: bindparam(name) for name in _LOG_COLUMNS})
            .compile(dialect=dialect)
        )
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        made = _LOG_SQL[dialect.name] = (compiled.string, positions)
    return made


def log_access(
    session: Session,
    principal: Principal,
    *,
    kind: PersonKind,
    person_id: int,
    unit_id: int,
    action: str = ACCESS_READ,
) -> bool:
    """Write a read of one person's record to the access log, unless the reader is the
    person's own unit's HR system. Whether it was written.

    One INSERT on the request's own connection and transaction (the caller commits), compiled
    once and run on the DBAPI cursor as the rate limiter's statement is: a single read is on
    the hot path, and the ORM's execution machinery cost as much as the read itself."""
    if access.reads_own_unit(principal, unit_id):
        return False
    connection = session.connection()
    dialect = connection.dialect
    now = utcnow()
    values: dict[str, Any] = {
        "person_kind": kind.label,
        "person_id": person_id,
        "unit_id": unit_id,
        "action": action,
        "reader": principal.label,
        "reader_role": principal.role,
        "reader_alliance_id": principal.alliance_id,
        "reader_unit_id": principal.unit_id,
        # As UTCDateTime binds it: naive UTC text on SQLite (one format for every row).
        "created_at": now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        if dialect.name == "sqlite"
        else now,
    }
    sql, positions = _log_sql(dialect)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, values if positions is None else tuple(values[n] for n in positions))
    finally:
        cursor.close()
    return True


def access_log_query(kind: PersonKind, person_id: int) -> Select[Any]:
    """The person's access log, newest first."""
    return (
        select(AccessLogEntry)
        .where(AccessLogEntry.person_kind == kind.label, AccessLogEntry.person_id == person_id)
        .order_by(AccessLogEntry.id.desc())
    )


# --- export ----------------------------------------------------------------------------------


def export_person(session: Session, *, kind: PersonKind, person: Person) -> dict[str, Any]:
    """Everything held about the person, one list of rows per table of :data:`PERSON_DATA`,
    and the people they were paired or proposed with by name only."""
    subject = subject_of(session, kind, person)
    tables: dict[str, list[dict[str, Any]]] = {}
    not_exported: dict[str, str] = {}
    for name, holding in PERSON_DATA.items():
        if holding.export is None:
            not_exported[name] = holding.why_not
        else:
            tables[name] = holding.export(session, subject, _table(name))
    unit = session.get_one(Unit, person.unit_id)
    return {
        "kind": kind.label,
        "id": person.id,
        "exported_at": utcnow().isoformat(),
        "unit": {"id": unit.id, "code": unit.code, "name": unit.name},
        "tables": tables,
        "others": _others(session, subject, tables),
        "not_exported": not_exported,
    }


def _others(
    session: Session, subject: Subject, tables: Mapping[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The other people the exported rows name by id, by name and unit only."""
    other = APPRENTICE if subject.kind is CRAFTSMAN else CRAFTSMAN
    ids = sorted(
        {
            row[other.owner_fk]
            for rows in tables.values()
            for row in rows
            if row.get(other.owner_fk) is not None
        }
    )
    if not ids:
        return []
    model = other.model
    stmt = select(model.id, model.name, model.unit_id).where(model.id.in_(ids)).order_by(model.id)
    return [
        {"kind": other.label, **person_ref(pid, name, unit_id)}
        for pid, name, unit_id in session.execute(stmt)
    ]


# --- erasure ---------------------------------------------------------------------------------


def new_pseudonym(session: Session, kind: PersonKind, unit_id: int) -> str:
    """``已删除-7F3K``: not yet used as an external id in the unit (which keeps them unique)."""
    model = kind.model
    for length in (4, 4, 4, 6, 8, 12):
        code = "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(length))
        candidate = PSEUDONYM_PREFIX + code
        taken = session.scalar(
            select(model.id).where(model.unit_id == unit_id, model.external_id == candidate)
        )
        if taken is None:
            return candidate
    raise Conflict("No free pseudonym in this unit; try again.")  # pragma: no cover


def _needles(subject: Subject) -> list[str]:
    """What finds the person in text: the raw strings and their JSON-escaped forms (JSON
    columns hold non-ASCII as ``\\uXXXX``)."""
    raw = [s for s in (subject.name, subject.email, subject.external_id) if s]
    return sorted({form for s in raw for form in (s, json.dumps(s)[1:-1])})


def _scrub_text(text: str, subject: Subject, pseudonym: str) -> str:
    if text == subject.external_id:
        return pseudonym
    for needle in (subject.name, subject.email):
        if needle:
            text = text.replace(needle, pseudonym)
    return text


def _scrub_value(value: Any, subject: Subject, pseudonym: str) -> Any:
    """A JSON value with every string naming the person rewritten (keys and values)."""
    if isinstance(value, str):
        return _scrub_text(value, subject, pseudonym)
    if isinstance(value, list):
        return [_scrub_value(item, subject, pseudonym) for item in value]
    if isinstance(value, dict):
        return {
            _scrub_text(key, subject, pseudonym): _scrub_value(item, subject, pseudonym)
            for key, item in value.items()
        }
    return value


def _scrub_column(
    session: Session, table: Table, column: Column[Any], subject: Subject, pseudonym: str
) -> list[int]:
    """Rewrite the rows of ``column`` that name the person; the ids of the rows changed."""
    needles = _needles(subject)
    if not needles:
        return []
    as_text = cast(column, Text)
    stmt = select(table.c.id, column).where(
        or_(*(as_text.contains(needle, autoescape=True) for needle in needles))
    )
    changed: list[dict[str, Any]] = []
    for row_id, value in session.execute(stmt):
        scrubbed = _scrub_value(value, subject, pseudonym)
        if scrubbed != value:
            changed.append({"row_id": row_id, "value": scrubbed})
    for change in changed:
        session.execute(
            update(table).where(table.c.id == change["row_id"]).values({column: change["value"]})
        )
    return [change["row_id"] for change in changed]


def _empty_authored(session: Session, subject: Subject, table: Table, holding: Holding) -> int:
    """Empty the free text the person wrote: rows of their mentorships they are the author of,
    or, where a table's text is always one kind's (an offer's decline reason), their rows."""
    if not holding.authored:
        return 0
    if holding.author_kind is not None:
        if holding.author_kind != subject.kind.label:
            return 0
        theirs = table.c[f"{subject.kind.label}_id"] == subject.id
    elif subject.mentorship_ids:
        theirs = table.c.mentorship_id.in_(subject.mentorship_ids) & (
            table.c.author == subject.kind.label
        )
    else:
        return 0
    values = {name: (None if table.c[name].nullable else "") for name in holding.authored}
    result = session.execute(update(table).where(theirs).values(values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def erase_person(
    session: Session, *, kind: PersonKind, person: Person, actor: str
) -> dict[str, Any]:
    """Replace the person's personal fields by a pseudonym, empty the free text they wrote,
    rewrite every mention of them (:data:`PERSON_DATA`), cancel what was queued to them or
    about them, and audit it. Irreversible. Counts and statistics stay: no row is deleted.

    Claimed by compare-and-set, so that two schedulers (or a job and a request) erase a person
    once: the second gets ``Conflict``. A person in an active mentorship is refused (409): the
    pair is ended first, as its reminders would still go to them.
    """
    model = kind.model
    owner = Mentorship.craftsman_id if kind is CRAFTSMAN else Mentorship.apprentice_id
    active = session.scalar(
        select(Mentorship.id).where(owner == person.id, Mentorship.status == MENTORSHIP_ACTIVE)
    )
    if active is not None:
        raise Conflict(
            f"The {kind.label} is in the active mentorship {active}; end it before erasing."
        )
    now = utcnow()
    claimed = session.execute(
        update(model)
        .where(model.id == person.id, model.erased_at.is_(None))
        .values(erased_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"The {kind.label} {person.id} is erased already.")
    subject = subject_of(session, kind, person)
    pseudonym = new_pseudonym(session, kind, person.unit_id)
    alliance_id = session.get_one(Unit, person.unit_id).alliance_id

    erased: dict[str, Any] = {}
    # Their open offers end first (an erased person answers none); the events telling of it
    # are scrubbed below like every other mention.
    ended = end_open_offers_of(
        session,
        craftsman_ids=[person.id] if kind is CRAFTSMAN else [],
        apprentice_ids=[person.id] if kind is APPRENTICE else [],
        reason="person erased",
    )
    if ended:
        erased["offers_ended"] = ended
    for name, holding in PERSON_DATA.items():
        table = _table(name)
        count = _empty_authored(session, subject, table, holding)
        changed: list[int] = []
        for column_name in holding.scrub:
            changed += _scrub_column(session, table, table.c[column_name], subject, pseudonym)
        if name == "webhook_events" and changed:
            erased["webhook_deliveries_cancelled"] = _cancel_deliveries(session, changed)
        if name == "channel_messages" and changed:
            erased["channel_messages_cancelled"] = _cancel_channel_messages(session, changed)
        if count or changed:
            erased[name] = count + len(set(changed))
    erased |= _erase_emails(session, subject, pseudonym)

    fields: dict[str, Any] = {
        "name": pseudonym,
        "external_id": pseudonym,
        "email": None,
        "region": None,
        "active": False,
        "updated_at": now,
    }
    if kind is CRAFTSMAN:
        fields["honours"] = []
    session.execute(
        update(model)
        .where(model.id == person.id)
        .values(fields)
        .execution_options(synchronize_session=False)
    )
    session.expire(person)
    outcome = {
        "kind": kind.label,
        "id": subject.id,
        "pseudonym": pseudonym,
        "erased_at": now.isoformat(),
        "fields": ["name", "external_id", "email", "region", *(["honours"] * (kind is CRAFTSMAN))],
        "rows": erased,
    }
    audit(
        session,
        alliance_id=alliance_id,
        actor=actor,
        action="person.erased",
        object_type=kind.label,
        object_id=subject.id,
        data={"pseudonym": pseudonym, "rows": erased},
    )
    session.flush()
    return outcome


def _erase_emails(session: Session, subject: Subject, pseudonym: str) -> dict[str, int]:
    """The outbox: pending emails to the person cancelled; their address on every email to them
    replaced (made unique per row, as the once-only key includes it)."""
    rows = emails_to(session, subject, _table(Reminder.__tablename__))
    if not rows:
        return {}
    ids = [row["id"] for row in rows]
    cancelled = session.execute(
        update(Reminder)
        .where(Reminder.id.in_(ids), Reminder.status == REMINDER_PENDING)
        .values(status=REMINDER_CANCELLED, last_error=CANCELLED_BY_ERASURE)
        .execution_options(synchronize_session=False)
    )
    for row_id in ids:
        session.execute(
            update(Reminder)
            .where(Reminder.id == row_id)
            .values(recipient=f"{pseudonym}#{row_id}")
            .execution_options(synchronize_session=False)
        )
    return {"emails_cancelled": int(cancelled.rowcount or 0), "emails": len(ids)}  # type: ignore[attr-defined]


def _cancel_deliveries(session: Session, event_ids: Iterable[int]) -> int:
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.event_id.in_(list(event_ids)),
            WebhookDelivery.status == DELIVERY_PENDING,
        )
        .values(status=DELIVERY_FAILED, last_error=CANCELLED_BY_ERASURE, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _cancel_channel_messages(session: Session, message_ids: Iterable[int]) -> int:
    result = session.execute(
        update(ChannelMessage)
        .where(ChannelMessage.id.in_(list(message_ids)), ChannelMessage.status == CHANNEL_PENDING)
        .values(status=CHANNEL_FAILED, last_error=CANCELLED_BY_ERASURE, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- retention -------------------------------------------------------------------------------

RETENTION_BATCH = 200  # people erased per kind and alliance per run; the next run goes on


def retention_cutoff(alliance: Alliance, now: datetime) -> datetime:
    """The instant before which an alliance keeps nothing it need not."""
    day = add_months(now.date(), -alliance.retention_months)
    return datetime.combine(day, now.timetz())


def expired_people(
    session: Session, *, kind: PersonKind, alliance: Alliance, now: datetime
) -> list[int]:
    """Ids of the alliance's people of ``kind``, not erased, inactive (unchanged) since before
    the cutoff, and in no mentorship active or ended since then."""
    model = kind.model
    cutoff = retention_cutoff(alliance, now)
    owner = Mentorship.craftsman_id if kind is CRAFTSMAN else Mentorship.apprentice_id
    recent_pair = (
        select(Mentorship.id)
        .where(
            owner == model.id,
            or_(
                Mentorship.status == MENTORSHIP_ACTIVE,
                Mentorship.ended_on.is_(None),
                Mentorship.ended_on >= cutoff.date(),
            ),
        )
        .exists()
    )
    stmt = (
        select(model.id)
        .join(Unit, Unit.id == model.unit_id)
        .where(
            Unit.alliance_id == alliance.id,
            model.erased_at.is_(None),
            model.active.is_not(true()),
            model.updated_at < cutoff,
            ~recent_pair,
        )
        .order_by(model.id)
        .limit(RETENTION_BATCH)
    )
    return list(session.scalars(stmt))


def expired_email_files(
    session: Session, *, folder: Path, mail_from: str, now: datetime
) -> list[Path]:
    """The ``.eml`` files (emails written without SMTP) of emails sent before their alliance's
    retention cutoff: their bodies are the only copy the service keeps."""
    if not folder.is_dir():
        return []
    by_id: dict[int, Path] = {}
    for path in folder.glob("reminder-*.eml"):
        head = path.name.removeprefix("reminder-").partition(".")[0]
        if head.isdigit():
            by_id[int(head)] = path
    if not by_id:
        return []
    expired: list[Path] = []
    cutoffs: dict[int, datetime] = {}
    ids = sorted(by_id)
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(Reminder, Alliance)
            .join(Alliance, Alliance.id == Reminder.alliance_id)
            .where(Reminder.id.in_(ids[start : start + 1000]), Reminder.status == REMINDER_SENT)
        ).all()
        for reminder, alliance in rows:
            cutoff = cutoffs.setdefault(alliance.id, retention_cutoff(alliance, now))
            expected = message_id(reminder, mail_from).strip("<>").replace("@", "_at_")
            path = by_id[reminder.id]
            if (
                reminder.sent_at is not None
                and reminder.sent_at < cutoff
                and path.name == f"{expected.replace('/', '_')}.eml"
            ):
                expired.append(path)
    return expired


def alliances(session: Session) -> list[Alliance]:
    """Every alliance, for the retention job to go through."""
    return list(session.scalars(select(Alliance).order_by(Alliance.id)))
