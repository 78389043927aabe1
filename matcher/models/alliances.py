"""Alliances, their member units and their skill taxonomies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from matcher.db import Base
from matcher.models.base import TimestampMixin


class Alliance(TimestampMixin, Base):
    """A craftsman alliance: the member units that agreed to share craftsmen."""

    __tablename__ = "alliances"
    __table_args__ = (
        CheckConstraint("summary_every_days BETWEEN 1 AND 366", name="cadence"),
        CheckConstraint("agreement_months BETWEEN 1 AND 36", name="agreement_months"),
        CheckConstraint("idle_months BETWEEN 1 AND 120", name="idle_months"),
        CheckConstraint(
            "craftsman_consent IN ('not_required', 'required')", name="craftsman_consent"
        ),
        CheckConstraint("offer_expires_days BETWEEN 1 AND 30", name="offer_expires_days"),
        CheckConstraint("retention_months BETWEEN 1 AND 120", name="retention_months"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    summary_every_days: Mapped[int] = mapped_column(Integer, default=30)
    # Default match parameters of its runs, as set (key by key; a run's own params override
    # them); None: none set.
    match_defaults: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # programme.md: the term of a new agreement, and how long without a pair or a summary
    # makes a craftsman or unit idle in the activity assessment.
    agreement_months: Mapped[int] = mapped_column(Integer, default=12, server_default="12")
    idle_months: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    # programme.md, "Two-way choice": whether committing a run offers each pair to its
    # craftsman first, and how many days an offer waits for the answer.
    craftsman_consent: Mapped[str] = mapped_column(
        String(16), default="not_required", server_default="not_required"
    )
    offer_expires_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    # privacy.md: people inactive (and in no mentorship) this long are erased, and sent emails'
    # bodies older than this deleted, by the ``retention`` job.
    retention_months: Mapped[int] = mapped_column(Integer, default=36, server_default="36")
    # privacy.md "Consent": whether people take part across units only with their separate
    # consent (new alliances: yes; those that existed before were migrated with no, until a
    # coordinator turns it on), and the version of the notice they consent to.
    consent_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    consent_notice_version: Mapped[str] = mapped_column(String(32), default="1", server_default="1")

    units: Mapped[list[Unit]] = relationship(back_populates="alliance")


class Unit(TimestampMixin, Base):
    """A member enterprise of an alliance."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("alliance_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(100))
    contact_email: Mapped[str | None] = mapped_column(String(254))

    alliance: Mapped[Alliance] = relationship(back_populates="units")


class Skill(TimestampMixin, Base):
    """A skill tag of an alliance's taxonomy; ``key`` is the normalised name used for lookups.

    Each alliance owns its taxonomy (security.md): the same name in two alliances is two tags,
    and a coordinator's renames and re-parentings change its own alliance's tags only.
    """

    __tablename__ = "skills"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        UniqueConstraint("alliance_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"))
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id"), index=True)

    parent: Mapped[Skill | None] = relationship(remote_side=[id])
    aliases: Mapped[list[SkillAlias]] = relationship(
        back_populates="skill", cascade="all, delete-orphan", order_by="SkillAlias.key"
    )


class SkillAlias(Base):
    """Another name of a skill tag, resolved to the canonical tag on the way in."""

    __tablename__ = "skill_aliases"
    __table_args__ = (UniqueConstraint("alliance_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"))  # its skill's
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))

    skill: Mapped[Skill] = relationship(back_populates="aliases")
