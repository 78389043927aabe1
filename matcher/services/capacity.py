"""Free capacity: how many more apprentices a craftsman can take, as one SQL expression.

free = capacity − active mentorships − open offers (− the run's open proposals, when a run is under
review). An offer waiting for the craftsman's answer holds its slot (programme.md).
The match run's loading, its size estimate, swap, the swap shortlist and the commit check all
select this expression, so every place counts the same slots. A craftsman who is not accepting
apprentices, or is paused on the run's date, takes no part at all (:func:`available_on`).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, func, or_, select

from matcher.models import (
    MENTORSHIP_ACTIVE,
    OFFER_OFFERED,
    OPEN_PROPOSAL_STATUSES,
    Craftsman,
    Mentorship,
    Offer,
    Proposal,
)


def free_slots(
    *, run_id: int | None = None, ignore_proposal: int | None = None
) -> ColumnElement[int]:
    """The free slots of each ``Craftsman`` row of the enclosing query (correlated, indexed
    counts: one statement for any number of craftsmen); open offers hold slots as mentorships
    do. With ``run_id``, the run's pending and approved proposals hold slots too, except
    ``ignore_proposal`` (the one being swapped)."""
    active = (
        select(func.count())
        .select_from(Mentorship)
        .where(Mentorship.craftsman_id == Craftsman.id, Mentorship.status == MENTORSHIP_ACTIVE)
        .correlate(Craftsman)
        .scalar_subquery()
    )
    offered = (
        select(func.count())
        .select_from(Offer)
        .where(Offer.craftsman_id == Craftsman.id, Offer.status == OFFER_OFFERED)
        .correlate(Craftsman)
        .scalar_subquery()
    )
    free = Craftsman.capacity - active - offered
    if run_id is not None:
        proposed = (
            select(func.count())
            .select_from(Proposal)
            .where(
                Proposal.match_run_id == run_id,
                Proposal.craftsman_id == Craftsman.id,
                Proposal.status.in_(OPEN_PROPOSAL_STATUSES),
                Proposal.id != (ignore_proposal or 0),
            )
            .correlate(Craftsman)
            .scalar_subquery()
        )
        free = free - proposed
    return free


def available_on(today: date) -> ColumnElement[bool]:
    """SQL: the ``Craftsman`` row takes part in a run of ``today``: accepting apprentices and
    not paused on or after it (matching.md, "Preferences and availability")."""
    return Craftsman.accepting.is_(True) & or_(
        Craftsman.paused_until.is_(None), Craftsman.paused_until < today
    )


def is_available(craftsman: Craftsman, today: date) -> bool:
    """:func:`available_on` for one loaded craftsman."""
    return craftsman.accepting and (
        craftsman.paused_until is None or craftsman.paused_until < today
    )
