"""The programme around a pair (programme.md): the agreement's term and goals, renewing and
ending with a reason, check-ins and their flag, the completion assessment (出师考核) and its
certificate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher.db import utcnow
from matcher.errors import Conflict, NotFound, ValidationFailed
from matcher.models import (
    ASSESSMENT_PASS,
    CHECK_IN_OCCASIONS,
    MENTORSHIP_ACTIVE,
    MENTORSHIP_COMPLETED,
    Alliance,
    Assessment,
    Certificate,
    CheckIn,
    Mentorship,
    PublicRequestWindow,
    Unit,
)
from matcher.services.mentorships import add_months, end_mentorship
from matcher.services.review import audit, remember_rejected_pair
from matcher.services.webhooks import emit_about_mentorship

# 15 characters of a 31-letter alphabet without look-alikes (0/O, 1/I/L): about 74 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 15


def _require_active(mentorship: Mentorship) -> None:
    if mentorship.status != MENTORSHIP_ACTIVE:
        raise Conflict(
            f"Mentorship {mentorship.id} is {mentorship.status}; it can no longer change."
        )


def renew(session: Session, *, mentorship: Mentorship, months: int, actor: str) -> Mentorship:
    """Extend an active pair's agreement by ``months`` (1–12); its term-ending reminders follow
    the new date."""
    _require_active(mentorship)
    before = mentorship.ends_on
    mentorship.ends_on = add_months(mentorship.ends_on, months)
    mentorship.updated_at = utcnow()
    audit(
        session,
        alliance_id=mentorship.alliance_id,
        actor=actor,
        action="mentorship.renew",
        object_type="mentorship",
        object_id=mentorship.id,
        data={"months": months, "ends_on_before": before.isoformat()},
    )
    session.flush()
    return mentorship


def end_pair(
    session: Session,
    *,
    mentorship: Mentorship,
    reason_code: str,
    comment: str | None,
    today: date,
    actor: str,
) -> Mentorship:
    """End a pair early with its reason (idempotent once ended). The pair is remembered like a
    rejected one, so no later run proposes it again; the apprentice, no longer in an active
    mentorship, is back in the pool."""
    if mentorship.status != MENTORSHIP_ACTIVE:
        return mentorship
    end_mentorship(session, mentorship=mentorship, today=today)
    mentorship.end_reason = reason_code
    mentorship.end_comment = comment
    mentorship.flagged = False
    remember_rejected_pair(
        session,
        craftsman_id=mentorship.craftsman_id,
        apprentice_id=mentorship.apprentice_id,
        proposal_id=mentorship.proposal_id,
        actor=f"{actor} (ended: {reason_code})",
    )
    audit(
        session,
        alliance_id=mentorship.alliance_id,
        actor=actor,
        action="mentorship.end",
        object_type="mentorship",
        object_id=mentorship.id,
        data={"reason_code": reason_code, "comment": comment},
    )
    session.flush()
    return mentorship


def change_mentorship(
    session: Session, *, mentorship: Mentorship, changes: dict[str, Any], actor: str
) -> Mentorship:
    """A coordinator's changes: the goals, and clearing the "not a good fit" flag."""
    if "goals" in changes:
        mentorship.goals = [dict(goal) for goal in changes["goals"]]
    if changes.get("flagged") is False:
        mentorship.flagged = False
    mentorship.updated_at = utcnow()
    audit(
        session,
        alliance_id=mentorship.alliance_id,
        actor=actor,
        action="mentorship.change",
        object_type="mentorship",
        object_id=mentorship.id,
        data=dict(changes),
    )
    session.flush()
    return mentorship


@dataclass(frozen=True)
class CheckInInput:
    """A check-in as handed in."""

    author: str
    rating: int
    good_fit: bool
    comment: str | None = None
    occasion: str | None = None


def add_check_in(
    session: Session, *, mentorship: Mentorship, check_in: CheckInInput, submitted_by: str
) -> CheckIn:
    """Record a check-in: once per author and occasion (409 for a second). Without an occasion
    it answers the author's first unanswered one. ``good_fit = false`` flags the pair."""
    _require_active(mentorship)
    occasion = check_in.occasion
    if occasion is None:
        answered = set(
            session.scalars(
                select(CheckIn.occasion).where(
                    CheckIn.mentorship_id == mentorship.id, CheckIn.author == check_in.author
                )
            )
        )
        occasion = next((o for o in CHECK_IN_OCCASIONS if o not in answered), None)
        if occasion is None:
            raise Conflict(f"The {check_in.author} has answered every check-in of this pair.")
    row = CheckIn(
        mentorship_id=mentorship.id,
        occasion=occasion,
        author=check_in.author,
        rating=check_in.rating,
        good_fit=check_in.good_fit,
        comment=check_in.comment,
        submitted_at=utcnow(),
        submitted_by=submitted_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"The {check_in.author}'s check-in for {occasion} was already handed in."
        ) from exc
    if not check_in.good_fit:
        session.execute(
            update(Mentorship)
            .where(Mentorship.id == mentorship.id)
            .values(flagged=True)
            .execution_options(synchronize_session="evaluate")  # the loaded pair too, no re-read
        )
    return row


def check_ins_query(mentorship: Mentorship) -> Any:
    """A mentorship's check-ins, oldest first."""
    return (
        select(CheckIn)
        .where(CheckIn.mentorship_id == mentorship.id)
        .order_by(CheckIn.submitted_at, CheckIn.id)
    )


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _issue_certificate(session: Session, mentorship: Mentorship, today: date) -> Certificate:
    existing = session.scalars(
        select(Certificate).where(Certificate.mentorship_id == mentorship.id)
    ).one_or_none()
    if existing is not None:
        return existing
    certificate = Certificate(mentorship_id=mentorship.id, code=_new_code(), issued_on=today)
    session.add(certificate)
    session.flush()
    return certificate


def _apply_result(session: Session, mentorship: Mentorship, assessment: Assessment) -> None:
    """A pass completes an active pair and issues its certificate (once)."""
    if assessment.result != ASSESSMENT_PASS:
        return
    completes = mentorship.status == MENTORSHIP_ACTIVE
    if completes:
        mentorship.status = MENTORSHIP_COMPLETED
        mentorship.ended_on = assessment.assessed_on
        mentorship.next_due_on = None
        mentorship.flagged = False
        mentorship.updated_at = utcnow()
    certificate = _issue_certificate(session, mentorship, assessment.assessed_on)
    if completes:
        emit_about_mentorship(
            session,
            "mentorship.completed",
            mentorship,
            certificate_code=certificate.code,
            issued_on=certificate.issued_on.isoformat(),
        )


def assess(
    session: Session,
    *,
    mentorship: Mentorship,
    fields: dict[str, Any],
    today: date,
    actor: str,
) -> Assessment:
    """The completion assessment of an active pair; one per mentorship (a second is 409)."""
    _require_active(mentorship)
    assessment = Assessment(mentorship_id=mentorship.id, assessed_on=today, **fields)
    try:
        with session.begin_nested():
            session.add(assessment)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"Mentorship {mentorship.id} has been assessed already; PUT corrects it."
        ) from exc
    _apply_result(session, mentorship, assessment)
    audit(
        session,
        alliance_id=mentorship.alliance_id,
        actor=actor,
        action="assessment.create",
        object_type="mentorship",
        object_id=mentorship.id,
        data=dict(fields),
    )
    session.flush()
    return assessment


def correct_assessment(
    session: Session, *, mentorship: Mentorship, fields: dict[str, Any], actor: str
) -> Assessment:
    """Correct the assessment (audited with what it said before). A correction to ``pass``
    completes the pair; a certificate once issued stays (it is withdrawn by no rule here)."""
    assessment = assessment_of(session, mentorship)
    before = {name: getattr(assessment, name) for name in fields}
    if before.get("result") == ASSESSMENT_PASS and fields.get("result") != ASSESSMENT_PASS:
        raise Conflict("A passed assessment has issued its certificate; it cannot become a fail.")
    for name, value in fields.items():
        setattr(assessment, name, value)
    assessment.updated_at = utcnow()
    _apply_result(session, mentorship, assessment)
    audit(
        session,
        alliance_id=mentorship.alliance_id,
        actor=actor,
        action="assessment.correct",
        object_type="mentorship",
        object_id=mentorship.id,
        data={"before": dict(before), "after": dict(fields)},
    )
    session.flush()
    return assessment


def assessment_of(session: Session, mentorship: Mentorship) -> Assessment:
    """The mentorship's assessment, or 404."""
    assessment = session.scalars(
        select(Assessment).where(Assessment.mentorship_id == mentorship.id)
    ).one_or_none()
    if assessment is None:
        raise NotFound(f"Mentorship {mentorship.id} has not been assessed yet.")
    return assessment


def certificate_of(session: Session, mentorship_id: int) -> Certificate | None:
    """The certificate a mentorship earned, if any."""
    return session.scalars(
        select(Certificate).where(Certificate.mentorship_id == mentorship_id)
    ).one_or_none()


@dataclass(frozen=True)
class CertificateView:
    """What the public verification shows (programme.md): nothing else."""

    code: str
    issued_on: date
    apprentice: str
    apprentice_unit: str
    craftsman: str
    craftsman_unit: str
    alliance: str
    skills: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "issued_on": self.issued_on.isoformat(),
            "apprentice": {"name": self.apprentice, "unit": self.apprentice_unit},
            "craftsman": {"name": self.craftsman, "unit": self.craftsman_unit},
            "alliance": self.alliance,
            "skills": self.skills,
        }


def verify_certificate(session: Session, code: str) -> CertificateView:
    """The certificate with this code as the public may see it, or ``NotFound``."""
    if not code or len(code) > 32:
        raise NotFound("No certificate has this code.")
    certificate = session.scalars(
        select(Certificate).where(Certificate.code == code.upper())
    ).one_or_none()
    if certificate is None:
        raise NotFound("No certificate has this code.")
    mentorship = session.get_one(Mentorship, certificate.mentorship_id)
    alliance = session.get_one(Alliance, mentorship.alliance_id)
    assessment = assessment_of(session, mentorship)
    craftsman_unit = session.get_one(Unit, mentorship.craftsman.unit_id)
    apprentice_unit = session.get_one(Unit, mentorship.apprentice.unit_id)
    return CertificateView(
        code=certificate.code,
        issued_on=certificate.issued_on,
        apprentice=mentorship.apprentice.name,
        apprentice_unit=apprentice_unit.name,
        craftsman=mentorship.craftsman.name,
        craftsman_unit=craftsman_unit.name,
        alliance=alliance.name,
        skills=[{"name": s["name"], "level": s["level"]} for s in assessment.skills],
    )


def validate_goal_levels(goals: list[dict[str, Any]]) -> None:
    """Each goal's skill once."""
    seen: set[str] = set()
    for index, goal in enumerate(goals):
        if goal["skill"] in seen:
            raise ValidationFailed(
                "A skill appears twice among the goals.",
                errors={"goals": {str(index): {"skill": ["Appears twice."]}}},
            )
        seen.add(goal["skill"])


@dataclass(frozen=True)
class ProgrammeOverview:
    """What the overview page shows of the programme: flagged pairs, terms ending soon."""

    flagged: list[Mentorship]
    ending: list[Mentorship]


ENDING_WITHIN_DAYS = 30


def programme_overview(session: Session, *, alliance_id: int, today: date) -> ProgrammeOverview:
    """The alliance's active pairs flagged "not a good fit", and those whose term ends within
    30 days (soonest first)."""
    active = (Mentorship.alliance_id == alliance_id, Mentorship.status == MENTORSHIP_ACTIVE)
    flagged = session.scalars(
        select(Mentorship).where(*active, Mentorship.flagged.is_(True)).order_by(Mentorship.id)
    ).all()
    ending = session.scalars(
        select(Mentorship)
        .where(*active, Mentorship.ends_on <= today + timedelta(days=ENDING_WITHIN_DAYS))
        .order_by(Mentorship.ends_on, Mentorship.id)
    ).all()
    return ProgrammeOverview(flagged=list(flagged), ending=list(ending))


def count_public_request(session: Session, *, client: str, now: float, per_minute: int) -> int:
    """Count a request of ``client`` to the public pages in this minute's window; seconds until
    it may ask again once over ``per_minute`` (0: allowed). One upsert; the caller commits."""
    if per_minute <= 0:
        return 0
    window = int(now // 60) * 60
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(PublicRequestWindow)
        .values(client=client[:64], window_start=window, count=1)
        .on_conflict_do_update(
            index_elements=["client", "window_start"],
            set_={"count": PublicRequestWindow.count + 1},
        )
        .returning(PublicRequestWindow.count)
    )
    count = session.execute(stmt).scalar_one()
    if count == 1:  # the first of a window: older windows of this client are of no use
        session.execute(
            delete(PublicRequestWindow).where(
                PublicRequestWindow.client == client[:64],
                PublicRequestWindow.window_start < window,
            )
        )
    return 0 if count <= per_minute else max(1, int(window + 60 - now))
