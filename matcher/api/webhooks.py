"""``/webhooks``: receivers of signed events (webhooks.md), each in its owner's scope."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, json_list, page_rows, paginate
from matcher.api.fields import StrictBoolean, Text, text
from matcher.api.schemas import BaseSchema, top_level
from matcher.db import utcnow
from matcher.extensions import db, principal, state
from matcher.models import (
    ALL_EVENTS,
    DELIVERY_STATUSES,
    WEBHOOK_EVENT_TYPES,
    WebhookDelivery,
    WebhookEndpoint,
)
from matcher.services import access
from matcher.services.webhooks import (
    change_endpoint,
    create_endpoint,
    delete_endpoint,
    deliveries_query,
    endpoints_query,
    retry_delivery,
    rotate_secret,
)
from matcher.webhook_http import MAX_URL_LENGTH

blp = Blueprint("webhooks", __name__, description="Outbound webhooks (Standard Webhooks)")
BLUEPRINTS = [blp]

EVENT_NAMES = [ALL_EVENTS, *WEBHOOK_EVENT_TYPES]


class WebhookSchema(BaseSchema):
    """A receiver: where events go and which; its scope is its creator's key."""

    id = ma.fields.Integer(dump_only=True)
    url = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={"description": "https:// in production; never a private address"},
    )
    events = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(EVENT_NAMES)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(EVENT_NAMES)),
        metadata={"description": 'Event types, or ["*"] for all of them'},
    )
    description = text(max_length=500, allow_none=True, load_default=None)
    enabled = StrictBoolean(
        load_default=True,
        metadata={"description": "False stops deliveries (set by the service on 410 Gone)"},
    )
    disabled_reason = ma.fields.String(dump_only=True, allow_none=True)
    alliance_id = ma.fields.Integer(dump_only=True, allow_none=True)
    unit_id = ma.fields.Integer(dump_only=True, allow_none=True)
    previous_secret_until = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class WebhookPatchSchema(WebhookSchema):
    """Fields of a webhook to change (load it with ``partial=top_level(...)``)."""


class WebhookCreatedSchema(WebhookSchema):
    """A new webhook with its signing secret: shown this once."""

    secret = ma.fields.String(dump_only=True, metadata={"description": "whsec_..., shown once"})


class WebhookSecretSchema(ma.Schema):
    """A new signing secret; the previous one signs too until ``previous_secret_until``."""

    id = ma.fields.Integer()
    secret = ma.fields.String()
    previous_secret_until = ma.fields.AwareDateTime()


class DeliverySchema(ma.Schema):
    """One event's delivery to this webhook."""

    id = ma.fields.Integer()
    event_type = ma.fields.String(metadata={"enum": list(WEBHOOK_EVENT_TYPES)})
    webhook_id = ma.fields.String(metadata={"description": "The message id (webhook-id header)"})
    status = ma.fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = ma.fields.Integer()
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    next_attempt_at = ma.fields.AwareDateTime()
    delivered_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class DeliveryQueryArgsSchema(PageArgsSchema):
    """Filters of a webhook's deliveries."""

    status = ma.fields.String(validate=ma.validate.OneOf(DELIVERY_STATUSES))


def _guard() -> dict[str, bool]:
    settings = state().settings
    return {
        "allow_private": settings.webhook_allow_private,
        "https_only": settings.env == "production" and not settings.webhook_allow_private,
    }


@blp.route("/webhooks")
class Webhooks(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, WebhookSchema(many=True))
    @blp.doc(operationId="listWebhooks")
    def get(self, args: dict[str, Any]) -> Any:
        """List the webhooks in the key's scope."""
        caller = principal()
        access.require(caller, "webhooks.manage")
        return paginate(db(), endpoints_query(caller), args)

    @blp.arguments(WebhookSchema)
    @blp.response(201, WebhookCreatedSchema)
    @blp.doc(operationId="createWebhook")
    def post(self, body: dict[str, Any]) -> Any:
        """Register a receiver for the key's scope; the answer holds its secret, shown once."""
        caller = principal()
        access.require(caller, "webhooks.manage")
        endpoint = create_endpoint(
            db(),
            owner=caller,
            url=body["url"],
            events=body["events"],
            description=body.get("description"),
            **_guard(),
        )
        if not body.get("enabled", True):
            change_endpoint(db(), endpoint=endpoint, changes={"enabled": False}, **_guard())
        db().commit()
        return endpoint


@blp.route("/webhooks/<id:webhook_id>")
class WebhookById(MethodView):
    @blp.response(200, WebhookSchema)
    @blp.doc(operationId="getWebhook")
    def get(self, webhook_id: int) -> WebhookEndpoint:
        """Read a webhook (without its secret)."""
        return access.webhook_endpoint_in_scope(db(), principal(), webhook_id)

    @blp.arguments(WebhookPatchSchema(partial=top_level(WebhookPatchSchema)))
    @blp.response(200, WebhookSchema)
    @blp.doc(operationId="updateWebhook")
    def patch(self, changes: dict[str, Any], webhook_id: int) -> WebhookEndpoint:
        """Change a webhook's URL, events, description, or enable it again."""
        endpoint = access.webhook_endpoint_in_scope(db(), principal(), webhook_id)
        endpoint = change_endpoint(db(), endpoint=endpoint, changes=changes, **_guard())
        db().commit()
        return endpoint

    @blp.response(204)
    @blp.doc(operationId="deleteWebhook")
    def delete(self, webhook_id: int) -> None:
        """Delete a webhook and its deliveries."""
        endpoint = access.webhook_endpoint_in_scope(db(), principal(), webhook_id)
        delete_endpoint(db(), endpoint=endpoint)
        db().commit()


@blp.route("/webhooks/<id:webhook_id>/rotate-secret")
class RotateSecret(MethodView):
    @blp.response(200, WebhookSecretSchema)
    @blp.doc(operationId="rotateWebhookSecret")
    def post(self, webhook_id: int) -> dict[str, Any]:
        """A new secret; for 24 hours both sign (two signatures in webhook-signature)."""
        endpoint = access.webhook_endpoint_in_scope(db(), principal(), webhook_id)
        secret = rotate_secret(db(), endpoint=endpoint, now=utcnow())
        db().commit()
        return {
            "id": endpoint.id,
            "secret": secret,
            "previous_secret_until": endpoint.previous_secret_until,
        }


@blp.route("/webhooks/<id:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.query(DeliveryQueryArgsSchema)
    @blp.response(200, DeliverySchema(many=True))
    @blp.doc(operationId="listWebhookDeliveries")
    def get(self, args: dict[str, Any], webhook_id: int) -> Any:
        """The webhook's deliveries, newest first."""
        endpoint = access.webhook_endpoint_in_scope(db(), principal(), webhook_id)
        rows, headers = page_rows(
            db(), deliveries_query(endpoint.id, status=args.get("status")), args
        )
        return json_list([_delivery_item(row._mapping) for row in rows], headers)


def _delivery_item(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in DeliverySchema().fields}


@blp.route("/webhooks/<id:webhook_id>/deliveries/<id:delivery_id>/retry")
class RetryDelivery(MethodView):
    @blp.response(202, DeliverySchema)
    @blp.doc(operationId="retryWebhookDelivery")
    def post(self, webhook_id: int, delivery_id: int) -> dict[str, Any]:
        """Send a delivery again now (the ``webhooks`` job picks it up within seconds)."""
        endpoint, delivery = access.webhook_delivery_in_scope(
            db(), principal(), webhook_id, delivery_id
        )
        retry_delivery(db(), endpoint=endpoint, delivery=delivery, now=utcnow())
        db().commit()
        row = db().execute(deliveries_query(endpoint.id).where(WebhookDelivery.id == delivery_id))
        return _delivery_item(row.one()._mapping)
