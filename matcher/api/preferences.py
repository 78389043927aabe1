"""``/apprentices/{id}/preferences``: the craftsmen an apprentice ranks and the ones to avoid
(programme.md, "Two-way choice"); set by the apprentice's unit's HR or a coordinator."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint
from matcher.api.fields import Id
from matcher.api.schemas import BaseSchema
from matcher.errors import not_found
from matcher.extensions import db, principal
from matcher.models import Apprentice
from matcher.services import access
from matcher.services.preferences import (
    MAX_AVOIDED,
    MAX_RANKED,
    Preferences,
    preferences_of,
    set_preferences,
)

blp = Blueprint("preferences", __name__, description="Apprentices' preferred craftsmen")
BLUEPRINTS = [blp]


class PreferencesSchema(BaseSchema):
    """Up to 3 ranked craftsmen (best first) and up to 20 to avoid, by id: each an active
    craftsman of another unit of the apprentice's alliance."""

    ranked = ma.fields.List(Id(), required=True, validate=ma.validate.Length(max=MAX_RANKED))
    avoid = ma.fields.List(Id(), required=True, validate=ma.validate.Length(max=MAX_AVOIDED))
    updated_at = ma.fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "null: never set"}
    )


def _apprentice_in_scope(apprentice_id: int) -> Apprentice:
    """The apprentice, if the caller's key sees its unit (else 404, as if it did not exist)."""
    apprentice = db().get(Apprentice, apprentice_id)
    if apprentice is None or not access.can_see_unit(principal(), apprentice.unit):
        raise not_found("apprentice", apprentice_id)
    return apprentice


def _item(preferences: Preferences) -> dict[str, Any]:
    return {
        "ranked": preferences.ranked,
        "avoid": preferences.avoid,
        "updated_at": preferences.updated_at,
    }


@blp.route("/apprentices/<id:apprentice_id>/preferences")
class ApprenticePreferences(MethodView):
    @blp.response(200, PreferencesSchema)
    @blp.doc(operationId="getApprenticePreferences")
    def get(self, apprentice_id: int) -> Any:
        """Read an apprentice's ranked and avoided craftsmen."""
        apprentice = _apprentice_in_scope(apprentice_id)
        return _item(preferences_of(db(), apprentice))

    @blp.arguments(PreferencesSchema)
    @blp.response(200, PreferencesSchema)
    @blp.doc(operationId="upsertApprenticePreferences")
    def put(self, body: dict[str, Any], apprentice_id: int) -> Any:
        """Replace an apprentice's ranked and avoided craftsmen (hr of its unit, coordinator)."""
        apprentice = _apprentice_in_scope(apprentice_id)
        access.require_choice_writer(principal(), apprentice.unit)
        chosen = set_preferences(
            db(),
            apprentice=apprentice,
            ranked=body["ranked"],
            avoid=body["avoid"],
            actor=principal().label,
        )
        db().commit()
        return _item(chosen)
