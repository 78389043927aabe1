"""Craftsmen and apprentices: pushed by their unit's HR system, read by coordinators.

Both resources follow one set of rules, so one factory builds both blueprints.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from matcher.api.base import Blueprint, json_item, json_list, page_rows
from matcher.api.problems import PROBLEM_MIMETYPE, ProblemSchema
from matcher.api.schemas import (
    ApprenticeBulkItemSchema,
    ApprenticePatchSchema,
    ApprenticeSchema,
    BulkResultSchema,
    CraftsmanBulkItemSchema,
    CraftsmanPatchSchema,
    CraftsmanSchema,
    PeopleQueryArgsSchema,
    top_level,
)
from matcher.errors import ValidationFailed, not_found
from matcher.extensions import db, principal
from matcher.services import access
from matcher.services.people import (
    APPRENTICE,
    CRAFTSMAN,
    Person,
    PersonKind,
    deactivate_person,
    get_person,
    patch_person,
    people_items,
    people_query,
    person_item,
    upsert_people,
    upsert_person,
    with_children,
)
from matcher.services.privacy import log_access

MAX_BATCH = 20_000


def people_blueprint(
    plural: str,
    kind: PersonKind,
    schema: type[ma.Schema],
    patch_schema: type[ma.Schema],
    bulk_schema: type[ma.Schema],
) -> Blueprint:
    """The five endpoints of one kind of person."""
    blp = Blueprint(plural, __name__, description=f"{plural.capitalize()} of member units")
    # Operation names for generated clients: upsertCraftsman, listCraftsmen, ...
    one, many = kind.label.capitalize(), plural.capitalize()
    # The URL's external id passes the very field that checks the body's.
    external_id_field = schema().fields["external_id"]

    def _person_in_scope(person_id: int) -> Person:
        person = get_person(db(), kind=kind, person_id=person_id)
        if not access.can_see_unit(principal(), person.unit):
            raise not_found(kind.label, person_id)  # as if it did not exist
        return person

    @blp.route(f"/units/<id:unit_id>/{plural}/<external_id:external_id>")
    class PersonByExternalId(MethodView):
        @blp.arguments(schema)
        @blp.response(200, schema, description="Updated (or unchanged)")
        @blp.alt_response(201, schema=schema, description="Created")
        @blp.alt_response(
            405,
            schema=ProblemSchema,
            content_type=PROBLEM_MIMETYPE,
            description="The external id 'bulk' names the bulk endpoint, which takes POST only",
        )
        @blp.doc(operationId=f"upsert{one}")
        def put(self, item: dict[str, Any], unit_id: int, external_id: str) -> Any:
            """Create or replace one person by the HR system's id (hr of the unit)."""
            try:
                external_id = external_id_field.deserialize(external_id)
            except ma.ValidationError as exc:
                raise ValidationFailed(
                    "The external id in the URL is not valid; nothing was written.",
                    errors={"external_id": exc.messages},
                ) from exc
            unit = access.unit_in_scope(db(), principal(), unit_id)
            access.require_people_writer(principal(), unit)
            if item.setdefault("external_id", external_id) != external_id:
                raise ValidationFailed(
                    "The body's external_id differs from the one in the URL.",
                    errors={"external_id": ["Must match the external id in the URL."]},
                )
            outcome = upsert_person(db(), kind=kind, unit=unit, item=item)
            db().commit()
            person = person_item(db(), kind=kind, person_id=outcome.ids[0])
            return json_item(person, status=201 if outcome.results[0] == "created" else 200)

    @blp.route(f"/units/<id:unit_id>/{plural}/bulk")
    class BulkPeople(MethodView):
        @blp.arguments(bulk_schema(many=True))
        @blp.response(200, BulkResultSchema)
        @blp.doc(operationId=f"bulkUpsert{many}")
        def post(self, items: list[dict[str, Any]], unit_id: int) -> Any:
            """Upsert many people in one transaction: all or nothing (hr of the unit)."""
            unit = access.unit_in_scope(db(), principal(), unit_id)
            access.require_people_writer(principal(), unit)
            if len(items) > MAX_BATCH:
                raise ValidationFailed(
                    f"At most {MAX_BATCH} records per request; split the batch.",
                    errors={"_body": [f"Longer than {MAX_BATCH} items."]},
                )
            outcome = upsert_people(db(), kind=kind, unit=unit, items=items)
            db().commit()
            return outcome

    @blp.route(f"/units/<id:unit_id>/{plural}")
    class UnitPeople(MethodView):
        @blp.query(PeopleQueryArgsSchema)
        @blp.response(200, schema(many=True))
        @blp.doc(operationId=f"list{many}")
        def get(self, args: dict[str, Any], unit_id: int) -> Any:
            """List a unit's people, filtered and paginated."""
            params: dict[str, Any] = {
                k: args[k] for k in ("updated_since", "external_id") if k in args
            }
            stmt = people_query(
                kind=kind,
                active=args.get("active"),
                updated_since="updated_since" in params,
                external_id="external_id" in params,
            )
            rows, headers = page_rows(
                db(),
                stmt,
                args,
                {"unit_id": unit_id, **params},
                widen=with_children(kind, db().get_bind().dialect.name),
            )
            # The scope is asked of the page's own rows (one statement less); a page without
            # rows asks the unit. Either way nothing is answered before the policy has spoken.
            access.require_unit_row_visible(
                db(), principal(), unit_id, rows[0].unit_alliance_id if rows else None
            )
            return json_list(people_items(kind, rows), headers)

    @blp.route(f"/{plural}/<id:person_id>")
    class PersonById(MethodView):
        @blp.response(200, schema)
        @blp.doc(operationId=f"get{one}")
        def get(self, person_id: int) -> Any:
            """Read one person; a read by anyone but the person's own unit's HR system is
            written to the access log (privacy.md)."""
            # Written by the lists' row builder, not dumped by the schema (which documents it).
            item = person_item(db(), kind=kind, person_id=person_id, principal=principal())
            if log_access(
                db(), principal(), kind=kind, person_id=person_id, unit_id=item["unit_id"]
            ):
                db().commit()
            return json_item(item)

        @blp.arguments(patch_schema(partial=top_level(patch_schema)))
        @blp.response(200, schema)
        @blp.doc(operationId=f"update{one}")
        def patch(self, changes: dict[str, Any], person_id: int) -> Any:
            """Change some fields of a person (hr of the unit)."""
            person = _person_in_scope(person_id)
            access.require_people_writer(principal(), person.unit)
            if changes.get("external_id", person.external_id) != person.external_id:
                raise ValidationFailed(
                    "The external id cannot change; create the person under the new id instead.",
                    errors={"external_id": ["Cannot change."]},
                )
            patch_person(db(), kind=kind, person=person, changes=changes)
            db().commit()
            return json_item(person_item(db(), kind=kind, person_id=person_id))

        @blp.response(204)
        @blp.doc(operationId=f"deactivate{one}")
        def delete(self, person_id: int) -> None:
            """Deactivate a person; their history is kept (hr of the unit)."""
            person = _person_in_scope(person_id)
            access.require_people_writer(principal(), person.unit)
            deactivate_person(db(), kind=kind, person=person)
            db().commit()

    return blp


BLUEPRINTS = [
    people_blueprint(
        "craftsmen", CRAFTSMAN, CraftsmanSchema, CraftsmanPatchSchema, CraftsmanBulkItemSchema
    ),
    people_blueprint(
        "apprentices", APPRENTICE, ApprenticeSchema, ApprenticePatchSchema, ApprenticeBulkItemSchema
    ),
]
