"""Coordinator review of proposals: decide, swap (guarded by ETag / If-Match), bulk, CSV, commit."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView
from sqlalchemy import select

from matcher.api.base import Blueprint, PageArgsSchema, paginate
from matcher.api.fields import Id, MultiLineText, StrictFloat
from matcher.api.match_runs import MatchRunSchema, ProposalSchema
from matcher.api.schemas import BaseSchema
from matcher.errors import PreconditionRequired
from matcher.extensions import db, principal
from matcher.models import (
    PROPOSAL_APPROVED,
    PROPOSAL_PENDING,
    PROPOSAL_REJECTED,
    AuditEvent,
    Unit,
)
from matcher.services import access
from matcher.services.mentorships import alliance_today
from matcher.services.review import (
    clear_rejection,
    commit_run,
    decide,
    decide_many,
    etag,
    rejected_pairs_query,
    swap,
)
from matcher.services.run_report import proposals_query, with_proposal_details

blp = Blueprint("proposals", __name__, description="Review of proposals and commit of a run")
BLUEPRINTS = [blp]

DECISIONS = [PROPOSAL_APPROVED, PROPOSAL_REJECTED, PROPOSAL_PENDING]
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The proposal's current ETag (from GET); without it 428, if stale 412",
}


class ProposalPatchSchema(BaseSchema):
    """Either a decision (``status`` with an optional ``comment``) or a swap (``craftsman_id``)."""

    status = ma.fields.String(validate=ma.validate.OneOf(DECISIONS))
    comment = MultiLineText(
        allow_none=True, allow_blank=True, validate=ma.validate.Length(max=2000)
    )
    craftsman_id = Id()

    @ma.validates_schema
    def _one_change(self, data: dict[str, Any], **_: Any) -> None:
        if ("status" in data) == ("craftsman_id" in data):
            raise ma.ValidationError(
                "Send either 'status' (and 'comment') or 'craftsman_id'.", "_schema"
            )
        if "craftsman_id" in data and "comment" in data:
            raise ma.ValidationError("A swap takes no comment.", "comment")


class BulkDecisionSchema(BaseSchema):
    """Approve or reject many proposals: by ``ids`` or by ``min_score``."""

    ids = ma.fields.List(
        Id(),
        validate=ma.validate.Length(min=1, max=100_000),
    )
    min_score = StrictFloat(validate=ma.validate.Range(min=0, max=2))
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(DECISIONS))
    comment = MultiLineText(
        allow_none=True,
        allow_blank=True,
        load_default=None,
        validate=ma.validate.Length(max=2000),
    )

    @ma.validates_schema
    def _one_selector(self, data: dict[str, Any], **_: Any) -> None:
        if ("ids" in data) == ("min_score" in data):
            raise ma.ValidationError("Send either 'ids' or 'min_score'.", "_schema")


class BulkDecisionResultSchema(ma.Schema):
    """How many proposals changed."""

    changed = ma.fields.Integer()


class CommitResultSchema(ma.Schema):
    """What committing a run did."""

    run = ma.fields.Nested(MatchRunSchema)
    mentorships_created = ma.fields.Integer()
    offers_created = ma.fields.Integer(
        metadata={"description": "Offers made instead (the alliance requires craftsman consent)"}
    )
    already_committed = ma.fields.Boolean()


class RejectedPairSchema(ma.Schema):
    """A standing rejection: the pair is never proposed again until cleared."""

    id = ma.fields.Integer()
    craftsman_id = ma.fields.Integer()
    apprentice_id = ma.fields.Integer()
    proposal_id = ma.fields.Integer(allow_none=True)
    rejected_at = ma.fields.AwareDateTime()
    rejected_by = ma.fields.String(allow_none=True)


class AuditEventSchema(ma.Schema):
    """One decision of the audit trail."""

    id = ma.fields.Integer()
    actor = ma.fields.String()
    action = ma.fields.String()
    object_type = ma.fields.String()
    object_id = ma.fields.Integer()
    data = ma.fields.Dict()
    created_at = ma.fields.AwareDateTime()


class AuditQueryArgsSchema(PageArgsSchema):
    """Filters of the audit trail."""

    object_type = ma.fields.String(
        validate=ma.validate.OneOf(["proposal", "match_run", "rejected_pair", "reminder", "user"])
    )
    object_id = Id(strict=False)


@blp.route("/proposals/<id:proposal_id>")
class ProposalById(MethodView):
    @blp.response(200, ProposalSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.doc(operationId="getProposal")
    def get(self, proposal_id: int) -> Any:
        """Read a proposal; its ``ETag`` guards the next change."""
        proposal = access.proposal_in_scope(db(), principal(), proposal_id)
        return proposal, 200, {"ETag": etag(proposal)}

    @blp.arguments(ProposalPatchSchema)
    @blp.response(200, ProposalSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    @blp.doc(operationId="reviewProposal", parameters=[IF_MATCH])
    def patch(self, change: dict[str, Any], proposal_id: int) -> Any:
        """Approve, reject or swap a proposal; needs ``If-Match`` with its current ``ETag``."""
        proposal = access.proposal_in_scope(db(), principal(), proposal_id)
        expected = request.headers.get("If-Match")
        if not expected:
            raise PreconditionRequired("Send If-Match with the proposal's ETag (from GET).")
        actor = principal().label
        if "craftsman_id" in change:
            swap(
                db(),
                proposal=proposal,
                craftsman_id=change["craftsman_id"],
                actor=actor,
                expected_etag=expected,
            )
        else:
            decide(
                db(),
                proposal=proposal,
                status=change["status"],
                comment=change.get("comment"),
                actor=actor,
                expected_etag=expected,
            )
        db().commit()
        return proposal, 200, {"ETag": etag(proposal)}


@blp.route("/match-runs/<id:run_id>/proposals/bulk")
class BulkDecision(MethodView):
    @blp.arguments(BulkDecisionSchema)
    @blp.response(200, BulkDecisionResultSchema)
    @blp.doc(operationId="approveProposalsInBulk")
    def post(self, body: dict[str, Any], run_id: int) -> Any:
        """Approve or reject many proposals of a run at once."""
        run = access.match_run_in_scope(db(), principal(), run_id)
        changed = decide_many(
            db(),
            run=run,
            status=body["status"],
            comment=body["comment"],
            actor=principal().label,
            ids=body.get("ids"),
            min_score=body.get("min_score"),
        )
        db().commit()
        return {"changed": changed}


@blp.route("/match-runs/<id:run_id>/proposals.csv")
class ProposalsCsv(MethodView):
    @blp.response(200, content_type="text/csv")
    @blp.doc(operationId="exportProposalsCsv")
    def get(self, run_id: int) -> Response:
        """The run's proposals as CSV (UTF-8 with BOM, so Excel opens it as such)."""
        run = access.match_run_in_scope(db(), principal(), run_id)
        units = dict(
            db()
            .execute(select(Unit.id, Unit.name).where(Unit.alliance_id == run.alliance_id))
            .all()
        )
        stmt, params = proposals_query(run_id=run.id)
        rows = db().execute(with_proposal_details(stmt.subquery("page")), params)
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(
            [
                "proposal_id",
                "status",
                "score",
                "fit",
                "craftsman_id",
                "craftsman",
                "craftsman_unit",
                "apprentice_id",
                "apprentice",
                "apprentice_unit",
                "explanation",
                "comment",
            ]
        )
        for p in rows:
            explanation = "; ".join(
                f"{row['skill']} L{row['wanted_level']} ← {row['craftsman_skill'] or '-'}"
                f" L{row['craftsman_level'] or '-'} ({row['credit']:.2f})"
                for row in json.loads(p.explanation_json)
            )
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        p.id,
                        p.status,
                        f"{p.score:.4f}",
                        f"{p.fit:.4f}",
                        p.craftsman_id,
                        p.craftsman_name,
                        units.get(p.craftsman_unit_id, ""),
                        p.apprentice_id,
                        p.apprentice_name,
                        units.get(p.apprentice_unit_id, ""),
                        explanation,
                        p.comment or "",
                    )
                ]
            )
        filename = f"match-run-{run.id}-proposals.csv"
        return Response(
            out.getvalue().encode("utf-8"),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def _cell(value: object) -> object:
    """Spreadsheets run cells starting with = + - @ as formulas; names must stay text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@blp.route("/match-runs/<id:run_id>/commit")
class CommitRun(MethodView):
    @blp.response(200, CommitResultSchema)
    @blp.doc(operationId="commitMatchRun")
    def post(self, run_id: int) -> Any:
        """Turn the run's approved proposals into mentorships, or offers where the craftsmen's
        consent is required (idempotent; 409 if data moved)."""
        run = access.match_run_in_scope(db(), principal(), run_id)
        today = alliance_today(db(), run.alliance_id)
        result = commit_run(db(), run=run, actor=principal().label, today=today)
        db().commit()
        return result


@blp.route("/alliances/<id:alliance_id>/rejected-pairs")
class RejectedPairs(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, RejectedPairSchema(many=True))
    @blp.doc(operationId="listRejectedPairs")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """The alliance's standing rejections."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        return paginate(db(), rejected_pairs_query(alliance_id=alliance.id), args)


@blp.route("/rejected-pairs/<id:rejected_pair_id>")
class RejectedPairById(MethodView):
    @blp.response(204)
    @blp.doc(operationId="clearRejectedPair")
    def delete(self, rejected_pair_id: int) -> None:
        """Clear a rejection: the pair may be proposed again."""
        rejected = access.standing_rejection_in_scope(db(), principal(), rejected_pair_id)
        alliance_id = rejected.craftsman.unit.alliance_id
        clear_rejection(db(), rejected=rejected, actor=principal().label, alliance_id=alliance_id)
        db().commit()


@blp.route("/alliances/<id:alliance_id>/audit-events")
class AuditEvents(MethodView):
    @blp.query(AuditQueryArgsSchema)
    @blp.response(200, AuditEventSchema(many=True))
    @blp.doc(operationId="listAuditEvents")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """The alliance's audit trail, newest first: who decided what, and when."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.alliance_id == alliance.id)
            .order_by(AuditEvent.id.desc())
        )
        for name in ("object_type", "object_id"):
            if name in args:
                stmt = stmt.where(getattr(AuditEvent, name) == args[name])
        return paginate(db(), stmt, args)
