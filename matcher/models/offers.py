"""Offers (programme.md, "Two-way choice"): an approved pair waiting for the craftsman's yes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from matcher.db import Base, UTCDateTime
from matcher.models.base import TimestampMixin, one_of
from matcher.models.people import Apprentice, Craftsman

OFFER_STATUSES = ("offered", "accepted", "declined", "expired")
# One name per status, for the code that sets or compares one (the tuple feeds the check).
OFFER_OFFERED, OFFER_ACCEPTED, OFFER_DECLINED, OFFER_EXPIRED = OFFER_STATUSES
# An alliance's setting: whether committing a run asks the craftsmen first.
CRAFTSMAN_CONSENT = ("not_required", "required")
CONSENT_NOT_REQUIRED, CONSENT_REQUIRED = CRAFTSMAN_CONSENT


class Offer(TimestampMixin, Base):
    """An approved proposal of a committed run, offered to its craftsman; accepted, it becomes
    the pair's mentorship. While ``offered`` it holds one of the craftsman's slots."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(one_of("status", OFFER_STATUSES), name="status"),
        # The offers job's scans: the open ones due a reminder or past their expiry.
        Index("ix_offers_status_expires_at", "status", "expires_at"),
        Index("ix_offers_status_offered_at", "status", "offered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    # One offer per proposal, ever: a database rule, so a commit cannot offer a pair twice.
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), unique=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("craftsmen.id"), index=True)
    apprentice_id: Mapped[int] = mapped_column(ForeignKey("apprentices.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OFFER_OFFERED)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by: Mapped[str | None] = mapped_column(String(200))  # "link", or who answered
    reason: Mapped[str | None] = mapped_column(Text)
    mentorship_id: Mapped[int | None] = mapped_column(ForeignKey("mentorships.id"), unique=True)

    craftsman: Mapped[Craftsman] = relationship()
    apprentice: Mapped[Apprentice] = relationship()
