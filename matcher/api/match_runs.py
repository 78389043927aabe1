"""Match runs: start one over an alliance, read its proposals and its unmatched apprentices."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from sqlalchemy import select

from matcher.algorithms import MatchParams
from matcher.api.base import Blueprint, PageArgsSchema, json_list, page_rows, paginate
from matcher.api.fields import Id
from matcher.api.schemas import BaseSchema, MatchParamsSchema
from matcher.errors import not_found
from matcher.extensions import db, principal, state
from matcher.models import (
    PROPOSAL_STATUSES,
    RUN_QUEUED,
    RUN_STATUSES,
    UNMATCHED_REASONS,
    Apprentice,
    Craftsman,
    MatchRun,
)
from matcher.services import access
from matcher.services.matching import (
    pair_score,
    start_match_run,
    with_alliance_defaults,
)
from matcher.services.run_report import (
    proposal_items,
    proposals_query,
    unmatched_items,
    unmatched_query,
    with_proposal_details,
)

blp = Blueprint("match_runs", __name__, description="Match runs, proposals and the unmatched")
BLUEPRINTS = [blp]


class MatchRunCreateSchema(BaseSchema):
    """Body of ``POST /alliances/{id}/match-runs``."""

    params = ma.fields.Nested(MatchParamsSchema, load_default=MatchParams)

    @ma.post_load(pass_original=True)
    def name_given(self, data: dict[str, Any], original: Any, **_kwargs: Any) -> dict[str, Any]:
        """Which parameters the request gave: they override the alliance's match defaults."""
        given = original.get("params") if isinstance(original, dict) else None
        data["given"] = sorted(given) if isinstance(given, dict) else []
        return data


class MatchRunSchema(ma.Schema):
    """A match run and where it stands."""

    id = ma.fields.Integer()
    alliance_id = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": list(RUN_STATUSES)})
    params = ma.fields.Dict()
    objective = ma.fields.Float(allow_none=True)
    stats = ma.fields.Dict()
    progress = ma.fields.Dict()
    error = ma.fields.String(allow_none=True)
    created_by = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class PersonRefSchema(ma.Schema):
    """Another person as a proposal or a mentorship shows them."""

    id = ma.fields.Integer()
    name = ma.fields.String(
        allow_none=True,
        metadata={"description": "null: withheld from another unit (no cross-unit consent)"},
    )
    unit_id = ma.fields.Integer()


class ExplanationSchema(ma.Schema):
    """How one wanted skill was credited."""

    skill = ma.fields.String()
    wanted_level = ma.fields.Integer()
    weight = ma.fields.Float()
    craftsman_skill = ma.fields.String(allow_none=True)
    craftsman_level = ma.fields.Integer(allow_none=True)
    credit = ma.fields.Float()


class ProposalSchema(ma.Schema):
    """A proposed pair with its score and explanation."""

    id = ma.fields.Integer()
    match_run_id = ma.fields.Integer()
    craftsman = ma.fields.Nested(PersonRefSchema)
    apprentice = ma.fields.Nested(PersonRefSchema)
    score = ma.fields.Float()
    fit = ma.fields.Float()
    explanation = ma.fields.List(ma.fields.Nested(ExplanationSchema))
    preference_rank = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Where the apprentice ranked the craftsman (1-3); null: not"},
    )
    status = ma.fields.String(metadata={"enum": list(PROPOSAL_STATUSES)})
    comment = ma.fields.String(allow_none=True)


class UnmatchedSchema(ma.Schema):
    """An apprentice the run could not place, and why."""

    apprentice = ma.fields.Nested(PersonRefSchema)
    reason_code = ma.fields.String(metadata={"enum": list(UNMATCHED_REASONS)})
    detail = ma.fields.Dict()


class RunListArgsSchema(PageArgsSchema):
    """Filters of the run list."""

    status = ma.fields.String(validate=ma.validate.OneOf(RUN_STATUSES))


class ProposalListArgsSchema(PageArgsSchema):
    """Filters of the proposal list."""

    status = ma.fields.String(validate=ma.validate.OneOf(PROPOSAL_STATUSES))


class PairScoreArgsSchema(ma.Schema):
    """The pair to score."""

    craftsman_id = Id(strict=False, required=True)
    apprentice_id = Id(strict=False, required=True)


class PairScoreSchema(ma.Schema):
    """What the matcher would say of one pair."""

    craftsman = ma.fields.Nested(PersonRefSchema)
    apprentice = ma.fields.Nested(PersonRefSchema)
    eligible = ma.fields.Boolean()
    forbidden_by = ma.fields.String(allow_none=True)
    detail = ma.fields.String(allow_none=True)
    score = ma.fields.Float()
    fit = ma.fields.Float()
    explanation = ma.fields.List(ma.fields.Nested(ExplanationSchema))
    preference_rank = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Where the apprentice ranked the craftsman (1-3); null: not"},
    )


@blp.route("/alliances/<id:alliance_id>/match-runs")
class AllianceMatchRuns(MethodView):
    @blp.query(RunListArgsSchema)
    @blp.response(200, MatchRunSchema(many=True))
    @blp.doc(operationId="listMatchRuns")
    def get(self, args: dict[str, Any], alliance_id: int) -> Any:
        """List an alliance's match runs, newest first."""
        alliance = access.alliance_in_scope(db(), principal(), alliance_id)
        stmt = (
            select(MatchRun).where(MatchRun.alliance_id == alliance.id).order_by(MatchRun.id.desc())
        )
        if "status" in args:
            stmt = stmt.where(MatchRun.status == args["status"])
        return paginate(db(), stmt, args)

    @blp.arguments(MatchRunCreateSchema)
    @blp.response(201, MatchRunSchema, description="Solved within the request")
    @blp.alt_response(
        202,
        schema=MatchRunSchema,
        description="Queued; poll the Location",
        headers={"Location": {"schema": {"type": "string"}, "description": "The run's URL"}},
    )
    @blp.doc(operationId="startMatchRun")
    def post(self, body: dict[str, Any], alliance_id: int) -> Any:
        """Start a match run: solved at once when small, else queued for the scheduler.

        One run at a time per alliance: while another of its runs is queued or running, 409.
        """
        caller = principal()
        alliance = access.alliance_in_scope(db(), caller, alliance_id)
        run = start_match_run(
            db(),
            alliance=alliance,
            params=with_alliance_defaults(alliance, params=body["params"], given=body["given"]),
            created_by=caller.label,
            inline_max_cells=state().settings.match_inline_max_cells,
        )
        db().commit()
        if run.status == RUN_QUEUED:
            return run, 202, {"Location": url_for("match_runs.MatchRunById", run_id=run.id)}
        return run, 201


@blp.route("/match-runs/<id:run_id>")
class MatchRunById(MethodView):
    @blp.response(200, MatchRunSchema)
    @blp.doc(operationId="getMatchRun")
    def get(self, run_id: int) -> MatchRun:
        """Read a run: status, objective, stats and progress."""
        return access.match_run_in_scope(db(), principal(), run_id)


@blp.route("/match-runs/<id:run_id>/proposals")
class RunProposals(MethodView):
    @blp.query(ProposalListArgsSchema)
    @blp.response(200, ProposalSchema(many=True))
    @blp.doc(operationId="listProposals")
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """List a run's proposals, best score first."""
        access.require(principal(), "matching")
        stmt, params = proposals_query(run_id=run_id, status=args.get("status"))
        rows, headers = page_rows(db(), stmt, args, params, widen=with_proposal_details)
        # The scope is asked of the page's own rows (one statement less); a page without rows
        # asks the run. Either way nothing is answered before the policy has spoken.
        access.require_match_run_visible(
            db(), principal(), run_id, rows[0].run_alliance_id if rows else None
        )
        return json_list(proposal_items(rows), headers)


@blp.route("/match-runs/<id:run_id>/unmatched")
class RunUnmatched(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, UnmatchedSchema(many=True))
    @blp.doc(operationId="listUnmatchedApprentices")
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """List the apprentices a run left unmatched, with the reason."""
        run = access.match_run_in_scope(db(), principal(), run_id)
        rows, headers = page_rows(db(), unmatched_query(run_id=run.id), args)
        return json_list(unmatched_items(rows), headers)


@blp.route("/pair-score")
class PairScore(MethodView):
    @blp.query(PairScoreArgsSchema)
    @blp.response(200, PairScoreSchema)
    @blp.alt_response(404, response="NOT_FOUND")  # no such person in the key's scope
    @blp.doc(operationId="getPairScore")
    def get(self, args: dict[str, Any]) -> Any:
        """The score and explanation the matcher would give a pair, or what forbids it."""
        caller = principal()
        access.require(caller, "matching")
        craftsman = db().get(Craftsman, args["craftsman_id"])
        apprentice = db().get(Apprentice, args["apprentice_id"])
        if craftsman is None or not access.can_see_unit(caller, craftsman.unit):
            raise not_found("craftsman", args["craftsman_id"])
        if apprentice is None or not access.can_see_unit(caller, apprentice.unit):
            raise not_found("apprentice", args["apprentice_id"])
        return pair_score(db(), craftsman=craftsman, apprentice=apprentice)
