"""Request and response schemas: the same classes validate requests and document the API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from matcher.algorithms import MatchParams
from matcher.api.base import PageArgsSchema
from matcher.api.fields import (
    Email,
    Id,
    Identifier,
    StrictBoolean,
    StrictFloat,
    StrictInteger,
    Text,
    UtcDateTime,
    text,
    validate_timezone,
)
from matcher.models import CONSENT_NOT_REQUIRED, CRAFTSMAN_CONSENT, LOCALES

READ_ONLY = "Read-only: set by the service."
EXTERNAL_ID_LENGTH = ma.validate.Length(min=1, max=100)
CODE = ma.validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", error="Letters, digits, '_', '.', '-'.")


class BaseSchema(ma.Schema):
    """Unknown fields are rejected; fields the service owns are named as read-only."""

    class Meta:
        unknown = ma.RAISE

    def handle_error(
        self,
        error: ma.ValidationError,
        data: Any,
        *,
        many: bool,
        **kwargs: Any,  # noqa: ARG002
    ) -> None:
        read_only = {name for name, f in self.fields.items() if f.dump_only}
        if not read_only or not isinstance(error.messages, dict):
            raise error

        def mark(messages: dict[Any, Any]) -> dict[Any, Any]:
            return {
                key: [READ_ONLY] if key in read_only and value == ["Unknown field."] else value
                for key, value in messages.items()
            }

        if many:
            messages = {
                index: mark(item) if isinstance(item, dict) else item
                for index, item in error.messages.items()
            }
        else:
            messages = mark(error.messages)
        raise ma.ValidationError(messages, error.field_name, data, **error.kwargs)


SHARE = ma.validate.Range(min=0, max=1)
PERSON_ID = Id()
PAIR = ma.fields.List(PERSON_ID, validate=ma.validate.Length(equal=2))


class MatchParamsSchema(BaseSchema):
    """Parameters of a run (matching.md); every one optional, unknown ones rejected.

    Loads into ``MatchParams``, whose defaults fill what the request leaves out."""

    objective = ma.fields.String(validate=ma.validate.OneOf(["score", "coverage"]))
    # Above 0: a pair with no skill in common is never a proposal (and the candidate graph stays
    # sparse instead of holding every cross-unit pair).
    min_fit = StrictFloat(
        validate=ma.validate.Range(
            min=0, max=1, min_inclusive=False, error="Must be greater than 0 and at most 1."
        )
    )
    related_credit = StrictFloat(validate=SHARE)
    region_bonus = StrictFloat(validate=SHARE)
    waiting_bonus = StrictFloat(validate=SHARE)
    preference_bonus = StrictFloat(validate=SHARE)
    include_mentored = StrictBoolean()
    unit_ids = ma.fields.List(PERSON_ID, validate=ma.validate.Length(min=1, max=1000))
    pinned = ma.fields.List(PAIR, validate=ma.validate.Length(max=10_000))
    excluded = ma.fields.List(PAIR, validate=ma.validate.Length(max=100_000))
    # Fair shares between member units (matching.md); null: the rule is off.
    max_pairs_per_craftsman_unit = StrictInteger(
        allow_none=True, validate=ma.validate.Range(min=1, max=1_000_000)
    )
    max_pairs_per_unit_pair = StrictInteger(
        allow_none=True, validate=ma.validate.Range(min=1, max=1_000_000)
    )
    min_pairs_per_apprentice_unit = StrictInteger(
        allow_none=True, validate=ma.validate.Range(min=0, max=1_000_000)
    )

    @ma.post_load
    def to_params(self, data: dict[str, Any], **_kwargs: Any) -> MatchParams:
        """The typed parameters, defaults filled in."""
        return MatchParams.from_json(data)


class AllianceSchema(BaseSchema):
    """An alliance of member units that share craftsmen."""

    id = ma.fields.Integer(dump_only=True)
    code = Text(required=True, validate=[ma.validate.Length(min=1, max=32), CODE])
    name = text(required=True)
    timezone = Text(load_default="Asia/Shanghai", validate=validate_timezone)
    summary_every_days = StrictInteger(load_default=30, validate=ma.validate.Range(min=1, max=366))
    # The default parameters of its runs (matching.md), as set; null: none.
    match_defaults = ma.fields.Dict(dump_only=True, allow_none=True)
    agreement_months = StrictInteger(
        load_default=12,
        validate=ma.validate.Range(min=1, max=36),
        metadata={"description": "Term of a new mentorship's agreement (师徒协议), in months"},
    )
    idle_months = StrictInteger(
        load_default=6,
        validate=ma.validate.Range(min=1, max=120),
        metadata={"description": "Months without an active pair or a summary that make idle"},
    )
    craftsman_consent = Text(
        load_default=CONSENT_NOT_REQUIRED,
        validate=ma.validate.OneOf(CRAFTSMAN_CONSENT),
        metadata={"description": "required: committing a run offers each pair to its craftsman"},
    )
    offer_expires_days = StrictInteger(
        load_default=7,
        validate=ma.validate.Range(min=1, max=30),
        metadata={"description": "Days an offer waits for the craftsman's answer"},
    )
    retention_months = StrictInteger(
        load_default=36,
        validate=ma.validate.Range(min=1, max=120),
        metadata={
            "description": "Months after which inactive people in no mentorship are erased, "
            "and sent emails' bodies deleted (privacy.md)"
        },
    )
    consent_required = StrictBoolean(
        load_default=True,
        metadata={
            "description": "People take part across units only with their separate consent "
            "(privacy.md); alliances made before consent existed were migrated with false"
        },
    )
    consent_notice_version = Text(
        load_default="1",
        validate=[ma.validate.Length(min=1, max=32)],
        metadata={"description": "Version of the consent notice (GET .../consent-notice)"},
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class ConsentNoticeArgsSchema(ma.Schema):
    """Which language of the consent notice to read."""

    class Meta:
        unknown = ma.RAISE

    locale = Text(load_default="zh-CN", validate=ma.validate.OneOf(LOCALES))


class ConsentNoticeSchema(ma.Schema):
    """The notice a person reads before consenting to be shown to other member units."""

    alliance_id = ma.fields.Integer()
    version = ma.fields.String()
    locale = ma.fields.String()
    consent_required = ma.fields.Boolean()
    title = ma.fields.String()
    text = ma.fields.String()


class AlliancePatchSchema(AllianceSchema):
    """Fields of an alliance to change (load it with ``partial=top_level(...)``).

    ``match_defaults``: the default parameters of the alliance's runs, validated as a run's
    params; stored as given (only the keys set), null clears them."""

    # Loads what AllianceSchema only dumps.
    match_defaults = ma.fields.Nested(MatchParamsSchema, allow_none=True)  # type: ignore[assignment]

    @ma.post_load(pass_original=True)
    def defaults_as_given(
        self, data: dict[str, Any], original: Any, **_kwargs: Any
    ) -> dict[str, Any]:
        """``match_defaults`` as the keys the request set, in the runs' stored form."""
        params = data.get("match_defaults")
        if isinstance(params, MatchParams) and isinstance(original, dict):
            stored = params.to_json()
            data["match_defaults"] = {name: stored[name] for name in original["match_defaults"]}
        return data


class UnitSchema(BaseSchema):
    """A member enterprise of an alliance."""

    id = ma.fields.Integer(dump_only=True)
    alliance_id = ma.fields.Integer(dump_only=True)
    code = Text(required=True, validate=[ma.validate.Length(min=1, max=32), CODE])
    name = text(required=True)
    region = text(max_length=100, allow_none=True, load_default=None)
    contact_email = Email(allow_none=True, load_default=None, validate=ma.validate.Length(max=254))
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class UnitPatchSchema(UnitSchema):
    """Fields of a unit to change (load it with ``partial=top_level(...)``)."""


class ListQueryArgsSchema(PageArgsSchema):
    """Paging plus the ``updated_since`` filter of nightly syncs."""

    class Meta:
        unknown = ma.RAISE

    updated_since = UtcDateTime(
        metadata={
            "description": "Only records changed at or after this time (ISO 8601 with offset)"
        }
    )


class PeopleQueryArgsSchema(ListQueryArgsSchema):
    """Filters of the craftsman and apprentice lists."""

    active = ma.fields.Boolean()
    external_id = Identifier(validate=EXTERNAL_ID_LENGTH)


class SkillLevelSchema(BaseSchema):
    """A skill a craftsman teaches, with the level reached (1–5)."""

    name = text(required=True, max_length=100)
    level = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=5))


class WantSchema(BaseSchema):
    """A skill an apprentice wants, with target level (1–5) and weight (> 0, default 1)."""

    name = text(required=True, max_length=100)
    level = StrictInteger(required=True, validate=ma.validate.Range(min=1, max=5))
    weight = StrictFloat(
        load_default=1.0, validate=ma.validate.Range(min=0, max=100, min_inclusive=False)
    )


class ConsentSchema(BaseSchema):
    """A person's separate consent to be shown to other member units (privacy.md)."""

    given_at = UtcDateTime(
        required=True, metadata={"description": "When the person gave it (ISO 8601 with offset)"}
    )
    version = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=32),
        metadata={"description": "The consent notice version agreed to (consent_notice_version)"},
    )


class PersonSchema(BaseSchema):
    """Fields shared by craftsmen and apprentices."""

    id = ma.fields.Integer(dump_only=True)
    unit_id = ma.fields.Integer(dump_only=True)
    external_id = Identifier(validate=EXTERNAL_ID_LENGTH)
    name = text(required=True)
    email = Email(allow_none=True, load_default=None, validate=ma.validate.Length(max=254))
    locale = Text(load_default="zh-CN", validate=ma.validate.OneOf(LOCALES))
    region = text(max_length=100, allow_none=True, load_default=None)
    active = StrictBoolean(load_default=True)
    cross_unit_consent = ma.fields.Nested(
        ConsentSchema,
        allow_none=True,
        metadata={
            "description": "Separate consent to be shown to other member units; null withdraws "
            "it. Left out, the consent recorded stays as it is (none for a new person)."
        },
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class CraftsmanSchema(PersonSchema):
    """A craftsman (mentor): honours, levelled skills and how many apprentices they can take."""

    honours = ma.fields.List(
        text(max_length=100), load_default=list, validate=ma.validate.Length(max=30)
    )
    skills = ma.fields.List(
        ma.fields.Nested(SkillLevelSchema), load_default=list, validate=ma.validate.Length(max=50)
    )
    capacity = StrictInteger(load_default=2, validate=ma.validate.Range(min=1, max=10))


class ApprenticeSchema(PersonSchema):
    """An apprentice: the skills they want, with target levels and weights."""

    wants = ma.fields.List(
        ma.fields.Nested(WantSchema), load_default=list, validate=ma.validate.Length(max=50)
    )


class CraftsmanPatchSchema(CraftsmanSchema):
    """Fields of a craftsman to change (load it with ``partial=top_level(...)``)."""


class ApprenticePatchSchema(ApprenticeSchema):
    """Fields of an apprentice to change (load it with ``partial=top_level(...)``)."""


class CraftsmanBulkItemSchema(CraftsmanSchema):
    """One craftsman of a bulk upsert: ``external_id`` is required."""

    external_id = Identifier(required=True, validate=EXTERNAL_ID_LENGTH)


class ApprenticeBulkItemSchema(ApprenticeSchema):
    """One apprentice of a bulk upsert: ``external_id`` is required."""

    external_id = Identifier(required=True, validate=EXTERNAL_ID_LENGTH)


def top_level(schema: type[ma.Schema]) -> tuple[str, ...]:
    """The writable top-level fields, for ``partial=``: unlike ``partial=True`` this keeps
    nested items (a skill's name and level) fully required."""
    return tuple(name for name, field in schema._declared_fields.items() if not field.dump_only)


class BulkResultSchema(ma.Schema):
    """What a bulk upsert did."""

    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()


def taxonomy_alliance_id() -> ma.fields.Integer:
    """``?alliance_id=`` of the skill endpoints: which alliance's taxonomy is meant."""
    return ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=2**31 - 1),
        metadata={
            "description": "The alliance whose taxonomy is meant: required for an admin key "
            "(422 without it); a coordinator or hr key means its own alliance (another "
            "alliance's id is 404)."
        },
    )


class SkillScopeArgsSchema(ma.Schema):
    """Which alliance's taxonomy a skill request reads or writes."""

    class Meta:
        unknown = ma.RAISE

    alliance_id = taxonomy_alliance_id()


class SkillQueryArgsSchema(ListQueryArgsSchema):
    """Paging and ``updated_since`` of the skill list, and the alliance whose tags to list."""

    alliance_id = taxonomy_alliance_id()


class SkillSchema(BaseSchema):
    """A skill tag: its canonical name, parent category and aliases."""

    name = ma.fields.String(dump_only=True)
    parent = Text(
        allow_none=True,
        load_default=None,
        validate=ma.validate.Length(max=100),
        metadata={"description": "Name of the parent category tag, or null"},
    )
    aliases = ma.fields.List(
        text(max_length=100), load_default=list, validate=ma.validate.Length(max=50)
    )

    @ma.post_dump(pass_original=True)
    def _names(self, data: dict[str, Any], original: Any, **_: Any) -> dict[str, Any]:
        data["parent"] = original.parent.name if original.parent else None
        data["aliases"] = [alias.name for alias in original.aliases]
        return data
