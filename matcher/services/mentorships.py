"""Mentorships (师徒关系): committed pairs and their training-summary cadence."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from matcher.models import Alliance, Apprentice, Craftsman, Mentorship


def create_mentorship(
    session: Session,
    *,
    craftsman: Craftsman,
    apprentice: Apprentice,
    started_on: date,
    summary_every_days: int | None = None,
    proposal_id: int | None = None,
) -> Mentorship:
    """A new active mentorship; the cadence defaults to the alliance's."""
    if summary_every_days is None:
        alliance = session.get(Alliance, craftsman.unit.alliance_id)
        assert alliance is not None
        summary_every_days = alliance.summary_every_days
    mentorship = Mentorship(
        alliance_id=craftsman.unit.alliance_id,
        craftsman_id=craftsman.id,
        apprentice_id=apprentice.id,
        proposal_id=proposal_id,
        started_on=started_on,
        summary_every_days=summary_every_days,
        status="active",
    )
    session.add(mentorship)
    session.flush()
    return mentorship
