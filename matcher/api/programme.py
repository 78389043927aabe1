"""``/mentorships/{id}/check-ins`` and ``/mentorships/{id}/assessment``: how a pair goes, and
its completion assessment (出师考核) with the certificate a pass earns."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, paginate
from matcher.api.fields import StrictBoolean, StrictInteger, text
from matcher.api.schemas import BaseSchema
from matcher.extensions import db, principal
from matcher.models import ASSESSMENT_RESULTS, AUTHORS, CHECK_IN_OCCASIONS, Assessment
from matcher.services import access
from matcher.services.mentorships import alliance_today
from matcher.services.programme import (
    CheckInInput,
    add_check_in,
    assess,
    assessment_of,
    certificate_of,
    check_ins_query,
    correct_assessment,
)

blp = Blueprint("programme", __name__, description="Check-ins and completion assessments")
BLUEPRINTS = [blp]


class CheckInInputSchema(BaseSchema):
    """How the pair goes, said by one of it."""

    author = ma.fields.String(required=True, validate=ma.validate.OneOf(AUTHORS))
    rating = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=5))
    good_fit = StrictBoolean(required=True)
    comment = text(max_length=5000, multi_line=True, load_default=None, allow_none=True)
    occasion = ma.fields.String(
        validate=ma.validate.OneOf(CHECK_IN_OCCASIONS),
        metadata={"description": "Default: the author's first occasion not yet answered"},
    )


class CheckInSchema(ma.Schema):
    """A check-in as stored."""

    id = ma.fields.Integer()
    mentorship_id = ma.fields.Integer()
    occasion = ma.fields.String(metadata={"enum": list(CHECK_IN_OCCASIONS)})
    author = ma.fields.String(metadata={"enum": list(AUTHORS)})
    rating = ma.fields.Integer()
    good_fit = ma.fields.Boolean()
    comment = ma.fields.String(allow_none=True)
    submitted_at = ma.fields.AwareDateTime()


class AssessedSkillSchema(BaseSchema):
    """A skill reached, with its level (1–5)."""

    name = text(required=True, max_length=100)
    level = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=5))


class AssessmentInputSchema(BaseSchema):
    """The completion assessment: theory and practice scores, the skills reached, the result."""

    theory = StrictInteger(required=True, validate=ma.validate.Range(min=0, max=100))
    practice = StrictInteger(required=True, validate=ma.validate.Range(min=0, max=100))
    skills = ma.fields.List(
        ma.fields.Nested(AssessedSkillSchema),
        required=True,
        validate=ma.validate.Length(max=50),
    )
    evaluator = text(required=True, max_length=200)
    result = ma.fields.String(required=True, validate=ma.validate.OneOf(ASSESSMENT_RESULTS))
    comment = text(max_length=5000, multi_line=True, load_default=None, allow_none=True)


class CertificateRefSchema(ma.Schema):
    """The certificate a pass earned."""

    code = ma.fields.String()
    issued_on = ma.fields.Date()
    url = ma.fields.String(metadata={"description": "The public verification page"})


class AssessmentSchema(ma.Schema):
    """The assessment as stored, with its certificate once passed."""

    mentorship_id = ma.fields.Integer()
    theory = ma.fields.Integer()
    practice = ma.fields.Integer()
    skills = ma.fields.List(ma.fields.Nested(AssessedSkillSchema))
    evaluator = ma.fields.String()
    result = ma.fields.String(metadata={"enum": list(ASSESSMENT_RESULTS)})
    comment = ma.fields.String(allow_none=True)
    assessed_on = ma.fields.Date()
    updated_at = ma.fields.AwareDateTime()
    certificate = ma.fields.Nested(CertificateRefSchema, allow_none=True)


ASSESSMENT_FIELDS = (
    "mentorship_id",
    "theory",
    "practice",
    "skills",
    "evaluator",
    "result",
    "comment",
    "assessed_on",
    "updated_at",
)


def _assessment_item(assessment: Assessment) -> dict[str, Any]:
    certificate = certificate_of(db(), assessment.mentorship_id)
    return {
        **{name: getattr(assessment, name) for name in ASSESSMENT_FIELDS},
        "certificate": None
        if certificate is None
        else {
            "code": certificate.code,
            "issued_on": certificate.issued_on,
            "url": f"/certificates/{certificate.code}",
        },
    }


@blp.route("/mentorships/<id:mentorship_id>/check-ins")
class CheckIns(MethodView):
    @blp.query(PageArgsSchema)
    @blp.response(200, CheckInSchema(many=True))
    @blp.doc(operationId="listCheckIns")
    def get(self, args: dict[str, Any], mentorship_id: int) -> Any:
        """The pair's check-ins, oldest first."""
        mentorship = access.mentorship_in_scope(db(), principal(), mentorship_id)
        return paginate(db(), check_ins_query(mentorship), args)

    @blp.arguments(CheckInInputSchema)
    @blp.response(201, CheckInSchema)
    @blp.doc(operationId="submitCheckIn")
    def post(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """Hand in a check-in (once per author and occasion); 'not a good fit' flags the pair."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        author = mentorship.craftsman if body["author"] == "craftsman" else mentorship.apprentice
        access.require_summary_author(caller, author.unit_id)
        check_in = add_check_in(
            db(), mentorship=mentorship, check_in=CheckInInput(**body), submitted_by=caller.label
        )
        db().commit()
        return check_in


@blp.route("/mentorships/<id:mentorship_id>/assessment")
class AssessmentOfMentorship(MethodView):
    @blp.response(200, AssessmentSchema)
    @blp.doc(operationId="getAssessment")
    def get(self, mentorship_id: int) -> Any:
        """The pair's completion assessment (404 until assessed)."""
        mentorship = access.mentorship_in_scope(db(), principal(), mentorship_id)
        return _assessment_item(assessment_of(db(), mentorship))

    @blp.arguments(AssessmentInputSchema)
    @blp.response(201, AssessmentSchema)
    @blp.doc(operationId="createAssessment")
    def post(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """Record the completion assessment (coordinator; one per mentorship, a second is 409);
        a pass completes the pair and issues its certificate."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        access.require(caller, "programme.manage")
        today = alliance_today(db(), mentorship.alliance_id)
        assessment = assess(
            db(), mentorship=mentorship, fields=body, today=today, actor=caller.label
        )
        db().commit()
        return _assessment_item(assessment)

    @blp.arguments(AssessmentInputSchema)
    @blp.response(200, AssessmentSchema)
    @blp.doc(operationId="correctAssessment")
    def put(self, body: dict[str, Any], mentorship_id: int) -> Any:
        """Correct the assessment (coordinator; audited with what it said before)."""
        caller = principal()
        mentorship = access.mentorship_in_scope(db(), caller, mentorship_id)
        access.require(caller, "programme.manage")
        assessment = correct_assessment(
            db(), mentorship=mentorship, fields=body, actor=caller.label
        )
        db().commit()
        return _assessment_item(assessment)
