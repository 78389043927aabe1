"""``/alliances``: created by admins, read by their coordinators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from matcher.api.base import Blueprint, paginate
from matcher.api.schemas import (
    AlliancePatchSchema,
    AllianceSchema,
    ConsentNoticeArgsSchema,
    ConsentNoticeSchema,
    ListQueryArgsSchema,
    top_level,
)
from matcher.extensions import db, principal
from matcher.models import Alliance
from matcher.services import access
from matcher.services.alliances import create_alliance, update_alliance
from matcher.services.consent import notice
from matcher.services.review import audit

blp = Blueprint("alliances", __name__, description="Craftsman alliances")
BLUEPRINTS = [blp]
# What an alliance's own coordinator may change.
SETTINGS = {
    "match_defaults",
    "craftsman_consent",
    "offer_expires_days",
    "retention_months",
    "consent_required",
    "consent_notice_version",
}
CONSENT_SETTINGS = ("consent_required", "consent_notice_version")


@blp.route("/alliances")
class Alliances(MethodView):
    @blp.query(ListQueryArgsSchema)
    @blp.response(200, AllianceSchema(many=True))
    @blp.doc(operationId="listAlliances")
    def get(self, args: dict[str, Any]) -> Any:
        """List the alliances the key can see."""
        caller = principal()
        access.require(caller, "alliances.read")
        stmt = access.where_visible(
            select(Alliance).order_by(Alliance.id), caller, alliance_id=Alliance.id
        )
        if "updated_since" in args:
            stmt = stmt.where(Alliance.updated_at >= args["updated_since"])
        return paginate(db(), stmt, args)

    @blp.arguments(AllianceSchema)
    @blp.response(201, AllianceSchema)
    @blp.doc(operationId="createAlliance")
    def post(self, fields: dict[str, Any]) -> Alliance:
        """Create an alliance (admin)."""
        access.require(principal(), "alliances.create")
        alliance = create_alliance(db(), fields=fields)
        db().commit()
        return alliance


@blp.route("/alliances/<id:alliance_id>")
class AllianceById(MethodView):
    @blp.response(200, AllianceSchema)
    @blp.doc(operationId="getAlliance")
    def get(self, alliance_id: int) -> Alliance:
        """Read an alliance."""
        return access.alliance_in_scope(db(), principal(), alliance_id)

    @blp.arguments(AlliancePatchSchema(partial=top_level(AlliancePatchSchema)))
    @blp.response(200, AllianceSchema)
    @blp.doc(operationId="updateAlliance")
    def patch(self, changes: dict[str, Any], alliance_id: int) -> Alliance:
        """Change an alliance (admin); its coordinator may change its match defaults and
        offer settings."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        settings_only = set(changes) <= SETTINGS
        access.require(principal(), "alliances.settings" if settings_only else "alliances.change")
        before = {name: getattr(alliance, name) for name in CONSENT_SETTINGS}
        alliance = update_alliance(db(), alliance=alliance, changes=changes)
        after = {name: getattr(alliance, name) for name in CONSENT_SETTINGS}
        if after != before:  # the legal office asks who changed the consent rules, and when
            audit(
                db(),
                alliance_id=alliance.id,
                actor=principal().label,
                action="alliance.consent_settings",
                object_type="alliance",
                object_id=alliance.id,
                data={"from": before, "to": after},
            )
        db().commit()
        return alliance


@blp.route("/alliances/<id:alliance_id>/consent-notice")
class ConsentNotice(MethodView):
    @blp.query(ConsentNoticeArgsSchema)
    @blp.response(200, ConsentNoticeSchema)
    @blp.doc(operationId="getConsentNotice")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """The consent notice people of the alliance read before consenting (zh-CN or en):
        who receives what and why. Its units' HR systems show it to their people."""
        alliance = access.consent_notice_in_scope(db(), principal(), alliance_id)
        return notice(alliance, args["locale"])
