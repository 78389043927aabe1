"""Who may call: API keys and their rate windows, web users and sessions, sign-in throttles,
and the audit trail of who decided what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import one_of

ROLES = ("admin", "coordinator", "hr")


class ApiKey(Base):
    """A bearer key; only its SHA-256 is stored, the key itself is printed once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'hr')", name="role"),
        CheckConstraint(
            "(role = 'admin' AND alliance_id IS NULL AND unit_id IS NULL)"
            " OR (role = 'coordinator' AND alliance_id IS NOT NULL AND unit_id IS NULL)"
            " OR (role = 'hr' AND alliance_id IS NOT NULL AND unit_id IS NOT NULL)",
            name="scope",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell keys apart
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateLimitWindow(Base):
    """How many requests an API key made in one fixed window (the per-key rate limit).

    One row per key and window, counted up by a single upsert per request; rows of past windows
    are deleted by the key's first request of a new window.
    """

    __tablename__ = "rate_limit_windows"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer)


class User(Base):
    """A coordinator who signs in to the web pages (created with ``matcher users create``)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, this table its hash.

    Signing out deletes the row, a password change deletes all of the user's rows, and a row past
    ``expires_at`` (12 hours after sign-in) opens nothing: a copied cookie is then useless.
    """

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the id
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


SIGN_IN_SCOPES = ("account", "address")


class SignInThrottle(Base):
    """Recent failed sign-ins of one account (the email as typed, known or not) or one client
    address, and until when further attempts wait. Counted by one upsert per attempt, so every
    worker and host shares the count."""

    __tablename__ = "sign_in_throttles"
    __table_args__ = (CheckConstraint(one_of("scope", SIGN_IN_SCOPES), name="scope"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who decided what, and when: every review decision and commit is kept here."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
