"""``/alliances/{id}/units`` and ``/units/{id}``: member units, managed by coordinators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from matcher.api.base import Blueprint, paginate
from matcher.api.schemas import ListQueryArgsSchema, UnitPatchSchema, UnitSchema, top_level
from matcher.extensions import db, principal
from matcher.models import Unit
from matcher.services import access
from matcher.services.alliances import create_unit, update_unit

blp = Blueprint("units", __name__, description="Member units of an alliance")
BLUEPRINTS = [blp]


@blp.route("/alliances/<id:alliance_id>/units")
class AllianceUnits(MethodView):
    @blp.query(ListQueryArgsSchema)
    @blp.response(200, UnitSchema(many=True))
    @blp.doc(operationId="listUnits")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """List an alliance's units."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        stmt = select(Unit).where(Unit.alliance_id == alliance.id).order_by(Unit.id)
        if "updated_since" in args:
            stmt = stmt.where(Unit.updated_at >= args["updated_since"])
        return paginate(db(), stmt, args)

    @blp.arguments(UnitSchema)
    @blp.response(201, UnitSchema)
    @blp.doc(operationId="createUnit")
    def post(self, fields: dict[str, Any], alliance_id: int) -> Unit:
        """Add a member unit to an alliance."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        unit = create_unit(db(), alliance=alliance, fields=fields)
        db().commit()
        return unit


@blp.route("/units/<id:unit_id>")
class UnitById(MethodView):
    @blp.response(200, UnitSchema)
    @blp.doc(operationId="getUnit")
    def get(self, unit_id: int) -> Unit:
        """Read a unit."""
        return access.unit_in_scope(db(), principal(), unit_id)

    @blp.arguments(UnitPatchSchema(partial=top_level(UnitPatchSchema)))
    @blp.response(200, UnitSchema)
    @blp.doc(operationId="updateUnit")
    def patch(self, changes: dict[str, Any], unit_id: int) -> Unit:
        """Change a unit (its alliance's coordinator)."""
        unit = access.unit_in_scope(db(), principal(), unit_id)
        access.require(principal(), "units.change")
        unit = update_unit(db(), unit=unit, changes=changes)
        db().commit()
        return unit
