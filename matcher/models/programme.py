"""The programme around a pair (programme.md): check-ins, the completion assessment (出师考核),
its certificate, and the public pages' request counts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import TimestampMixin, one_of
from matcher.models.mentorships import AUTHORS

# When a pair is asked how it goes: after its first summary, and at the middle of its term.
CHECK_IN_OCCASIONS = ("first_summary", "mid_term")
ASSESSMENT_RESULTS = ("pass", "fail")
ASSESSMENT_PASS, ASSESSMENT_FAIL = ASSESSMENT_RESULTS


class CheckIn(Base):
    """How one of the pair says the mentorship goes; once per author and occasion."""

    __tablename__ = "check_ins"
    __table_args__ = (
        UniqueConstraint("mentorship_id", "occasion", "author"),
        CheckConstraint(one_of("author", AUTHORS), name="author"),
        CheckConstraint(one_of("occasion", CHECK_IN_OCCASIONS), name="occasion"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mentorship_id: Mapped[int] = mapped_column(ForeignKey("mentorships.id"), index=True)
    occasion: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(16))
    rating: Mapped[int] = mapped_column(Integer)
    good_fit: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    submitted_by: Mapped[str] = mapped_column(String(200))  # a key's label, or "form"


class Assessment(TimestampMixin, Base):
    """The completion assessment (出师考核) of a mentorship: one per mentorship."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint("theory BETWEEN 0 AND 100", name="theory"),
        CheckConstraint("practice BETWEEN 0 AND 100", name="practice"),
        CheckConstraint(one_of("result", ASSESSMENT_RESULTS), name="result"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mentorship_id: Mapped[int] = mapped_column(ForeignKey("mentorships.id"), unique=True)
    theory: Mapped[int] = mapped_column(Integer)
    practice: Mapped[int] = mapped_column(Integer)
    skills: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    evaluator: Mapped[str] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text)
    assessed_on: Mapped[date] = mapped_column(Date)


class Certificate(Base):
    """What a passed assessment earns: an unguessable code anyone may verify."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    mentorship_id: Mapped[int] = mapped_column(ForeignKey("mentorships.id"), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PublicRequestWindow(Base):
    """Requests to the public pages per client address and minute (they have no API key to
    count against): the same fixed-window budget the API keys have."""

    __tablename__ = "public_request_windows"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
