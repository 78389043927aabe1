"""``/mentorships``: committed pairs, their summary cycle, and the training summaries handed in."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, json_list, page_rows, paginate
from matcher.api.fields import Id, StrictBoolean, StrictFloat, StrictInteger, text
from matcher.api.match_runs import PersonRefSchema
from matcher.api.schemas import BaseSchema, top_level
from matcher.extensions import db, principal, state
from matcher.models import AUTHORS, END_REASONS, MENTORSHIP_STATUSES, Alliance
from matcher.services import access
from matcher.services.access import Principal
from matcher.services.mentorships import (
    SummaryInput,
    add_summary,
    alliance_today,
    local_today,
    mentorship_item,
    mentorship_items,
    mentorship_list,
    summaries_query,
)
from matcher.services.programme import change_mentorship, end_pair, renew, validate_goal_levels

blp = Blueprint("mentorships", __name__, description="Mentorships and training summaries")
BLUEPRINTS = [blp]


class GoalSchema(BaseSchema):
    """A skill the pair works towards, with the level aimed at (1–5)."""

    skill = text(required=True, max_length=100)
    level = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=5))


class MentorshipSchema(ma.Schema):
    """A committed pair and where its summary cycle stands."""

    id = ma.fields.Integer()
    alliance_id = ma.fields.Integer()
    craftsman = ma.fields.Nested(PersonRefSchema)
    apprentice = ma.fields.Nested(PersonRefSchema)
    started_on = ma.fields.Date()
    summary_every_days = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": list(MENTORSHIP_STATUSES)})
    ended_on = ma.fields.Date(allow_none=True)
    next_due_on = ma.fields.Date(
        allow_none=True, metadata={"description": "Due date of the oldest open period"}
    )
    periods_filled = ma.fields.Integer()
    overdue_periods = ma.fields.Integer(
        metadata={"description": "Open periods whose due date has passed (alliance's local date)"}
    )
    last_summary_at = ma.fields.AwareDateTime(allow_none=True)
    proposal_id = ma.fields.Integer(allow_none=True)
    ends_on = ma.fields.Date(metadata={"description": "End of the agreed term (师徒协议)"})
    goals = ma.fields.List(ma.fields.Nested(GoalSchema))
    flagged = ma.fields.Boolean(
        metadata={"description": "A check-in said 'not a good fit'; until ended or cleared"}
    )
    end_reason = ma.fields.String(allow_none=True, metadata={"enum": list(END_REASONS)})
    end_comment = ma.fields.String(allow_none=True)
    consent_withdrawn_at = ma.fields.AwareDateTime(
        allow_none=True,
        metadata={
            "description": "When one of the pair withdrew cross-unit consent: the coordinators "
            "are asked to end the pair"
        },
    )


class MentorshipPatchSchema(BaseSchema):
    """What a coordinator changes on a mentorship: its goals; ``flagged: false`` clears the flag."""

    goals = ma.fields.List(ma.fields.Nested(GoalSchema), validate=ma.validate.Length(max=50))
    flagged = StrictBoolean(
        validate=ma.validate.Equal(False, error="Only false: a check-in sets the flag."),
    )


class RenewSchema(BaseSchema):
    """How long to extend the agreement."""

    months = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=12))


class EndSchema(BaseSchema):
    """Why the pair ends early."""

    reason_code = ma.fields.String(required=True, validate=ma.validate.OneOf(END_REASONS))
    comment = text(max_length=2000, multi_line=True, load_default=None, allow_none=True)


class MentorshipQueryArgsSchema(PageArgsSchema):
    """Filters of the mentorship list."""

    status = ma.fields.String(validate=ma.validate.OneOf(MENTORSHIP_STATUSES))
    unit_id = Id(strict=False)
    alliance_id = Id(strict=False)
    overdue = ma.fields.Boolean(metadata={"description": "Only active pairs with a period overdue"})


class SummaryInputSchema(BaseSchema):
    """A training summary handed in over the API."""

    author = ma.fields.String(required=True, validate=ma.validate.OneOf(AUTHORS))
    content = text(min_length=1, max_length=20_000, multi_line=True, required=True)
    hours = StrictFloat(
        required=True,
        validate=ma.validate.Range(min=0, max=1000, min_inclusive=False),
        metadata={"description": "Training hours in the period"},
    )
    skills = ma.fields.List(
        text(max_length=100),
        load_default=list,
        validate=ma.validate.Length(max=50),
        metadata={"description": "Skills practised; normalised like skill tags"},
    )


class SummarySchema(ma.Schema):
    """A training summary as stored."""

    id = ma.fields.Integer()
    mentorship_id = ma.fields.Integer()
    period_index = ma.fields.Integer()
    submitted_at = ma.fields.AwareDateTime()
    author = ma.fields.String(metadata={"enum": list(AUTHORS)})
    content = ma.fields.String()
    hours = ma.fields.Float()
    skills = ma.fields.List(ma.fields.String())


def _timezone(caller: Principal) -> str:
    """The caller's alliance's timezone (an admin key's: the service's): what is overdue is
    decided by its local date."""
    alliance = db().get(Alliance, caller.alliance_id) if caller.alliance_id else None
    return alliance.timezone if alliance else state().settings.timezone


@blp.route("/mentorships")
class Mentorships(MethodView):
    @blp.query(MentorshipQueryArgsSchema)
    @blp.response(200, MentorshipSchema(many=True))
    @blp.doc(operationId="listMentorships")
    def get(self, args: dict[str, Any]) -> Any:
        """List the mentorships the key can see (hr: those of its own unit's people)."""
        caller = principal()
        overdue_on = local_today(_timezone(caller)) if args.get("overdue") else None
        stmt, params = mentorship_list(
            caller,
            status=args.get("status"),
            unit_id=args.get("unit_id"),
            alliance_id=args.get("alliance_id"),
            overdue_on=overdue_on,
        )
        rows, headers = page_rows(db(), stmt, args, params)
        return json_list(mentorship_items(rows, caller), headers)


@blp.route("/mentorships/<id:mentorship_id>")
class MentorshipById(MethodView):
    @blp.response(200, MentorshipSchema)
    @blp.doc(operationId="getMentorship")
    def get(self, mentorship_id: int) -> Any:
        """Read a mentorship with its next due date and overdue periods."""
        return mentorship_item(db(), principal(), mentorship_id)

    @blp.arguments(MentorshipPatchSchema(partial=top_level(MentorshipPatchSchema)))
    @blp.response(200, MentorshipSchema)
    @blp.doc(operationId="updateMentorship")
    def patch(self, changes: dict[str, Any], mentorship_id: int) -> Any:
        """Change a mentorship's goals, or clear its flag (coordinator)."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        access.require(caller, "programme.manage")
        validate_goal_levels(changes.get("goals", []))
        change_mentorship(db(), mentorship=mentorship, changes=changes, actor=caller.label)
        db().commit()
        return mentorship_item(db(), caller, mentorship_id)


@blp.route("/mentorships/<id:mentorship_id>/renew")
class RenewMentorship(MethodView):
    @blp.arguments(RenewSchema)
    @blp.response(200, MentorshipSchema)
    @blp.doc(operationId="renewMentorship")
    def post(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """Extend the agreement's term by 1–12 months (coordinator; 409 once it has ended)."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        access.require(caller, "programme.manage")
        renew(db(), mentorship=mentorship, months=body["months"], actor=caller.label)
        db().commit()
        return mentorship_item(db(), caller, mentorship_id)


@blp.route("/mentorships/<id:mentorship_id>/end")
class EndMentorship(MethodView):
    @blp.arguments(EndSchema)
    @blp.response(200, MentorshipSchema)
    @blp.doc(operationId="endMentorship")
    def post(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """End a mentorship with a reason (idempotent): its summary cycle and reminders stop,
        the pair is never proposed again, the apprentice is back in the pool."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        today = alliance_today(db(), mentorship.alliance_id)
        end_pair(
            db(),
            mentorship=mentorship,
            reason_code=body["reason_code"],
            comment=body["comment"],
            today=today,
            actor=caller.label,
        )
        db().commit()
        return mentorship_item(db(), caller, mentorship_id)


@blp.route("/mentorships/<id:mentorship_id>/summaries")
class Summaries(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, SummarySchema(many=True))
    @blp.doc(operationId="listSummaries")
    def get(self, args: dict[str, Any], mentorship_id: int) -> Any:
        """The summaries handed in, oldest period first."""
        mentorship = access.mentorship_in_scope(db(), principal(), mentorship_id)
        return paginate(db(), summaries_query(mentorship), args)

    @blp.arguments(SummaryInputSchema)
    @blp.response(201, SummarySchema)
    @blp.doc(operationId="submitSummary")
    def post(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """Hand in a summary: it fills the oldest open period (409 once the pair has ended)."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        author = mentorship.craftsman if body["author"] == "craftsman" else mentorship.apprentice
        access.require_summary_author(caller, author.unit_id)
        summary = add_summary(
            db(),
            mentorship=mentorship,
            summary=SummaryInput(**body),
            submitted_by=caller.label,
        )
        db().commit()
        return summary
