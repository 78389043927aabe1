"""``/alliances/{id}/activity``: the activity assessment of an alliance's craftsmen and units
over a period (programme.md), as JSON or as an XLSX workbook."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from matcher.api.base import Blueprint
from matcher.extensions import db, principal
from matcher.services import access
from matcher.services.activity import XLSX_MEDIA_TYPE, activity, activity_workbook

blp = Blueprint("activity", __name__, description="Activity assessment of craftsmen and units")
BLUEPRINTS = [blp]


class ActivityQueryArgsSchema(ma.Schema):
    """The period assessed: both days included, at most three years."""

    first = ma.fields.Date(required=True, data_key="from")
    last = ma.fields.Date(required=True, data_key="to")


class ActivityFiguresSchema(ma.Schema):
    """What a craftsman or a unit did in the period."""

    active = ma.fields.Integer(metadata={"description": "Mentorships running in the period"})
    completed = ma.fields.Integer()
    ended = ma.fields.Integer(metadata={"description": "Ended early within the period"})
    summaries_due = ma.fields.Integer()
    summaries_on_time = ma.fields.Integer()
    summaries_late = ma.fields.Integer(metadata={"description": "Due, not handed in on time"})
    hours = ma.fields.Float()
    apprentices_passed = ma.fields.Integer()
    mean_rating = ma.fields.Float(allow_none=True)
    idle = ma.fields.Boolean(metadata={"description": "To review: nothing going on lately"})


class CraftsmanRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    external_id = ma.fields.String()


class UnitRefSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()


class CraftsmanActivitySchema(ActivityFiguresSchema):
    craftsman = ma.fields.Nested(CraftsmanRefSchema)
    unit = ma.fields.Nested(UnitRefSchema)


class UnitActivitySchema(ActivityFiguresSchema):
    unit = ma.fields.Nested(UnitRefSchema)
    craftsmen = ma.fields.Integer()
    idle_craftsmen = ma.fields.Integer()


class ActivitySchema(ma.Schema):
    """The assessment of one period."""

    alliance_id = ma.fields.Integer()
    first = ma.fields.Date(data_key="from")
    last = ma.fields.Date(data_key="to")
    idle_months = ma.fields.Integer()
    craftsmen = ma.fields.List(ma.fields.Nested(CraftsmanActivitySchema))
    units = ma.fields.List(ma.fields.Nested(UnitActivitySchema))


def _report(alliance_id: int, args: dict[str, Any]) -> dict[str, Any]:
    caller = principal()
    alliance = access.alliance_in_scope(db(), caller, alliance_id)
    access.require(caller, "programme.manage")
    report = activity(db(), alliance=alliance, first=args["first"], last=args["last"])
    report["first"], report["last"] = report.pop("from"), report.pop("to")
    return report


@blp.route("/alliances/<id:alliance_id>/activity")
class Activity(MethodView):
    @blp.query(ActivityQueryArgsSchema)
    @blp.response(200, ActivitySchema)
    @blp.doc(operationId="getActivity")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """Per craftsman and per unit over the period: pairs, summaries, hours, passes, mean
        check-in rating, and the idle ones to review (coordinator)."""
        return _report(alliance_id, args)


@blp.route("/alliances/<id:alliance_id>/activity.xlsx")
class ActivityXlsx(MethodView):
    @blp.query(ActivityQueryArgsSchema)
    @blp.response(200, content_type=XLSX_MEDIA_TYPE)
    @blp.doc(operationId="exportActivityXlsx")
    def get(self, args: dict[str, Any], alliance_id: int) -> Response:
        """The same assessment as an XLSX workbook with Chinese headers (Excel, WPS)."""
        report = _report(alliance_id, args)
        report["from"], report["to"] = report["first"], report["last"]
        filename = f"activity-{report['from'].isoformat()}-{report['to'].isoformat()}.xlsx"
        response = Response(activity_workbook(report), mimetype=XLSX_MEDIA_TYPE)
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
