"""Offers (programme.md, "Two-way choice"): with ``craftsman_consent: required`` committing a run
offers each approved pair to its craftsman instead of starting it.

- ``offered``: the craftsman got an email with a signed link (``/offer/{token}``); the offer
  holds one of their slots (``services/capacity.py: free_slots``).
- ``accepted``: the mentorship starts that day in the alliance's timezone (``create_mentorship``,
  the one way to start a pair). Accepting again changes nothing.
- ``declined``: the pair is remembered like a rejected one (``review.remember_rejected_pair``).
- ``expired``: nobody answered by ``expires_at``; the ``offers`` job marks it (not remembered).

Every change is a compare-and-set on ``status = 'offered'``: two answers, or an answer and the
job, never both win, and each offer expires once whoever runs the job.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from matcher.db import utcnow
from matcher.errors import Conflict
from matcher.i18n import Message
from matcher.models import (
    CONSENT_REQUIRED,
    MENTORSHIP_ACTIVE,
    OFFER_ACCEPTED,
    OFFER_DECLINED,
    OFFER_EXPIRED,
    OFFER_OFFERED,
    REMINDER_PENDING,
    Alliance,
    Apprentice,
    Craftsman,
    MatchRun,
    Mentorship,
    Offer,
    Proposal,
    Reminder,
)
from matcher.services import access
from matcher.services.access import Principal
from matcher.services.mentorships import create_mentorship, local_today
from matcher.services.reminders import _key
from matcher.services.review import audit, remember_rejected_pair
from matcher.services.webhooks import emit_about_offer, insert_ignoring

# programme.md: one reminder email, three days after the offer.
REMIND_AFTER = timedelta(days=3)
LINK_ACTOR = "craftsman:link"  # how the audit trail names an answer given through the email


def offers_first(alliance: Alliance) -> bool:
    """Whether committing a run of this alliance offers its pairs instead of starting them."""
    return alliance.craftsman_consent == CONSENT_REQUIRED


def create_offers(
    session: Session, *, run: MatchRun, approved: Sequence[Proposal], now: datetime | None = None
) -> list[Offer]:
    """An offer for each approved proposal of a run being committed, its email queued (once,
    through the outbox) and ``offer.created`` told; in the commit's transaction."""
    now = now or utcnow()
    alliance = session.get_one(Alliance, run.alliance_id)
    expires_at = now + timedelta(days=alliance.offer_expires_days)
    offers = [
        Offer(
            alliance_id=run.alliance_id,
            proposal_id=proposal.id,
            craftsman_id=proposal.craftsman_id,
            apprentice_id=proposal.apprentice_id,
            status=OFFER_OFFERED,
            offered_at=now,
            expires_at=expires_at,
        )
        for proposal in approved
    ]
    session.add_all(offers)
    session.flush()
    if offers:
        _queue_emails(session, "offer", Offer.id.in_([offer.id for offer in offers]), now)
    for offer in offers:
        emit_about_offer(session, "offer.created", offer)
    return offers


def _queue_emails(session: Session, kind: str, which: ColumnElement[bool], now: datetime) -> int:
    """Queue the ``kind`` email of each open offer ``which`` selects to its craftsman (who has an
    email address): one ``INSERT ... SELECT``, once-only through the outbox's unique key."""
    source = (
        select(
            Offer.alliance_id,
            Offer.id,
            literal(kind, String),
            Craftsman.email,
            literal("craftsman", String),
            Craftsman.locale,
            _key("offer", kind, Offer.id),
            literal(REMINDER_PENDING, String),
            literal(0),
            literal(now),
            literal(now),
        )
        .join(Craftsman, Craftsman.id == Offer.craftsman_id)
        .where(which, Offer.status == OFFER_OFFERED, Craftsman.email.is_not(None))
    )
    columns = (
        "alliance_id",
        "offer_id",
        "kind",
        "recipient",
        "recipient_role",
        "locale",
        "dedupe_key",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    inserted = session.execute(
        insert_ignoring(session, Reminder).from_select(columns, source).returning(Reminder.id)
    )
    return len(inserted.all())


def queue_offer_reminders(session: Session, *, now: datetime) -> int:
    """The one reminder of each open offer made at least three days ago and not yet expired."""
    due = and_(Offer.offered_at <= now - REMIND_AFTER, Offer.expires_at > now)
    return _queue_emails(session, "offer_reminder", due, now)


def expire_offers(session: Session, *, now: datetime) -> int:
    """Mark the open offers past ``expires_at`` expired (not remembered as rejected) and tell
    ``offer.answered``; each offer once, however many jobs run at the same time."""
    ids = list(
        session.scalars(
            update(Offer)
            .where(Offer.status == OFFER_OFFERED, Offer.expires_at <= now)
            .values(status=OFFER_EXPIRED, answered_at=now, answered_by="expired", updated_at=now)
            .returning(Offer.id)
        )
    )
    _tell_answered(session, ids)
    return len(ids)


def _tell_answered(session: Session, ids: Sequence[int]) -> None:
    for offer in session.scalars(select(Offer).where(Offer.id.in_(ids)).order_by(Offer.id)):
        session.refresh(offer)
        emit_about_offer(session, "offer.answered", offer)


def _claim(session: Session, offer: Offer, now: datetime, **values: Any) -> bool:
    """Answer an open offer: only if it is still ``offered`` (nobody answered meanwhile)."""
    written = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.status == OFFER_OFFERED)
        .values(answered_at=now, updated_at=now, **values)
    )
    session.refresh(offer)
    return bool(written.rowcount == 1)  # type: ignore[attr-defined]


def _refuse(offer: Offer) -> Conflict:
    """409 for an answer to an offer answered already, saying how (message ids spelt out for
    the catalogs' extraction)."""
    params = {"id": offer.id}
    if offer.status == OFFER_ACCEPTED:
        return Conflict(Message("offer.refused.accepted", params))
    if offer.status == OFFER_DECLINED:
        return Conflict(Message("offer.refused.declined", params))
    return Conflict(Message("offer.refused.expired", params))


def _check_open(offer: Offer, now: datetime) -> None:
    if offer.status != OFFER_OFFERED:
        raise _refuse(offer)
    if offer.expires_at <= now:  # the job has not swept it yet: expired all the same
        raise Conflict(Message("offer.refused.expired", {"id": offer.id}))


def accept_offer(
    session: Session, *, offer: Offer, actor: str, now: datetime | None = None
) -> Offer:
    """The craftsman said yes: the mentorship starts today (the alliance's date). Accepting an
    accepted offer changes nothing; a declined or expired one is 409."""
    now = now or utcnow()
    if offer.status == OFFER_ACCEPTED:
        return offer
    _check_open(offer, now)
    run_params = session.scalar(
        select(MatchRun.params)
        .join(Proposal, Proposal.match_run_id == MatchRun.id)
        .where(Proposal.id == offer.proposal_id)
    )
    mentored = session.scalar(
        select(Mentorship.id).where(
            Mentorship.apprentice_id == offer.apprentice_id,
            Mentorship.status == MENTORSHIP_ACTIVE,
        )
    )
    # As at commit: a run that took mentored apprentices in may give them a second craftsman.
    if mentored is not None and not (run_params or {}).get("include_mentored"):
        raise Conflict(Message("offer.refused.mentored", {"id": offer.id}))
    if not _claim(session, offer, now, status=OFFER_ACCEPTED, answered_by=actor):
        if offer.status == OFFER_ACCEPTED:  # another request accepted it first: the same answer
            return offer
        raise _refuse(offer)
    alliance = session.get_one(Alliance, offer.alliance_id)
    mentorship = create_mentorship(
        session,
        craftsman=offer.craftsman,
        apprentice=offer.apprentice,
        started_on=local_today(alliance.timezone, now),
        proposal_id=offer.proposal_id,
    )
    offer.mentorship_id = mentorship.id
    audit(
        session,
        alliance_id=offer.alliance_id,
        actor=actor,
        action="offer.accept",
        object_type="offer",
        object_id=offer.id,
        data={"mentorship_id": mentorship.id},
    )
    session.flush()
    emit_about_offer(session, "offer.answered", offer)
    return offer


def decline_offer(
    session: Session, *, offer: Offer, reason: str | None, actor: str, now: datetime | None = None
) -> Offer:
    """The craftsman said no: the pair is remembered like a rejected one. 409 once answered."""
    now = now or utcnow()
    _check_open(offer, now)
    if not _claim(session, offer, now, status=OFFER_DECLINED, reason=reason, answered_by=actor):
        raise _refuse(offer)
    remember_rejected_pair(
        session,
        craftsman_id=offer.craftsman_id,
        apprentice_id=offer.apprentice_id,
        proposal_id=offer.proposal_id,
        actor=actor,
    )
    audit(
        session,
        alliance_id=offer.alliance_id,
        actor=actor,
        action="offer.decline",
        object_type="offer",
        object_id=offer.id,
        data={"reason": reason},
    )
    session.flush()
    emit_about_offer(session, "offer.answered", offer)
    return offer


def end_open_offers_of(
    session: Session,
    *,
    craftsman_ids: Collection[int] = (),
    apprentice_ids: Collection[int] = (),
    reason: str,
) -> int:
    """End the open offers of these people (consent withdrawn, privacy.md): marked ``expired``
    with ``reason``, not remembered as rejected (nobody said no to the pair); how many ended."""
    people = []
    if craftsman_ids:
        people.append(Offer.craftsman_id.in_(craftsman_ids))
    if apprentice_ids:
        people.append(Offer.apprentice_id.in_(apprentice_ids))
    if not people:
        return 0
    now = utcnow()
    ids = list(
        session.scalars(
            update(Offer)
            .where(Offer.status == OFFER_OFFERED, or_(*people))
            .values(
                status=OFFER_EXPIRED,
                answered_at=now,
                answered_by="ended",
                reason=reason,
                updated_at=now,
            )
            .returning(Offer.id)
        )
    )
    _tell_answered(session, ids)
    return len(ids)


# Listing ------------------------------------------------------------------------------------

_CRAFTSMAN = aliased(Craftsman, name="offer_craftsman")
_APPRENTICE = aliased(Apprentice, name="offer_apprentice")


def offers_query(
    principal: Principal,
    *,
    status: str | None = None,
    alliance_id: int | None = None,
    unit_id: int | None = None,
    craftsman_id: int | None = None,
    apprentice_id: int | None = None,
    match_run_id: int | None = None,
    updated_since: datetime | None = None,
) -> Select[Any]:
    """The offers the caller may see (coordinators: their alliance's; hr: those of its own
    people), filtered, oldest first, as rows :func:`offer_item` shows."""
    stmt = typing.cast(
        Select[Any],
        select(
            Offer,
            _CRAFTSMAN.name.label("craftsman_name"),
            _CRAFTSMAN.unit_id.label("craftsman_unit_id"),
            _APPRENTICE.name.label("apprentice_name"),
            _APPRENTICE.unit_id.label("apprentice_unit_id"),
        )
        .join(_CRAFTSMAN, _CRAFTSMAN.id == Offer.craftsman_id)
        .join(_APPRENTICE, _APPRENTICE.id == Offer.apprentice_id)
        .order_by(Offer.id),
    )
    stmt = access.where_visible(
        stmt,
        principal,
        alliance_id=Offer.alliance_id,
        unit_ids=(_CRAFTSMAN.unit_id, _APPRENTICE.unit_id),
    )
    if status is not None:
        stmt = stmt.where(Offer.status == status)
    if alliance_id is not None:
        stmt = stmt.where(Offer.alliance_id == alliance_id)
    if unit_id is not None:
        stmt = stmt.where(or_(_CRAFTSMAN.unit_id == unit_id, _APPRENTICE.unit_id == unit_id))
    if craftsman_id is not None:
        stmt = stmt.where(Offer.craftsman_id == craftsman_id)
    if apprentice_id is not None:
        stmt = stmt.where(Offer.apprentice_id == apprentice_id)
    if updated_since is not None:
        stmt = stmt.where(Offer.updated_at >= updated_since)
    if match_run_id is not None:
        stmt = stmt.join(Proposal, Proposal.id == Offer.proposal_id).where(
            Proposal.match_run_id == match_run_id
        )
    return stmt


def offer_item(row: Any) -> dict[str, Any]:
    """A row of :func:`offers_query` as the API shows it."""
    offer: Offer = row.Offer
    return {
        "id": offer.id,
        "proposal_id": offer.proposal_id,
        "alliance_id": offer.alliance_id,
        "craftsman": {
            "id": offer.craftsman_id,
            "name": row.craftsman_name,
            "unit_id": row.craftsman_unit_id,
        },
        "apprentice": {
            "id": offer.apprentice_id,
            "name": row.apprentice_name,
            "unit_id": row.apprentice_unit_id,
        },
        "status": offer.status,
        "offered_at": offer.offered_at,
        "expires_at": offer.expires_at,
        "answered_at": offer.answered_at,
        "reason": offer.reason,
        "mentorship_id": offer.mentorship_id,
    }


def offer_view(session: Session, principal: Principal, offer_id: int) -> dict[str, Any]:
    """One offer in the caller's scope as the API shows it, or 404."""
    access.offer_in_scope(session, principal, offer_id)
    return offer_item(session.execute(offers_query(principal).where(Offer.id == offer_id)).one())


def offers_by_proposal(session: Session, proposal_ids: Sequence[int]) -> dict[int, Offer]:
    """The offers of these proposals (the run page shows each approved pair's)."""
    if not proposal_ids:
        return {}
    rows = session.scalars(select(Offer).where(Offer.proposal_id.in_(proposal_ids)))
    return {offer.proposal_id: offer for offer in rows}


def offer_counts(session: Session, *, alliance_id: int) -> dict[str, int]:
    """The alliance's offers by status (the overview counts open, declined and expired)."""
    rows = session.execute(
        select(Offer.status, func.count())
        .where(Offer.alliance_id == alliance_id)
        .group_by(Offer.status)
    ).all()
    counts = dict.fromkeys((OFFER_OFFERED, OFFER_ACCEPTED, OFFER_DECLINED, OFFER_EXPIRED), 0)
    counts.update({status: int(count) for status, count in rows})
    return counts
