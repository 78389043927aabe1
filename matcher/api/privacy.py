"""A person's data (privacy.md): the copy (export), erasure, and the access log of reads."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, PageArgsSchema, json_item, paginate
from matcher.api.fields import Id
from matcher.errors import not_found
from matcher.extensions import db, principal
from matcher.models import ACCESS_EXPORT, PERSON_KINDS
from matcher.services import access
from matcher.services.people import KINDS, Person, PersonKind, get_person
from matcher.services.privacy import access_log_query, erase_person, export_person, log_access

blp = Blueprint("privacy", __name__, description="A person's data: copy, erasure, access log")
BLUEPRINTS = [blp]
_BY_LABEL = {kind.label: kind for kind in KINDS.values()}


class PersonExportSchema(ma.Schema):
    """Everything held about one person: one list of rows per table that holds them."""

    kind = ma.fields.String()
    id = ma.fields.Integer()
    exported_at = ma.fields.String()
    unit = ma.fields.Dict()
    tables = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.Dict()),
        metadata={"description": "Rows by table name, as stored"},
    )
    others = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "People the rows name: name and unit only"}
    )
    not_exported = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Tables that may mention the person, and why not exported"},
    )


class ErasureSchema(ma.Schema):
    """What an erasure did."""

    kind = ma.fields.String()
    id = ma.fields.Integer()
    pseudonym = ma.fields.String()
    erased_at = ma.fields.String()
    erased_fields = ma.fields.List(ma.fields.String(), data_key="fields")
    rows = ma.fields.Dict(metadata={"description": "Rows changed (or cancelled) by table"})


class AccessLogArgsSchema(PageArgsSchema):
    """Whose access log: the person's kind and id."""

    class Meta:
        unknown = ma.RAISE

    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(PERSON_KINDS))
    person = Id(strict=False, required=True, metadata={"description": "The person's id"})


class AccessLogEntrySchema(ma.Schema):
    """One read of a person's record by someone other than their own unit's HR system."""

    id = ma.fields.Integer()
    person_kind = ma.fields.String()
    person_id = ma.fields.Integer()
    unit_id = ma.fields.Integer()
    action = ma.fields.String()
    reader = ma.fields.String()
    reader_role = ma.fields.String()
    reader_alliance_id = ma.fields.Integer(allow_none=True)
    reader_unit_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()


def _person_in_scope(kind: PersonKind, person_id: int) -> Person:
    """The person, if the caller's key reaches their unit; else 404 as for an unused id."""
    person = get_person(db(), kind=kind, person_id=person_id)
    if not access.reaches(
        principal(), alliance_id=person.unit.alliance_id, unit_ids=(person.unit_id,)
    ):
        raise not_found(kind.label, person_id)
    return person


def _routes(plural: str, kind: PersonKind) -> None:
    one = kind.label.capitalize()

    @blp.route(f"/{plural}/<id:person_id>/export")
    class PersonExport(MethodView):
        @blp.response(200, PersonExportSchema)
        @blp.doc(operationId=f"export{one}")
        def get(self, person_id: int) -> Any:
            """Everything held about the person, as one JSON document (hr of the unit,
            coordinator); written to the access log unless read by the person's own unit."""
            person = _person_in_scope(kind, person_id)
            document = export_person(db(), kind=kind, person=person)
            log_access(
                db(),
                principal(),
                kind=kind,
                person_id=person.id,
                unit_id=person.unit_id,
                action=ACCESS_EXPORT,
            )
            db().commit()
            return json_item(document)

    @blp.route(f"/{plural}/<id:person_id>/erase")
    class PersonErasure(MethodView):
        @blp.response(200, ErasureSchema)
        @blp.doc(operationId=f"erase{one}")
        def post(self, person_id: int) -> Any:
            """Erase the person: a pseudonym for their personal fields, their emails, external
            id and free text removed, what was queued to them cancelled; counts stay.
            Irreversible and audited (hr of the unit)."""
            person = _person_in_scope(kind, person_id)
            access.require_people_writer(principal(), person.unit)
            outcome = erase_person(db(), kind=kind, person=person, actor=principal().label)
            db().commit()
            return json_item(outcome)

    PersonExport.__name__ = f"{one}Export"
    PersonErasure.__name__ = f"{one}Erasure"


for _plural, _kind in KINDS.items():
    _routes(_plural, _kind)


@blp.route("/access-log")
class AccessLog(MethodView):
    @blp.query(AccessLogArgsSchema)
    @blp.response(200, AccessLogEntrySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")  # no such person in the key's scope
    @blp.doc(operationId="listAccessLog")
    def get(self, args: dict[str, Any]) -> Any:
        """Who read a person's record, newest first (admin, and the person's own unit's hr)."""
        access.require(principal(), "privacy.access_log")
        kind = _BY_LABEL[args["kind"]]
        person = _person_in_scope(kind, args["person"])
        return paginate(db(), access_log_query(kind, person.id), args)
