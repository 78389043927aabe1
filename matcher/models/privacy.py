"""The access log (privacy.md): who read a single person's record, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import one_of

PERSON_KINDS = ("craftsman", "apprentice")
ACCESS_ACTIONS = ("read", "export")
ACCESS_READ, ACCESS_EXPORT = ACCESS_ACTIONS


class AccessLogEntry(Base):
    """One read of one person's record by someone other than their own unit's HR system.

    The person is named by kind and id only (one table for both kinds, so no foreign key): the
    log outlives an erasure, which leaves the row's id in place."""

    __tablename__ = "access_log"
    __table_args__ = (
        CheckConstraint(one_of("person_kind", PERSON_KINDS), name="person_kind"),
        CheckConstraint(one_of("action", ACCESS_ACTIONS), name="action"),
        Index("ix_access_log_person", "person_kind", "person_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))  # the person's
    action: Mapped[str] = mapped_column(String(16))
    reader: Mapped[str] = mapped_column(String(200))  # the principal's label
    reader_role: Mapped[str] = mapped_column(String(16))
    reader_alliance_id: Mapped[int | None] = mapped_column(Integer)
    reader_unit_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
