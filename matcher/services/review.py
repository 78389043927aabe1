"""Coordinator review of a match run: approve, reject, swap, commit; every decision audited."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.db import utcnow
from matcher.errors import Conflict, PreconditionFailed, ValidationFailed
from matcher.i18n import Message
from matcher.models import (
    MENTORSHIP_ACTIVE,
    PROPOSAL_APPROVED,
    PROPOSAL_PENDING,
    PROPOSAL_REJECTED,
    RUN_COMMITTED,
    RUN_PROPOSED,
    Alliance,
    Apprentice,
    AuditEvent,
    Craftsman,
    MatchRun,
    Mentorship,
    Offer,
    Proposal,
    RejectedPair,
    Unit,
)
from matcher.services.capacity import free_slots, is_available
from matcher.services.consent import person_consents
from matcher.services.matching import judge_pair
from matcher.services.mentorships import create_mentorship, local_today
from matcher.services.webhooks import Change, emit_for


def audit(
    session: Session,
    *,
    alliance_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: int,
    data: dict[str, Any] | None = None,
) -> None:
    """Keep who did what to which object, and when."""
    session.add(
        AuditEvent(
            alliance_id=alliance_id,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            data=data or {},
        )
    )


def etag(proposal: Proposal) -> str:
    """The proposal's entity tag: its version."""
    return f'"p{proposal.id}v{proposal.version}"'


def _require_open_run(session: Session, run_id: int) -> MatchRun:
    run = session.get_one(MatchRun, run_id)
    if run.status != RUN_PROPOSED:
        raise Conflict(f"Match run {run.id} is {run.status}; its proposals can no longer change.")
    return run


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; If-Match takes a list of them
# (empty elements allowed). Header values reach WSGI as Latin-1, so obs-text is \x80-\xff.
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ENTITY_TAG_LIST = re.compile(rf"[\s,]*(?:{_ENTITY_TAG}[ \t]*(?:,[\s,]*|$))*")
_TAGS = re.compile(r'(W/)?("[^"]*")')


def if_match(field_value: str, current: str) -> bool:
    """Whether an ``If-Match`` field value matches the current (strong) entity tag.

    RFC 9110 §13.1.1: ``*`` matches any current representation; otherwise the value is a
    comma-separated list that matches if one of its tags equals ``current`` by the strong
    comparison (a weak tag ``W/"..."`` never matches). A malformed value matches nothing.
    """
    value = field_value.strip()
    if value == "*":
        return True
    if not _ENTITY_TAG_LIST.fullmatch(value):
        return False
    return any(not weak and tag == current for weak, tag in _TAGS.findall(value))


PROPOSAL_CHANGED = Message("review.proposal_changed")


def _compare_and_set(
    session: Session, proposal: Proposal, expected_etag: str, **values: Any
) -> None:
    """Write only if ``expected_etag``, an ``If-Match`` field value, still matches the proposal
    (else 412): nobody changed it since it was read."""
    if not if_match(expected_etag, etag(proposal)):
        raise PreconditionFailed(PROPOSAL_CHANGED)
    written = session.execute(
        update(Proposal)
        .where(Proposal.id == proposal.id, Proposal.version == proposal.version)
        .values(version=proposal.version + 1, updated_at=utcnow(), **values)
    )
    if written.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailed(PROPOSAL_CHANGED)
    session.refresh(proposal)


def _remember_rejection(session: Session, proposal: Proposal, actor: str) -> None:
    remember_rejected_pair(
        session,
        craftsman_id=proposal.craftsman_id,
        apprentice_id=proposal.apprentice_id,
        proposal_id=proposal.id,
        actor=actor,
    )


def remember_rejected_pair(
    session: Session, *, craftsman_id: int, apprentice_id: int, proposal_id: int | None, actor: str
) -> None:
    """Remember a pair as rejected: no later run proposes it until the rejection is cleared
    (the solver honours ``rejected_pairs``; a pair ended early is remembered here too)."""
    existing = session.scalars(
        select(RejectedPair).where(
            RejectedPair.craftsman_id == craftsman_id,
            RejectedPair.apprentice_id == apprentice_id,
        )
    ).one_or_none()
    if existing is None:
        session.add(
            RejectedPair(
                craftsman_id=craftsman_id,
                apprentice_id=apprentice_id,
                proposal_id=proposal_id,
                rejected_by=actor,
            )
        )
    else:
        existing.cleared_at = None
        existing.rejected_at = utcnow()
        existing.rejected_by = actor
        existing.proposal_id = proposal_id


def _forget_rejection(session: Session, proposal: Proposal) -> None:
    session.execute(
        update(RejectedPair)
        .where(
            RejectedPair.craftsman_id == proposal.craftsman_id,
            RejectedPair.apprentice_id == proposal.apprentice_id,
            RejectedPair.cleared_at.is_(None),
        )
        .values(cleared_at=utcnow())
    )


def decide(
    session: Session,
    *,
    proposal: Proposal,
    status: str,
    comment: str | None,
    actor: str,
    expected_etag: str,
) -> Proposal:
    """Approve or reject a proposal; a rejected pair is remembered for later runs."""
    run = _require_open_run(session, proposal.match_run_id)
    if status == PROPOSAL_APPROVED and not pair_consents(proposal):
        raise Conflict(Message("review.no_consent"))
    before = proposal.status
    _compare_and_set(session, proposal, expected_etag, status=status, comment=comment)
    if status == PROPOSAL_REJECTED:
        _remember_rejection(session, proposal, actor)
    elif before == PROPOSAL_REJECTED:
        _forget_rejection(session, proposal)
    audit(
        session,
        alliance_id=run.alliance_id,
        actor=actor,
        action=f"proposal.{status}",
        object_type="proposal",
        object_id=proposal.id,
        data={"from": before, "to": status, "comment": comment},
    )
    return proposal


def pair_consents(proposal: Proposal) -> bool:
    """Whether both people of a proposal may take part across units (consent, where required)."""
    return person_consents(proposal.craftsman) and person_consents(proposal.apprentice)


def swap(
    session: Session, *, proposal: Proposal, craftsman_id: int, actor: str, expected_etag: str
) -> Proposal:
    """Give the proposal's apprentice another craftsman, re-checking every hard constraint."""
    run = _require_open_run(session, proposal.match_run_id)
    craftsman = session.get(Craftsman, craftsman_id)
    if craftsman is None or craftsman.unit.alliance_id != run.alliance_id:
        raise ValidationFailed(
            Message("review.no_such_craftsman"),
            errors={"craftsman_id": [f"No craftsman {craftsman_id} in this alliance."]},
        )
    apprentice = proposal.apprentice
    params = MatchParams.from_json(run.params)
    judged = judge_pair(session, craftsman=craftsman, apprentice=apprentice, params=params)
    # Every constraint the pair breaks, not only the first: a coordinator may swap to a pair
    # below min_fit, but never to one of the same unit, one rejected or excluded, or one on the
    # apprentice's avoid list.
    broken = judged.verdict.broken
    free = session.scalar(
        select(free_slots(run_id=run.id, ignore_proposal=proposal.id)).where(
            Craftsman.id == craftsman.id
        )
    )
    problem: Message | None = None
    if not craftsman.active:
        problem = Message("review.craftsman_inactive")
    elif not is_available(craftsman, local_today(craftsman.unit.alliance.timezone)):
        problem = Message("review.craftsman_unavailable")
    elif not person_consents(craftsman):
        problem = Message("review.no_consent")
    elif "same_unit" in broken:
        problem = Message("review.same_unit")
    elif "excluded" in broken:
        problem = Message("review.rejected_before")
    elif "avoided" in broken:
        problem = Message("review.avoided")
    elif (free or 0) < 1:
        problem = Message("review.no_free_slot")
    if problem:
        raise ValidationFailed(problem, errors={"craftsman_id": [problem.english()]})
    before = proposal.craftsman_id
    _compare_and_set(
        session,
        proposal,
        expected_etag,
        craftsman_id=craftsman.id,
        score=judged.verdict.score,
        fit=judged.verdict.fit,
        explanation=judged.explanation,
        preference_rank=judged.preference_rank,
        status=PROPOSAL_PENDING,
    )
    audit(
        session,
        alliance_id=run.alliance_id,
        actor=actor,
        action="proposal.swap",
        object_type="proposal",
        object_id=proposal.id,
        data={"from_craftsman_id": before, "to_craftsman_id": craftsman.id},
    )
    return proposal


def decide_many(
    session: Session,
    *,
    run: MatchRun,
    status: str,
    comment: str | None,
    actor: str,
    ids: Sequence[int] | None = None,
    min_score: float | None = None,
    pending_only: bool = False,
) -> int:
    """Approve or reject many proposals of a run at once; returns how many changed.
    ``pending_only`` leaves the proposals someone already decided as they are."""
    _require_open_run(session, run.id)
    stmt = select(Proposal).where(Proposal.match_run_id == run.id, Proposal.status != status)
    if pending_only:
        stmt = stmt.where(Proposal.status == PROPOSAL_PENDING)
    if ids is not None:
        unknown = set(ids) - set(
            session.scalars(
                select(Proposal.id).where(Proposal.match_run_id == run.id, Proposal.id.in_(ids))
            )
        )
        if unknown:
            raise ValidationFailed(
                "Some ids are not proposals of this run.",
                errors={"ids": [f"Unknown: {sorted(unknown)}."]},
            )
        stmt = stmt.where(Proposal.id.in_(ids))
    if min_score is not None:
        stmt = stmt.where(Proposal.score >= min_score)
    proposals = list(session.scalars(stmt.order_by(Proposal.id)))
    # A pair without consent (where the alliance requires it) is left as it is, never approved.
    if status == PROPOSAL_APPROVED and session.get_one(Alliance, run.alliance_id).consent_required:
        proposals = [proposal for proposal in proposals if pair_consents(proposal)]
    for proposal in proposals:
        decide(
            session,
            proposal=proposal,
            status=status,
            comment=comment,
            actor=actor,
            expected_etag="*",
        )
    return len(proposals)


@dataclass(frozen=True)
class CommitResult:
    """What committing a run did: mentorships started, or (craftsman consent required) offers
    made."""

    run: MatchRun
    mentorships_created: int
    already_committed: bool
    offers_created: int = 0


def commit_run(session: Session, *, run: MatchRun, actor: str, today: date) -> CommitResult:
    """Turn the approved proposals into mentorships, all or nothing; idempotent. Where the
    alliance requires its craftsmen's consent, each becomes an offer instead
    (``services/offers.py``), and a mentorship once accepted.

    Refuses (409) when the data moved since the review: a person deactivated or already mentored,
    or a craftsman's capacity taken by mentorships committed (or offers made) meanwhile.
    """
    from matcher.services.offers import create_offers, offers_first  # offers imports us

    if run.status == RUN_COMMITTED:
        created = session.scalar(
            select(func.count())
            .select_from(Mentorship)
            .join(Proposal, Mentorship.proposal_id == Proposal.id)
            .where(Proposal.match_run_id == run.id)
        )
        offered = session.scalar(
            select(func.count())
            .select_from(Offer)
            .join(Proposal, Offer.proposal_id == Proposal.id)
            .where(Proposal.match_run_id == run.id)
        )
        return CommitResult(
            run=run,
            mentorships_created=created or 0,
            already_committed=True,
            offers_created=offered or 0,
        )
    if run.status != RUN_PROPOSED:
        raise Conflict(f"Match run {run.id} is {run.status}; only a proposed run can be committed.")
    approved = list(
        session.scalars(
            select(Proposal)
            .where(Proposal.match_run_id == run.id, Proposal.status == PROPOSAL_APPROVED)
            .order_by(Proposal.id)
        )
    )
    problems = _commit_conflicts(session, run=run, approved=approved)
    if problems:
        raise CommitConflicts(problems)
    claimed = session.execute(
        update(MatchRun)
        .where(MatchRun.id == run.id, MatchRun.status == RUN_PROPOSED)
        .values(status=RUN_COMMITTED, committed_at=utcnow(), updated_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Another request committed or changed this run at the same time.")
    alliance = session.get_one(Alliance, run.alliance_id)
    offers = offers_first(alliance)
    if offers:
        create_offers(session, run=run, approved=approved)
    else:
        for proposal in approved:
            create_mentorship(
                session,
                craftsman=proposal.craftsman,
                apprentice=proposal.apprentice,
                started_on=today,
                proposal_id=proposal.id,
            )
    started = 0 if offers else len(approved)
    offered = len(approved) if offers else 0
    audit(
        session,
        alliance_id=run.alliance_id,
        actor=actor,
        action="match_run.commit",
        object_type="match_run",
        object_id=run.id,
        data={"mentorships": started, "offers": offered},
    )
    session.flush()
    session.refresh(run)
    emit_for(
        session,
        run.alliance_id,
        lambda: [
            Change(
                type="match_run.committed",
                alliance_id=run.alliance_id,
                unit_ids=(),
                data={
                    "match_run_id": run.id,
                    "alliance_id": run.alliance_id,
                    "alliance_code": alliance.code,
                    "status": run.status,
                    "mentorships_created": started,
                    "offers_created": offered,
                },
            )
        ],
    )
    return CommitResult(
        run=run, mentorships_created=started, already_committed=False, offers_created=offered
    )


@dataclass(frozen=True)
class CommitConflict:
    """One reason approved proposals can no longer become mentorships, naming the person."""

    kind: Literal["craftsman_inactive", "apprentice_inactive", "apprentice_mentored", "no_slot"]
    person_id: int
    name: str
    unit: str
    free: int = 0  # no_slot: the craftsman's free slots now ...
    wanted: int = 0  # ... and the approved pairs that need one

    def message(self) -> Message:
        """The conflict as the pages say it, by name and unit, in the reader's language."""
        params = {"name": self.name, "unit": self.unit, "free": self.free, "wanted": self.wanted}
        return Message(f"conflict.{self.kind}", params)

    def describe(self) -> str:
        """The conflict as the API's detail says it (with the person's id)."""
        who = f"{self.name} (#{self.person_id}, {self.unit})"
        return {
            "craftsman_inactive": f"Craftsman {who} is inactive.",
            "apprentice_inactive": f"Apprentice {who} is inactive.",
            "apprentice_mentored": f"Apprentice {who} already has an active mentorship.",
            "no_slot": f"Craftsman {who} has {self.free} free slots for {self.wanted} "
            "approved pairs.",
        }[self.kind]


class CommitConflicts(Conflict):
    """A commit refused because the data moved since the review; nothing was written. The
    problem's ``errors.conflicts`` lists each reason as data (kind, person, unit, slots)."""

    def __init__(self, conflicts: Sequence[CommitConflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__(
            "The data changed since the review; nothing was committed: "
            + " ".join(conflict.describe() for conflict in self.conflicts),
            errors={"conflicts": [asdict(conflict) for conflict in self.conflicts]},
        )


def _commit_conflicts(
    session: Session, *, run: MatchRun, approved: Sequence[Proposal]
) -> list[CommitConflict]:
    """Every reason the approved proposals can no longer become mentorships."""
    if not approved:
        return []
    craftsman_ids = {p.craftsman_id for p in approved}
    apprentice_ids = {p.apprentice_id for p in approved}
    craftsmen = {
        row.id: row
        for row in session.execute(
            select(
                Craftsman.id,
                Craftsman.name,
                Craftsman.active,
                Unit.name.label("unit_name"),
            )
            .join(Unit, Unit.id == Craftsman.unit_id)
            .where(Craftsman.id.in_(craftsman_ids))
        )
    }
    apprentices = {
        row.id: row
        for row in session.execute(
            select(Apprentice.id, Apprentice.name, Apprentice.active, Unit.name.label("unit_name"))
            .join(Unit, Unit.id == Apprentice.unit_id)
            .where(Apprentice.id.in_(apprentice_ids))
        )
    }
    mentored = set(
        session.scalars(
            select(Mentorship.apprentice_id).where(
                Mentorship.apprentice_id.in_(apprentice_ids), Mentorship.status == MENTORSHIP_ACTIVE
            )
        )
    )
    free = dict(
        session.execute(
            select(Craftsman.id, free_slots()).where(Craftsman.id.in_(craftsman_ids))
        ).all()
    )
    wanted: dict[int, int] = {}
    for proposal in approved:
        wanted[proposal.craftsman_id] = wanted.get(proposal.craftsman_id, 0) + 1

    def about(kind: Any, person: Any, **slots: int) -> CommitConflict:
        return CommitConflict(kind, person.id, person.name, person.unit_name, **slots)

    problems = [
        about("craftsman_inactive", craftsmen[c])
        for c in sorted(craftsmen)
        if not craftsmen[c].active
    ]
    problems += [
        about("apprentice_inactive", apprentices[a])
        for a in sorted(apprentices)
        if not apprentices[a].active
    ]
    if not run.params.get("include_mentored"):
        problems += [about("apprentice_mentored", apprentices[a]) for a in sorted(mentored)]
    problems += [
        about("no_slot", craftsmen[c], free=free[c], wanted=n)
        for c, n in sorted(wanted.items())
        if n > free[c]
    ]
    return problems


def clear_rejection(
    session: Session, *, rejected: RejectedPair, actor: str, alliance_id: int
) -> None:
    """Allow a rejected pair to be proposed again."""
    rejected.cleared_at = utcnow()
    audit(
        session,
        alliance_id=alliance_id,
        actor=actor,
        action="rejection.clear",
        object_type="rejected_pair",
        object_id=rejected.id,
        data={"craftsman_id": rejected.craftsman_id, "apprentice_id": rejected.apprentice_id},
    )


def rejected_pairs_query(*, alliance_id: int) -> Any:
    """The alliance's standing rejections, newest first."""
    return (
        select(RejectedPair)
        .join(Craftsman, RejectedPair.craftsman_id == Craftsman.id)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(Unit.alliance_id == alliance_id, RejectedPair.cleared_at.is_(None))
        .order_by(RejectedPair.rejected_at.desc(), RejectedPair.id.desc())
    )
