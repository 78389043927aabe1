"""``/notification-channels``: chat groups' robots (企业微信 / 钉钉 / 飞书), an alliance's or
a unit's."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, paginate
from matcher.api.fields import Id, StrictBoolean, Text, text
from matcher.api.schemas import BaseSchema, top_level
from matcher.extensions import db, principal, state
from matcher.models import CHANNEL_EVENTS, CHANNEL_KINDS, LOCALES, NotificationChannel
from matcher.services import access
from matcher.services.channels import (
    change_channel,
    channels_query,
    create_channel,
    delete_channel,
)
from matcher.webhook_http import MAX_URL_LENGTH

blp = Blueprint(
    "notification_channels",
    __name__,
    description="Chat-group notifications (WeCom, DingTalk, Feishu)",
)
BLUEPRINTS = [blp]


class NotificationChannelSchema(BaseSchema):
    """A group robot and what it hears; its secret (DingTalk, Feishu signing) is never shown."""

    id = ma.fields.Integer(dump_only=True)
    alliance_id = Id(
        load_default=None,
        metadata={"description": "An admin key names it; others default to their own"},
    )
    unit_id = Id(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A unit's channel (an hr key: its own unit); none: the alliance's"
        },
    )
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(CHANNEL_KINDS))
    url = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={"description": "The robot's webhook address on the platform's host"},
    )
    secret = text(max_length=200, load_only=True, allow_none=True, load_default=None)
    events = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(CHANNEL_EVENTS)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(CHANNEL_EVENTS)),
    )
    locale = ma.fields.String(load_default="zh-CN", validate=ma.validate.OneOf(LOCALES))
    description = text(max_length=500, allow_none=True, load_default=None)
    enabled = StrictBoolean(load_default=True)
    signed = ma.fields.Method("_signed", dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)

    def _signed(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)


class NotificationChannelPatchSchema(NotificationChannelSchema):
    """Fields of a channel to change (load it with ``partial=top_level(...)``)."""

    class Meta:
        exclude = ("alliance_id", "unit_id")


def _guard() -> dict[str, bool]:
    settings = state().settings
    return {
        "allow_private": settings.webhook_allow_private,
        "https_only": settings.env == "production" and not settings.webhook_allow_private,
    }


@blp.route("/notification-channels")
class NotificationChannels(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, NotificationChannelSchema(many=True))
    @blp.doc(operationId="listNotificationChannels")
    def get(self, args: dict[str, Any]) -> Any:
        """List the chat channels in the key's scope."""
        caller = principal()
        access.require(caller, "channels.manage")
        return paginate(db(), channels_query(caller), args)

    @blp.arguments(NotificationChannelSchema)
    @blp.response(201, NotificationChannelSchema)
    @blp.alt_response(404, response="NOT_FOUND")  # an alliance_id or unit_id outside the scope
    @blp.doc(operationId="createNotificationChannel")
    def post(self, body: dict[str, Any]) -> NotificationChannel:
        """Register a group robot for the alliance (coordinator) or a unit (hr)."""
        caller = principal()
        access.require(caller, "channels.manage")
        channel = create_channel(db(), owner=caller, fields=body, **_guard())
        db().commit()
        return channel


@blp.route("/notification-channels/<id:channel_id>")
class NotificationChannelById(MethodView):
    @blp.response(200, NotificationChannelSchema)
    @blp.doc(operationId="getNotificationChannel")
    def get(self, channel_id: int) -> NotificationChannel:
        """Read a chat channel."""
        return access.notification_channel_in_scope(db(), principal(), channel_id)

    @blp.arguments(
        NotificationChannelPatchSchema(partial=top_level(NotificationChannelPatchSchema))
    )
    @blp.response(200, NotificationChannelSchema)
    @blp.doc(operationId="updateNotificationChannel")
    def patch(self, changes: dict[str, Any], channel_id: int) -> NotificationChannel:
        """Change a chat channel."""
        channel = access.notification_channel_in_scope(db(), principal(), channel_id)
        channel = change_channel(db(), channel=channel, changes=changes, **_guard())
        db().commit()
        return channel

    @blp.response(204)
    @blp.doc(operationId="deleteNotificationChannel")
    def delete(self, channel_id: int) -> None:
        """Delete a chat channel and its messages."""
        channel = access.notification_channel_in_scope(db(), principal(), channel_id)
        delete_channel(db(), channel=channel)
        db().commit()
