"""``/craftsmen/{id}/availability``: whether a craftsman takes apprentices, and until when they
are paused (programme.md, "Two-way choice"); set by the craftsman's unit's HR or a
coordinator."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint
from matcher.api.fields import StrictBoolean
from matcher.api.schemas import BaseSchema
from matcher.errors import not_found
from matcher.extensions import db, principal
from matcher.models import Craftsman
from matcher.services import access
from matcher.services.preferences import Availability, availability_of, set_availability

blp = Blueprint("availability", __name__, description="Craftsmen's availability")
BLUEPRINTS = [blp]


class AvailabilitySchema(BaseSchema):
    """A craftsman not accepting, or paused until a date on or after a run's date, takes no
    part in the run."""

    accepting = StrictBoolean(required=True)
    paused_until = ma.fields.Date(load_default=None, allow_none=True)
    updated_at = ma.fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "null: never set"}
    )


def _craftsman_in_scope(craftsman_id: int) -> Craftsman:
    """The craftsman, if the caller's key sees its unit (else 404, as if it did not exist)."""
    craftsman = db().get(Craftsman, craftsman_id)
    if craftsman is None or not access.can_see_unit(principal(), craftsman.unit):
        raise not_found("craftsman", craftsman_id)
    return craftsman


def _item(availability: Availability) -> dict[str, Any]:
    return {
        "accepting": availability.accepting,
        "paused_until": availability.paused_until,
        "updated_at": availability.updated_at,
    }


@blp.route("/craftsmen/<id:craftsman_id>/availability")
class CraftsmanAvailability(MethodView):
    @blp.response(200, AvailabilitySchema)
    @blp.doc(operationId="getCraftsmanAvailability")
    def get(self, craftsman_id: int) -> Any:
        """Read whether a craftsman accepts apprentices, and until when they are paused."""
        return _item(availability_of(_craftsman_in_scope(craftsman_id)))

    @blp.arguments(AvailabilitySchema)
    @blp.response(200, AvailabilitySchema)
    @blp.doc(operationId="upsertCraftsmanAvailability")
    def put(self, body: dict[str, Any], craftsman_id: int) -> Any:
        """Set whether a craftsman accepts apprentices and a pause (hr of its unit, coordinator)."""
        craftsman = _craftsman_in_scope(craftsman_id)
        access.require_choice_writer(principal(), craftsman.unit)
        available = set_availability(
            db(),
            craftsman=craftsman,
            accepting=body["accepting"],
            paused_until=body["paused_until"],
            actor=principal().label,
        )
        db().commit()
        return _item(available)
