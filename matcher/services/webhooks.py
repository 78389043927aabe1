"""Outbound webhooks (webhooks.md): endpoints, events written with each change, deliveries.

**Outbox.** :func:`emit` runs inside the transaction that makes the change: it writes the event
(its body fixed once and for all, its ``webhook-id`` too, and the endpoints and chat channels
whose scope and event list take it), or nothing at all when none does: one row, so a change
pays little for being told. The ``webhooks`` job (``jobs/webhooks.py``) turns new events into
delivery rows (:func:`fan_out`), leases them (:func:`claim_deliveries`), sends each signed
(:func:`signature_header`) and records each outcome (:func:`record_outcome`) as it comes.

**Scope.** An admin's endpoint (no alliance) hears everything, a coordinator's the events of its
alliance, an hr key's those about its own unit's people (an event names the units it is about:
a mentorship both people's, a match run none, so hr endpoints never hear of runs).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import random
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Select,
    String,
    and_,
    bindparam,
    cast,
    delete,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed
from matcher.models import (
    ALL_EVENTS,
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    MENTORSHIP_ACTIVE,
    Alliance,
    Apprentice,
    ChannelMessage,
    Craftsman,
    Mentorship,
    NotificationChannel,
    Offer,
    Unit,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from matcher.services import access
from matcher.services.access import Principal
from matcher.webhook_http import url_problem

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
ROTATION_OVERLAP = timedelta(hours=24)  # both secrets sign for this long after a rotation
GIVE_UP_AFTER = timedelta(days=3)  # retried for this long, then failed
# Back-off after the 1st, 2nd, ... failed attempt (the last one repeats), each ±20 % jitter.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
JITTER = 0.2
LONGEST_RETRY_AFTER = timedelta(hours=24)  # a receiver's Retry-After is honoured up to this
LEASE = timedelta(minutes=10)  # longer than a batch of deliveries can take (jobs/webhooks.py)


# Endpoints ---------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, *, allow_private: bool, https_only: bool) -> None:
    """422 naming ``url`` unless it may be a target (the guard's registration half)."""
    problem = url_problem(url, allow_private=allow_private, https_only=https_only)
    if problem:
        raise ValidationFailed("The webhook URL cannot be used.", errors={"url": [problem]})


def create_endpoint(
    session: Session,
    *,
    owner: Principal,
    url: str,
    events: Sequence[str],
    description: str | None,
    allow_private: bool,
    https_only: bool,
) -> WebhookEndpoint:
    """A new endpoint in the owner's scope (its alliance, and unit for an hr key), with a fresh
    secret (the caller shows it once)."""
    check_url(url, allow_private=allow_private, https_only=https_only)
    now = utcnow()
    alliance_id, unit_id = access.own_scope(owner)
    endpoint = WebhookEndpoint(
        alliance_id=alliance_id,
        unit_id=unit_id,
        url=url,
        events=_event_list(events),
        description=description,
        secret=new_secret(),
        enabled=True,
        created_by=owner.label,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def _event_list(events: Sequence[str]) -> list[str]:
    """The events as stored: ``["*"]`` alone, or the named ones without repeats."""
    listed = list(dict.fromkeys(events))
    if ALL_EVENTS in listed and len(listed) > 1:
        raise ValidationFailed(
            "'*' stands for every event; list it alone.",
            errors={"events": ["Either ['*'] or event names."]},
        )
    return listed


def change_endpoint(
    session: Session,
    *,
    endpoint: WebhookEndpoint,
    changes: dict[str, Any],
    allow_private: bool,
    https_only: bool,
) -> WebhookEndpoint:
    """Change what was sent (url, events, description, enabled); enabling clears the failure."""
    if "url" in changes:
        check_url(changes["url"], allow_private=allow_private, https_only=https_only)
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.events = _event_list(changes["events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "enabled" in changes and changes["enabled"] != endpoint.enabled:
        endpoint.enabled = changes["enabled"]
        endpoint.disabled_reason = None if endpoint.enabled else "disabled by its owner"
        endpoint.failing_since = None
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def delete_endpoint(session: Session, *, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its deliveries go (the events stay for other endpoints)."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def rotate_secret(session: Session, *, endpoint: WebhookEndpoint, now: datetime) -> str:
    """A new secret; the old one keeps signing beside it for 24 hours (two signatures)."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint.secret


def endpoints_query(principal: Principal) -> Select[Any]:
    """The caller's endpoints, oldest first (the scope narrowed by the policy)."""
    return access.where_visible(
        select(WebhookEndpoint).order_by(WebhookEndpoint.id),
        principal,
        alliance_id=WebhookEndpoint.alliance_id,
        unit_ids=(WebhookEndpoint.unit_id,),
    )


# Signing -----------------------------------------------------------------------------------


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the secret's key bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    endpoint: WebhookEndpoint, message_id: str, timestamp: int, body: bytes, now: datetime
) -> str:
    """The ``webhook-signature`` value: the current secret's, and during the 24 hours after a
    rotation the previous one's too (space-separated), so receivers switch when they like."""
    values = [sign(endpoint.secret, message_id, timestamp, body)]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until is not None
        and now < endpoint.previous_secret_until
    ):
        values.append(sign(endpoint.previous_secret, message_id, timestamp, body))
    return " ".join(values)


# Events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One event to tell: its type, whose it is (alliance, units) and its ``data``."""

    type: str
    alliance_id: int
    unit_ids: tuple[int, ...]
    data: dict[str, Any]
    dedupe_key: str | None = None  # once-only events (found by a scan)


@dataclass
class _Subscriber:
    id: int
    alliance_id: int | None
    unit_id: int | None
    events: list[str] = field(default_factory=list)
    channel: bool = False  # a chat group's robot, not a webhook endpoint

    def takes(self, change: Change) -> bool:
        if change.type not in self.events and (self.channel or ALL_EVENTS not in self.events):
            return False
        if self.alliance_id is None:
            return True
        if self.alliance_id != change.alliance_id:
            return False
        return self.unit_id is None or self.unit_id in change.unit_ids


def insert_ignoring(session: Session, model: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` into ``model``'s table, on either database."""
    return _insert_ignoring(session.get_bind().dialect.name, model)


@functools.cache
def _insert_ignoring(dialect_name: str, model: Any) -> Any:
    # Built once per database and table (statements are immutable), and on the table, not the
    # mapped class: the ORM's bulk-insert path around a few rows cost more than the INSERT.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(model.__table__).on_conflict_do_nothing()


def _subscribers_query() -> Any:
    """The enabled endpoints and chat channels that may hear of the alliances
    ``alliance_ids`` (admins' endpoints hear of all), as (id, alliance_id, unit_id, events,
    channel) rows."""
    alliance_ids: BindParameter[list[int]] = bindparam("alliance_ids", expanding=True)
    endpoints = select(
        WebhookEndpoint.id,
        WebhookEndpoint.alliance_id,
        WebhookEndpoint.unit_id,
        WebhookEndpoint.events,
        literal(False).label("channel"),
    ).where(
        WebhookEndpoint.enabled.is_(True),
        or_(WebhookEndpoint.alliance_id.is_(None), WebhookEndpoint.alliance_id.in_(alliance_ids)),
    )
    channels = select(
        NotificationChannel.id,
        NotificationChannel.alliance_id,
        NotificationChannel.unit_id,
        NotificationChannel.events,
        literal(True).label("channel"),
    ).where(
        NotificationChannel.enabled.is_(True), NotificationChannel.alliance_id.in_(alliance_ids)
    )
    return union_all(endpoints, channels)


# Built once: a change costs every write that makes one this statement, found or not.
_SUBSCRIBERS = _subscribers_query()


def _subscriber(row: Sequence[Any]) -> _Subscriber:
    return _Subscriber(row[0], row[1], row[2], list(row[3] or []), bool(row[4]))


def _subscribers(session: Session, alliance_ids: set[int]) -> list[_Subscriber]:
    """:func:`_subscribers_query`'s subscribers: one statement."""
    rows: Sequence[Any] = session.execute(
        _SUBSCRIBERS, {"alliance_ids": sorted(alliance_ids)}
    ).all()
    return [_subscriber(row) for row in rows]


def emit_for(
    session: Session,
    alliance_id: int,
    build: Callable[[], Sequence[Change]],
    *,
    now: datetime | None = None,
) -> int:
    """:func:`emit` of what ``build`` makes, built only if an endpoint may hear of the
    alliance: a change nobody listens to costs one indexed query, not the event's data."""
    subscribers = _subscribers(session, {alliance_id})
    if not subscribers:
        return 0
    return _write(session, build(), subscribers, now or utcnow())


def emit(session: Session, changes: Sequence[Change], *, now: datetime | None = None) -> int:
    """Write ``changes`` as events with a delivery for each endpoint that takes them, in the
    caller's transaction; how many deliveries were queued. No endpoint: nothing is written."""
    if not changes:
        return 0
    subscribers = _subscribers(session, {change.alliance_id for change in changes})
    if not subscribers:
        return 0
    return _write(session, changes, subscribers, now or utcnow())


def _write(
    session: Session, changes: Sequence[Change], subscribers: list[_Subscriber], now: datetime
) -> int:
    """One event row per change someone hears of, naming who (the outbox row); the job makes
    the deliveries (:func:`fan_out`). Returns how many deliveries and messages it stands for."""
    timestamp = now.isoformat().replace("+00:00", "Z")
    rows: list[dict[str, Any]] = []
    heard = 0
    for change in changes:
        targets = [s for s in subscribers if s.takes(change)]
        if not targets:
            continue
        rows.append(
            {
                "message_id": "msg_" + uuid.uuid4().hex,
                "type": change.type,
                "alliance_id": change.alliance_id,
                "unit_ids": list(change.unit_ids),
                "payload": {"type": change.type, "timestamp": timestamp, "data": change.data},
                "dedupe_key": change.dedupe_key,
                "endpoint_ids": [t.id for t in targets if not t.channel],
                "channel_ids": [t.id for t in targets if t.channel],
                "fanned_out": False,
                "created_at": now,
            }
        )
        heard += len(targets)
    if not rows:
        return 0
    # A once-only event written by another run meanwhile is skipped.
    session.execute(insert_ignoring(session, WebhookEvent), rows)
    return heard


def _to_existing(
    session: Session,
    receiver: type[WebhookEndpoint] | type[NotificationChannel],
    rows: list[dict[str, Any]],
    key: str,
) -> list[dict[str, Any]]:
    """The ``rows`` whose receiver (its id under ``key``) still exists: one query."""
    if not rows:
        return rows
    ids = {row[key] for row in rows}
    alive = set(session.scalars(select(receiver.id).where(receiver.id.in_(ids))))
    return [row for row in rows if row[key] in alive]


def fan_out(session: Session, *, limit: int = 500) -> int:
    """Turn up to ``limit`` new events into their delivery and chat-message rows (the caller
    commits); how many events. Two runs at once meet the rows' unique keys, never doubling one.
    """
    events = session.execute(
        select(
            WebhookEvent.id,
            WebhookEvent.type,
            WebhookEvent.alliance_id,
            WebhookEvent.payload,
            WebhookEvent.endpoint_ids,
            WebhookEvent.channel_ids,
            WebhookEvent.created_at,
        )
        .where(WebhookEvent.fanned_out.is_(False))
        .order_by(WebhookEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not events:
        return 0
    deliveries: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for event_id, event_type, alliance_id, payload, endpoint_ids, channel_ids, created in events:
        outbox = {
            "status": DELIVERY_PENDING,
            "attempts": 0,
            "next_attempt_at": created,
            "give_up_at": created + GIVE_UP_AFTER,
            "created_at": created,
        }
        deliveries += [
            {"endpoint_id": endpoint_id, "event_id": event_id, **outbox}
            for endpoint_id in endpoint_ids or []
        ]
        data = payload.get("data") or {}
        messages += [
            {
                "channel_id": channel_id,
                "topic": event_type,
                "dedupe_key": f"{channel_id}:event:{event_id}",
                "alliance_id": alliance_id,
                "mentorship_id": data.get("mentorship_id"),
                "period_index": data.get("period_index"),
                "data": data,
                **outbox,
            }
            for channel_id in channel_ids or []
        ]
    # Endpoints and channels deleted since the change hear nothing of it.
    deliveries = _to_existing(session, WebhookEndpoint, deliveries, "endpoint_id")
    messages = _to_existing(session, NotificationChannel, messages, "channel_id")
    if deliveries:
        session.execute(insert_ignoring(session, WebhookDelivery), deliveries)
    if messages:
        session.execute(insert_ignoring(session, ChannelMessage), messages)
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_([event[0] for event in events]))
        .values(fanned_out=True)
        .execution_options(synchronize_session=False)
    )
    return len(events)


def any_subscriber(session: Session) -> bool:
    """Whether any endpoint is enabled (scans skip their work when none is)."""
    return (
        session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True)).limit(1))
        is not None
    )


def person_data(
    person_id: int, external_id: str, name: str, unit_id: int, unit_code: str
) -> dict[str, Any]:
    """A person as events name them: ids, external id, name and unit code (no other text)."""
    return {
        "id": person_id,
        "external_id": external_id,
        "name": name,
        "unit_id": unit_id,
        "unit_code": unit_code,
    }


def _pair_people() -> Select[Any]:
    """Both people of a pair (``craftsman_id``, ``apprentice_id``) with their units' codes, as
    :func:`person_data` takes them (five columns each): one round trip for an event about a
    pair."""
    people = []
    for model, role in ((Craftsman, "craftsman"), (Apprentice, "apprentice")):
        person, unit = model.__table__, Unit.__table__.alias(f"{role}_unit")
        people.append(
            select(person.c.id, person.c.external_id, person.c.name, person.c.unit_id, unit.c.code)
            .join(unit, unit.c.id == person.c.unit_id)
            .where(person.c.id == bindparam(f"{role}_id"))
            .subquery(role)
        )
    craftsman, apprentice = people
    return select(craftsman, apprentice).select_from(craftsman.join(apprentice, literal(True)))


_PAIR_PEOPLE = _pair_people()


def _pair_subscribers() -> Select[Any]:
    """:data:`_SUBSCRIBERS` (one alliance) with :data:`_PAIR_PEOPLE` on every row."""
    subscribers = _SUBSCRIBERS.subquery("subscriber")
    people = _PAIR_PEOPLE.subquery("pair")
    return select(subscribers, people).select_from(subscribers.join(people, literal(True)))


_PAIR_SUBSCRIBERS = _pair_subscribers()

# (craftsman, apprentice) as person_data gives them -> the event
PairChange = Callable[[dict[str, Any], dict[str, Any]], Change]


def _both_people(columns: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(craftsman, apprentice) as :func:`person_data` gives them, from the ten columns of
    :data:`_PAIR_PEOPLE`."""
    return person_data(*columns[:5]), person_data(*columns[5:10])


def _pair_people_data(
    session: Session, craftsman_id: int, apprentice_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    row = session.execute(
        _PAIR_PEOPLE, {"craftsman_id": craftsman_id, "apprentice_id": apprentice_id}
    ).one()
    return _both_people(row)


def emit_about_pair(
    session: Session,
    alliance_id: int,
    *,
    craftsman_id: int,
    apprentice_id: int,
    change: PairChange,
) -> int:
    """:func:`emit_for` an event about a pair: its subscribers and both people (with their
    units' codes) in one statement, every subscriber's row carrying the people; none, and the
    event is never built. (Two statements, subscribers then people, cost a webhook-enabled
    summary hand-in 0.3 ms more.)"""
    rows: Sequence[Any] = session.execute(
        _PAIR_SUBSCRIBERS,
        {
            "alliance_ids": [alliance_id],
            "craftsman_id": craftsman_id,
            "apprentice_id": apprentice_id,
        },
    ).all()
    if not rows:
        return 0
    built = change(*_both_people(rows[0][5:]))
    return _write(session, [built], [_subscriber(row) for row in rows], utcnow())


def emit_about_mentorship(
    session: Session, event_type: str, mentorship: Mentorship, **extra: Any
) -> int:
    """:func:`emit_about_pair` a ``mentorship.*`` or ``summary.*`` event about ``mentorship``;
    ``extra``: the event's own fields beside the mentorship's."""
    return emit_about_pair(
        session,
        mentorship.alliance_id,
        craftsman_id=mentorship.craftsman_id,
        apprentice_id=mentorship.apprentice_id,
        change=lambda craftsman, apprentice: _mentorship_change(
            event_type, mentorship, craftsman, apprentice, **extra
        ),
    )


def mentorship_change(
    session: Session, event_type: str, mentorship: Mentorship, **extra: Any
) -> Change:
    """A ``mentorship.*`` (or ``summary.*``) event about ``mentorship`` and both its people."""
    craftsman, apprentice = _pair_people_data(
        session, mentorship.craftsman_id, mentorship.apprentice_id
    )
    return _mentorship_change(event_type, mentorship, craftsman, apprentice, **extra)


def _mentorship_change(
    event_type: str,
    mentorship: Mentorship,
    craftsman: dict[str, Any],
    apprentice: dict[str, Any],
    **extra: Any,
) -> Change:
    data = {
        "mentorship_id": mentorship.id,
        "alliance_id": mentorship.alliance_id,
        "status": mentorship.status,
        "started_on": _day(mentorship.started_on),
        "ended_on": _day(mentorship.ended_on),
        "summary_every_days": mentorship.summary_every_days,
        "periods_filled": mentorship.periods_filled,
        "next_due_on": _day(mentorship.next_due_on),
        "craftsman": craftsman,
        "apprentice": apprentice,
        **extra,
    }
    return _pair_change(event_type, mentorship.alliance_id, craftsman, apprentice, data)


def _pair_change(
    event_type: str,
    alliance_id: int,
    craftsman: dict[str, Any],
    apprentice: dict[str, Any],
    data: dict[str, Any],
) -> Change:
    return Change(
        type=event_type,
        alliance_id=alliance_id,
        unit_ids=tuple(dict.fromkeys((craftsman["unit_id"], apprentice["unit_id"]))),
        data=data,
    )


def emit_about_offer(session: Session, event_type: str, offer: Offer) -> int:
    """:func:`emit_about_pair` an ``offer.created`` or ``offer.answered`` event about
    ``offer`` and both its people (ids, names, units, dates and status; never the decline's
    free text)."""

    def change(craftsman: dict[str, Any], apprentice: dict[str, Any]) -> Change:
        data = {
            "offer_id": offer.id,
            "proposal_id": offer.proposal_id,
            "alliance_id": offer.alliance_id,
            "status": offer.status,
            "offered_at": offer.offered_at.isoformat(),
            "expires_at": offer.expires_at.isoformat(),
            "answered_at": offer.answered_at.isoformat() if offer.answered_at else None,
            "mentorship_id": offer.mentorship_id,
            "craftsman": craftsman,
            "apprentice": apprentice,
        }
        return _pair_change(event_type, offer.alliance_id, craftsman, apprentice, data)

    return emit_about_pair(
        session,
        offer.alliance_id,
        craftsman_id=offer.craftsman_id,
        apprentice_id=offer.apprentice_id,
        change=change,
    )


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def emit_overdue(session: Session, *, now: datetime) -> int:
    """``summary.overdue`` once per (mentorship, period) whose due date has passed in its
    alliance's local date, for the alliances an endpoint hears it from: one statement finds the
    pairs without such an event yet, and the event's unique key makes it once-only."""
    wanting: Sequence[Any] = session.execute(
        union_all(
            select(WebhookEndpoint.alliance_id, WebhookEndpoint.events).where(
                WebhookEndpoint.enabled.is_(True)
            ),
            select(NotificationChannel.alliance_id, NotificationChannel.events).where(
                NotificationChannel.enabled.is_(True)
            ),
        )
    ).all()
    alliance_ids = {
        alliance_id
        for alliance_id, events in wanting
        if ALL_EVENTS in (events or []) or "summary.overdue" in (events or [])
    }
    if not alliance_ids:
        return 0
    # Imported here: mentorships emits through this module (the one rule for "today" is there).
    from matcher.services.mentorships import local_today

    today_by_timezone = {
        timezone: local_today(timezone, now)
        for timezone in session.scalars(select(Alliance.timezone).distinct())
    }
    key = (
        "summary.overdue:"
        + cast(Mentorship.id, String)
        + ":"
        + cast(Mentorship.periods_filled + 1, String)
    )
    queued = 0
    for timezone, today in today_by_timezone.items():
        stmt = (
            select(Mentorship)
            .join(Alliance, Alliance.id == Mentorship.alliance_id)
            .where(
                Alliance.timezone == timezone,
                Mentorship.status == MENTORSHIP_ACTIVE,
                Mentorship.next_due_on < today,
                ~select(WebhookEvent.id).where(WebhookEvent.dedupe_key == key).exists(),
            )
            .order_by(Mentorship.id)
        )
        if None not in alliance_ids:  # no admin endpoint: only the alliances that listen
            stmt = stmt.where(Mentorship.alliance_id.in_(alliance_ids))
        changes = []
        for mentorship in session.scalars(stmt):
            period = mentorship.periods_filled + 1
            change = mentorship_change(
                session,
                "summary.overdue",
                mentorship,
                period_index=period,
                due_on=_day(mentorship.next_due_on),
            )
            changes.append(
                Change(
                    change.type,
                    change.alliance_id,
                    change.unit_ids,
                    change.data,
                    dedupe_key=f"summary.overdue:{mentorship.id}:{period}",
                )
            )
        queued += emit(session, changes, now=now)
    return queued


# Deliveries --------------------------------------------------------------------------------


def claim_rows(
    session: Session, model: Any, *, now: datetime, token: str, limit: int = 25
) -> list[int]:
    """Lease up to ``limit`` due rows of an outbox table (deliveries, chat messages) to
    ``token``; the caller commits the lease before it sends. ``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, and a compare-and-set on both, so two senders never hold one row."""
    free = and_(
        model.status == DELIVERY_PENDING,
        model.next_attempt_at <= now,
        or_(model.locked_until.is_(None), model.locked_until < now),
    )
    ids = session.scalars(
        select(model.id)
        .where(free)
        .order_by(model.next_attempt_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return []
    session.execute(
        update(model)
        .where(model.id.in_(ids), free)
        .values(locked_until=now + LEASE, claimed_by=token)
        .execution_options(synchronize_session=False)
    )
    return list(
        session.scalars(
            select(model.id).where(model.id.in_(ids), model.claimed_by == token).order_by(model.id)
        )
    )


def claim_deliveries(session: Session, *, now: datetime, token: str, limit: int = 25) -> list[int]:
    """Lease due webhook deliveries to ``token`` (:func:`claim_rows`)."""
    return claim_rows(session, WebhookDelivery, now=now, token=token, limit=limit)


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failure: the schedule, ±20 % jitter (so receivers
    that came back are not hit by every sender at once)."""
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter, not crypto
    return base * spread


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, as the sender saw it."""

    status_code: int | None  # None: no answer (refused by the guard, unreachable, timed out)
    error: str | None = None
    retry_after_seconds: float | None = None
    refused: bool = False  # the guard refused the target
    answer: str = ""  # the start of the receiver's answer (chat platforms say "ok" in it)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_outcome(
    session: Session,
    *,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    token: str,
    now: datetime,
    outcome: Outcome,
) -> str:
    """Record an attempt (the caller commits before the next): delivered; retried after the
    back-off (or the receiver's ``Retry-After`` on 429 and 5xx, if longer), the last time when
    the 3 days are up, then failed; failed at once on 410, which disables the endpoint too. An
    endpoint whose deliveries all failed for 3 days is disabled. Returns the delivery's status."""
    attempts = delivery.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "locked_until": None,
    }
    if outcome.delivered:
        values |= {"status": DELIVERY_DELIVERED, "delivered_at": now, "last_error": None}
        endpoint.failing_since = None
    else:
        values["last_error"] = (outcome.error or f"answered {outcome.status_code}")[:2000]
        delay = retry_delay(attempts)
        code = outcome.status_code
        if code is not None and (code == 429 or code >= 500) and outcome.retry_after_seconds:
            asked = min(timedelta(seconds=outcome.retry_after_seconds), LONGEST_RETRY_AFTER)
            delay = max(delay, asked)
        gone = code == 410
        if gone or now >= delivery.give_up_at:
            values["status"] = DELIVERY_FAILED
        else:  # the last attempt is made when the 3 days are up
            values |= {
                "status": DELIVERY_PENDING,
                "next_attempt_at": min(now + delay, delivery.give_up_at),
            }
        if endpoint.failing_since is None:  # failing since this change began to wait
            endpoint.failing_since = delivery.give_up_at - GIVE_UP_AFTER
        if gone:
            _disable(endpoint, "the receiver answered 410 Gone", now)
        elif now - endpoint.failing_since >= GIVE_UP_AFTER:
            _disable(endpoint, "every delivery failed for 3 days", now)
    # Core UPDATE: the ORM would first match the criteria against every object in the session.
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.claimed_by == token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return str(values["status"])


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    if endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = reason
        endpoint.updated_at = now


def fail_undeliverable(
    session: Session, *, delivery: WebhookDelivery, token: str, reason: str
) -> None:
    """A delivery whose endpoint was disabled meanwhile is failed, not sent (retryable)."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.claimed_by == token)
        .values(status=DELIVERY_FAILED, locked_until=None, last_error=reason)
    )


def retry_delivery(
    session: Session, *, endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime
) -> WebhookDelivery:
    """Send a delivery again now (whatever its status), with a fresh 3 days of retries; its
    ``webhook-id`` stays the same, so a receiver that had it recognises it."""
    if not endpoint.enabled:
        raise Conflict(
            f"Webhook {endpoint.id} is disabled ({endpoint.disabled_reason}); enable it first."
        )
    delivery.status = DELIVERY_PENDING
    delivery.next_attempt_at = now
    delivery.give_up_at = now + GIVE_UP_AFTER
    delivery.locked_until = None
    delivery.claimed_by = None
    session.flush()
    return delivery


def deliveries_query(endpoint_id: int, *, status: str | None = None) -> Select[Any]:
    """An endpoint's deliveries as the API lists them, newest first."""
    stmt: Any = (
        select(
            WebhookDelivery.id,
            WebhookEvent.type.label("event_type"),
            WebhookEvent.message_id.label("webhook_id"),
            WebhookDelivery.status,
            WebhookDelivery.attempts,
            WebhookDelivery.last_status_code,
            WebhookDelivery.last_error,
            WebhookDelivery.next_attempt_at,
            WebhookDelivery.delivered_at,
            WebhookDelivery.created_at,
        )
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    listed: Select[Any] = stmt
    return listed
