"""Outbound webhooks (webhooks.md): endpoints, the events written with each change, and their
deliveries (the outbox the ``webhooks`` job sends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime, utcnow
from matcher.models.base import one_of

WEBHOOK_EVENT_TYPES = (
    "mentorship.created",
    "mentorship.ended",
    "mentorship.completed",
    "summary.submitted",
    "summary.overdue",
    "match_run.proposed",
    "match_run.committed",
    "offer.created",
    "offer.answered",
    "person.deactivated",
)
ALL_EVENTS = "*"
DELIVERY_STATUSES = ("pending", "delivered", "failed")
DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_FAILED = DELIVERY_STATUSES


class WebhookEndpoint(Base):
    """A receiver's URL, the events it wants and its signing secret.

    Its scope is its owner's: an admin's (no alliance) hears everything, a coordinator's its
    alliance, an hr key's its own unit's people. The secret is kept as given out (it signs every
    request); after a rotation the previous one signs too until ``previous_secret_until``.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("unit_id IS NULL OR alliance_id IS NOT NULL", name="scope"),
        Index("ix_webhook_endpoints_alliance_id_enabled", "alliance_id", "enabled"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # Since when every delivery failed (NULL after a success): 3 days of it disables the endpoint.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEvent(Base):
    """One change, written in the transaction that made it (the outbox row); its body never
    changes after.

    ``message_id`` is the ``webhook-id`` receivers deduplicate by (the same on every retry).
    ``dedupe_key`` makes events found by a scan (``summary.overdue``) once-only. Who hears of it
    is decided with the change (``endpoint_ids``, ``channel_ids``); the ``webhooks`` job turns
    that into delivery rows (``fanned_out``), so the change's transaction writes one row only.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    unit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # the units it is about
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    endpoint_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: pending until a 2xx, retried with back-off until
    ``give_up_at``, then failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_deliveries_sendable", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DELIVERY_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


CHANNEL_KINDS = ("wecom", "dingtalk", "feishu")
# What a chat group may hear of: the reminder cycle's notices, and the webhook events.
CHANNEL_NOTICES = ("digest", "escalation", "overdue")
CHANNEL_EVENTS = (*CHANNEL_NOTICES, *WEBHOOK_EVENT_TYPES)
CHANNEL_MESSAGE_STATUSES = ("pending", "sent", "failed")
CHANNEL_PENDING, CHANNEL_SENT, CHANNEL_FAILED = CHANNEL_MESSAGE_STATUSES


class NotificationChannel(Base):
    """A chat group's robot (企业微信 / 钉钉 / 飞书) of an alliance or of one of its units."""

    __tablename__ = "notification_channels"
    __table_args__ = (
        CheckConstraint(one_of("kind", CHANNEL_KINDS), name="kind"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(200))  # the platform's signing secret
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    description: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChannelMessage(Base):
    """One short message for one chat group: queued at most once (``dedupe_key``), rendered in
    the group's language when sent, retried like a webhook delivery."""

    __tablename__ = "channel_messages"
    __table_args__ = (
        CheckConstraint(one_of("status", CHANNEL_MESSAGE_STATUSES), name="status"),
        Index("ix_channel_messages_sendable", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    topic: Mapped[str] = mapped_column(String(40))  # a CHANNEL_EVENTS name
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"))
    mentorship_id: Mapped[int | None] = mapped_column(ForeignKey("mentorships.id"))
    period_index: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CHANNEL_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
