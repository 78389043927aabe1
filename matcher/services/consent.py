"""Cross-unit consent (privacy.md "Consent"): who takes part, the notice, and withdrawal.

A person's separate consent (单独同意, PIPL art. 23) to be shown to other member units is
recorded on their row (``cross_unit_consent_at``, ``cross_unit_consent_version``). Where their
alliance requires it (``Alliance.consent_required``), a person without it takes no part in
matching (:func:`consent_given`, :func:`person_consents`) and nothing of theirs is shown to
another unit (``access.shown_across_units``). Withdrawing it (:func:`consent_withdrawn`) ends
the open proposals involving them and asks the coordinators to end their active mentorships;
consenting again (:func:`consent_restored`) takes that request back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.i18n import translate
from matcher.models import (
    MENTORSHIP_ACTIVE,
    OPEN_PROPOSAL_STATUSES,
    PROPOSAL_REJECTED,
    RUN_PROPOSED,
    Alliance,
    Apprentice,
    Craftsman,
    MatchRun,
    Mentorship,
    Proposal,
    Unit,
)

ENDED_BY_WITHDRAWAL = "Consent to be shown to other member units was withdrawn."
_CHUNK = 1000  # ids per IN list, well under every database's bound-parameter limit


# ``review.audit``, handed in (imported late: review imports matching, which imports this).
Audit = Callable[..., None]


def consent_given(
    model: type[Craftsman] | type[Apprentice], alliance: Alliance
) -> ColumnElement[bool]:
    """SQL: the person of ``model`` may take part across units in ``alliance`` (always, where
    the alliance does not require consent)."""
    if not alliance.consent_required:
        return true()
    return model.cross_unit_consent_at.is_not(None)


def person_consents(person: Craftsman | Apprentice) -> bool:
    """Whether ``person`` may take part across units: consented, or not asked to."""
    return person.cross_unit_consent_at is not None or not person.unit.alliance.consent_required


def consent_withdrawn(
    session: Session,
    *,
    kind: str,
    person_ids: Sequence[int],
    unit: Unit,
    now: datetime | None = None,
) -> dict[str, int]:
    """What withdrawing consent does, for people of ``unit`` whose consent was just set to
    null (``kind``: ``craftsman`` or ``apprentice``): their open proposals end (rejected,
    audited, the pair not remembered as rejected, so that a later consent lets it be proposed
    again), and their active mentorships are flagged for the coordinators to end
    (``consent_withdrawn_at``); the pairs and their history stay. Returns the counts."""
    # imported late: review (and offers, through it) import matching, which imports this
    from matcher.services.offers import end_open_offers_of
    from matcher.services.review import audit

    now = now or utcnow()
    ended = flagged = offers_ended = 0
    for start in range(0, len(person_ids), _CHUNK):
        chunk = list(person_ids[start : start + _CHUNK])
        ended += _end_open_proposals(session, kind=kind, person_ids=chunk, now=now, audit=audit)
        offers_ended += end_open_offers_of(
            session,
            craftsman_ids=chunk if kind == "craftsman" else (),
            apprentice_ids=chunk if kind == "apprentice" else (),
            reason="consent withdrawn",
        )
        flagged += _flag_active_pairs(
            session, kind=kind, person_ids=chunk, alliance_id=unit.alliance_id, now=now, audit=audit
        )
    return {"proposals_ended": ended, "offers_ended": offers_ended, "mentorships_flagged": flagged}


def _end_open_proposals(
    session: Session, *, kind: str, person_ids: list[int], now: datetime, audit: Audit
) -> int:
    """Reject the open proposals (of runs still under review) involving ``person_ids``."""
    column = Proposal.craftsman_id if kind == "craftsman" else Proposal.apprentice_id
    open_proposals = session.execute(
        select(Proposal.id, Proposal.status, MatchRun.alliance_id)
        .join(MatchRun, MatchRun.id == Proposal.match_run_id)
        .where(
            column.in_(person_ids),
            MatchRun.status == RUN_PROPOSED,
            Proposal.status.in_(OPEN_PROPOSAL_STATUSES),
        )
        .order_by(Proposal.id)
    ).all()
    for proposal_id, status, alliance_id in open_proposals:
        session.execute(
            update(Proposal)
            .where(Proposal.id == proposal_id)
            .values(
                status=PROPOSAL_REJECTED,
                comment=ENDED_BY_WITHDRAWAL,
                version=Proposal.version + 1,
                updated_at=now,
            )
        )
        audit(
            session,
            alliance_id=alliance_id,
            actor=f"consent-withdrawn:{kind}",
            action=f"proposal.{PROPOSAL_REJECTED}",
            object_type="proposal",
            object_id=proposal_id,
            data={"from": status, "to": PROPOSAL_REJECTED, "comment": ENDED_BY_WITHDRAWAL},
        )
    return len(open_proposals)


def _flag_active_pairs(
    session: Session,
    *,
    kind: str,
    person_ids: list[int],
    alliance_id: int,
    now: datetime,
    audit: Audit,
) -> int:
    """Flag the active mentorships of ``person_ids`` for the coordinators to end (audited)."""
    column = Mentorship.craftsman_id if kind == "craftsman" else Mentorship.apprentice_id
    pairs = session.execute(
        select(Mentorship.id, column)
        .where(column.in_(person_ids), Mentorship.status == MENTORSHIP_ACTIVE)
        .order_by(Mentorship.id)
    ).all()
    if pairs:
        session.execute(
            update(Mentorship)
            .where(Mentorship.id.in_([pair_id for pair_id, _ in pairs]))
            .values(consent_withdrawn_at=now, updated_at=now)
        )
    for pair_id, person_id in pairs:
        audit(
            session,
            alliance_id=alliance_id,
            actor=f"consent-withdrawn:{kind}",
            action="mentorship.consent_withdrawn",
            object_type="mentorship",
            object_id=pair_id,
            data={f"{kind}_id": person_id},
        )
    return len(pairs)


def consent_restored(
    session: Session,
    *,
    kind: str,
    person_ids: Sequence[int],
    unit: Unit,
    now: datetime | None = None,
) -> int:
    """What consenting again does, for people of ``unit`` whose consent was just set after
    none: their active pairs flagged by a withdrawal are no longer flagged where the other
    person consents too (or the alliance no longer asks for it): the coordinators are not
    asked to end a pair both may now take part in. Audited; returns how many were cleared."""
    from matcher.services.review import audit  # imported late, as in consent_withdrawn

    now = now or utcnow()
    column, other_column, other = (
        (Mentorship.craftsman_id, Mentorship.apprentice_id, Apprentice)
        if kind == "craftsman"
        else (Mentorship.apprentice_id, Mentorship.craftsman_id, Craftsman)
    )
    partner_consents = consent_given(other, unit.alliance)
    cleared = 0
    for start in range(0, len(person_ids), _CHUNK):
        chunk = list(person_ids[start : start + _CHUNK])
        pairs = session.execute(
            select(Mentorship.id, column)
            .join(other, other.id == other_column)
            .where(
                column.in_(chunk),
                Mentorship.status == MENTORSHIP_ACTIVE,
                Mentorship.consent_withdrawn_at.is_not(None),
                partner_consents,
            )
            .order_by(Mentorship.id)
        ).all()
        if not pairs:
            continue
        session.execute(
            update(Mentorship)
            .where(Mentorship.id.in_([pair_id for pair_id, _ in pairs]))
            .values(consent_withdrawn_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        for pair_id, person_id in pairs:
            audit(
                session,
                alliance_id=unit.alliance_id,
                actor=f"consent-given:{kind}",
                action="mentorship.consent_restored",
                object_type="mentorship",
                object_id=pair_id,
                data={f"{kind}_id": person_id},
            )
        cleared += len(pairs)
    return cleared


def withheld_people(session: Session, datas: Sequence[Mapping[str, Any]]) -> set[tuple[str, int]]:
    """Of the pairs' people named by events' ``data`` (``craftsman`` / ``apprentice`` with an
    ``id``), those another unit may not be shown: (role, id) of each without consent where their
    alliance requires it. One query per role for a whole batch."""
    withheld: set[tuple[str, int]] = set()
    for role, model in (("craftsman", Craftsman), ("apprentice", Apprentice)):
        ids = {
            int(data[role]["id"])
            for data in datas
            if isinstance(data.get(role), Mapping) and isinstance(data[role].get("id"), int)
        }
        if not ids:
            continue
        rows = session.scalars(
            select(model.id)
            .join(Unit, Unit.id == model.unit_id)
            .join(Alliance, Alliance.id == Unit.alliance_id)
            .where(
                model.id.in_(sorted(ids)),
                Alliance.consent_required.is_(True),
                model.cross_unit_consent_at.is_(None),
            )
        )
        withheld |= {(role, person_id) for person_id in rows}
    return withheld


def withdrawn_pairs(session: Session, *, alliance_id: int) -> list[Mentorship]:
    """The alliance's active pairs one of whom withdrew consent: the coordinators are asked
    to end them (the overview lists them until they are ended)."""
    return list(
        session.scalars(
            select(Mentorship)
            .where(
                Mentorship.alliance_id == alliance_id,
                Mentorship.status == MENTORSHIP_ACTIVE,
                Mentorship.consent_withdrawn_at.is_not(None),
            )
            .order_by(Mentorship.consent_withdrawn_at, Mentorship.id)
        )
    )


def notice(alliance: Alliance, locale: str) -> dict[str, Any]:
    """The consent notice of ``alliance`` in ``locale``: who receives what and why."""
    return {
        "alliance_id": alliance.id,
        "version": alliance.consent_notice_version,
        "locale": locale,
        "consent_required": alliance.consent_required,
        "title": translate(locale, "consent.notice.title", alliance=alliance.name),
        "text": translate(locale, "consent.notice.text", alliance=alliance.name),
    }
