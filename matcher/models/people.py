"""Craftsmen and apprentices with the skills they teach and want."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import true

from matcher.db import Base, UTCDateTime
from matcher.models.alliances import Skill, Unit
from matcher.models.base import TimestampMixin


class PersonMixin(TimestampMixin):
    """Fields shared by craftsmen and apprentices, as HR systems send them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    region: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When the person was erased (privacy.md): their personal fields hold a pseudonym since.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Separate consent to be shown to other member units (privacy.md, PIPL art. 23): when it
    # was given and which notice version it answered; both NULL: none (or withdrawn).
    cross_unit_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cross_unit_consent_version: Mapped[str | None] = mapped_column(String(32))

    @property
    def cross_unit_consent(self) -> dict[str, Any] | None:
        """The consent as the API shows it: ``{given_at, version}``, or None."""
        if self.cross_unit_consent_at is None:
            return None
        return {"given_at": self.cross_unit_consent_at, "version": self.cross_unit_consent_version}


class Craftsman(PersonMixin, Base):
    """A mentor of a unit's craftsman team (劳模, 工匠, 技能带头人)."""

    __tablename__ = "craftsmen"
    __table_args__ = (
        UniqueConstraint("unit_id", "external_id"),
        CheckConstraint("capacity BETWEEN 1 AND 10", name="capacity"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        Index("ix_craftsmen_unit_id_updated_at", "unit_id", "updated_at"),
    )

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    honours: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(SmallInteger, default=2)
    # Availability (programme.md, "Two-way choice"): a craftsman not accepting, or paused until
    # a date on or after a run's date, takes no part in it. Set by its unit's HR or a
    # coordinator; None: never set.
    accepting: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    paused_until: Mapped[date | None] = mapped_column(Date)
    availability_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    unit: Mapped[Unit] = relationship()
    skills: Mapped[list[CraftsmanSkill]] = relationship(
        cascade="all, delete-orphan", order_by="CraftsmanSkill.position"
    )


class CraftsmanSkill(Base):
    """A skill a craftsman can teach, at a level from 1 to 5."""

    __tablename__ = "craftsman_skills"
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 5", name="level"),)

    craftsman_id: Mapped[int] = mapped_column(
        ForeignKey("craftsmen.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"), primary_key=True, index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)  # the order HR sent them in

    skill: Mapped[Skill] = relationship(lazy="joined")

    @property
    def name(self) -> str:
        """The canonical name of the skill tag."""
        return self.skill.name


class Apprentice(PersonMixin, Base):
    """An employee who wants to learn from another unit's craftsman."""

    __tablename__ = "apprentices"
    __table_args__ = (
        UniqueConstraint("unit_id", "external_id"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        Index("ix_apprentices_unit_id_updated_at", "unit_id", "updated_at"),
    )

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    preferences_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: never

    unit: Mapped[Unit] = relationship()
    wants: Mapped[list[ApprenticeWant]] = relationship(
        cascade="all, delete-orphan", order_by="ApprenticeWant.position"
    )


class ApprenticeWant(Base):
    """A skill an apprentice wants to reach, with a target level and a weight."""

    __tablename__ = "apprentice_wants"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level"),
        CheckConstraint("weight > 0", name="weight"),
    )

    apprentice_id: Mapped[int] = mapped_column(
        ForeignKey("apprentices.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id"), primary_key=True, index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)

    skill: Mapped[Skill] = relationship(lazy="joined")

    @property
    def name(self) -> str:
        """The canonical name of the skill tag."""
        return self.skill.name


class ApprenticePreference(Base):
    """A craftsman an apprentice ranked (``rank`` 1-3) or asked to avoid (``rank`` NULL).

    At most 3 ranked and 20 avoided per apprentice (the service checks the counts); a craftsman
    is ranked or avoided, not both (the primary key)."""

    __tablename__ = "apprentice_preferences"
    __table_args__ = (
        CheckConstraint("rank IS NULL OR rank BETWEEN 1 AND 3", name="rank"),
        UniqueConstraint("apprentice_id", "rank"),
    )

    apprentice_id: Mapped[int] = mapped_column(
        ForeignKey("apprentices.id", ondelete="CASCADE"), primary_key=True
    )
    craftsman_id: Mapped[int] = mapped_column(
        ForeignKey("craftsmen.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    rank: Mapped[int | None] = mapped_column(SmallInteger)
