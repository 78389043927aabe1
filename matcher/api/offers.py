"""``/offers``: approved pairs waiting for their craftsman's yes (alliances that require it)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, page_rows
from matcher.api.fields import Id, UtcDateTime, text
from matcher.api.match_runs import PersonRefSchema
from matcher.api.schemas import BaseSchema
from matcher.extensions import db, principal
from matcher.models import OFFER_STATUSES
from matcher.services import access
from matcher.services.offers import (
    accept_offer,
    decline_offer,
    offer_item,
    offer_view,
    offers_query,
)

blp = Blueprint("offers", __name__, description="Offers awaiting the craftsman's consent")
BLUEPRINTS = [blp]


class OfferSchema(ma.Schema):
    """An approved pair offered to its craftsman, and what became of it."""

    id = ma.fields.Integer()
    proposal_id = ma.fields.Integer()
    alliance_id = ma.fields.Integer()
    craftsman = ma.fields.Nested(PersonRefSchema)
    apprentice = ma.fields.Nested(PersonRefSchema)
    status = ma.fields.String(metadata={"enum": list(OFFER_STATUSES)})
    offered_at = ma.fields.AwareDateTime()
    expires_at = ma.fields.AwareDateTime()
    answered_at = ma.fields.AwareDateTime(allow_none=True)
    reason = ma.fields.String(allow_none=True, metadata={"description": "Why it was declined"})
    mentorship_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "The pair's mentorship, once accepted"}
    )


class OfferQueryArgsSchema(PageArgsSchema):
    """Filters of the offer list."""

    class Meta:
        unknown = ma.RAISE

    status = ma.fields.String(validate=ma.validate.OneOf(OFFER_STATUSES))
    alliance_id = Id(strict=False)
    unit_id = Id(strict=False, metadata={"description": "Either person's unit"})
    craftsman_id = Id(strict=False)
    apprentice_id = Id(strict=False)
    match_run_id = Id(strict=False)
    updated_since = UtcDateTime(
        metadata={"description": "Only offers changed at or after this time (ISO 8601 with offset)"}
    )


class DeclineSchema(BaseSchema):
    """Why the craftsman declines (as they said it, e.g. on the phone)."""

    reason = text(max_length=2000, multi_line=True, load_default=None, allow_none=True)


@blp.route("/offers")
class Offers(MethodView):
    @blp.query(OfferQueryArgsSchema)
    @blp.response(200, OfferSchema(many=True))
    @blp.doc(operationId="listOffers")
    def get(self, args: dict[str, Any]) -> Any:
        """List the offers the key can see (hr: those of its own unit's people)."""
        filters = {name: args[name] for name in args if name not in ("page", "page_size")}
        rows, headers = page_rows(db(), offers_query(principal(), **filters), args)
        return [offer_item(row) for row in rows], 200, headers


@blp.route("/offers/<id:offer_id>")
class OfferById(MethodView):
    @blp.response(200, OfferSchema)
    @blp.doc(operationId="getOffer")
    def get(self, offer_id: int) -> Any:
        """Read an offer."""
        return offer_view(db(), principal(), offer_id)


@blp.route("/offers/<id:offer_id>/accept")
class AcceptOffer(MethodView):
    @blp.response(200, OfferSchema)
    @blp.doc(operationId="acceptOffer")
    def post(self, offer_id: int) -> Any:
        """Accept for the craftsman (coordinator): the mentorship starts today. Accepting again
        changes nothing; a declined or expired offer is 409."""
        caller = principal()
        offer = access.offer_in_scope(db(), caller, offer_id)
        access.require(caller, "matching")
        accept_offer(db(), offer=offer, actor=caller.label)
        db().commit()
        return offer_view(db(), caller, offer_id)


@blp.route("/offers/<id:offer_id>/decline")
class DeclineOffer(MethodView):
    @blp.arguments(DeclineSchema)
    @blp.response(200, OfferSchema)
    @blp.doc(operationId="declineOffer")
    def post(self, body: dict[str, Any], offer_id: int) -> Any:
        """Decline for the craftsman (coordinator): the pair is remembered like a rejected one.
        409 once answered."""
        caller = principal()
        offer = access.offer_in_scope(db(), caller, offer_id)
        access.require(caller, "matching")
        decline_offer(db(), offer=offer, reason=body["reason"], actor=caller.label)
        db().commit()
        return offer_view(db(), caller, offer_id)
