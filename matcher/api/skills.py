"""``/skills``: the skill taxonomy that matching uses, one per alliance (security.md)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from matcher.api.base import Blueprint, paginate
from matcher.api.schemas import SkillQueryArgsSchema, SkillSchema, SkillScopeArgsSchema
from matcher.errors import NotFound
from matcher.extensions import db, principal
from matcher.models import Skill
from matcher.services import access
from matcher.services.skills import find_skill, put_skill, skills_query

blp = Blueprint(
    "skills",
    __name__,
    description="Skill tags, parent categories and aliases. Each alliance owns its taxonomy: "
    "a key reads and writes its own alliance's tags only; an admin key names the alliance with "
    "`?alliance_id=` (422 without it).",
)
BLUEPRINTS = [blp]


@blp.route("/skills")
class Skills(MethodView):
    @blp.query(SkillQueryArgsSchema)
    @blp.response(200, SkillSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")  # an alliance_id outside the key's scope
    @blp.doc(operationId="listSkills")
    def get(self, args: dict[str, Any]) -> Any:
        """List the skill tags of the key's alliance by name.

        Only the alliance's own tags; an admin key names the alliance with `?alliance_id=`
        (422 without it).
        """
        alliance_id = access.taxonomy_alliance_id(db(), principal(), args.get("alliance_id"))
        stmt = skills_query(alliance_id=alliance_id)
        if "updated_since" in args:
            stmt = stmt.where(Skill.updated_at >= args["updated_since"])
        return paginate(db(), stmt, args)


@blp.route("/skills/<name:name>")
class SkillByName(MethodView):
    @blp.query(SkillScopeArgsSchema)
    @blp.response(200, SkillSchema)
    @blp.doc(operationId="getSkill")
    def get(self, args: dict[str, Any], name: str) -> Skill:
        """Read a tag of the key's alliance by its name or one of its aliases.

        Names resolve in the alliance's own taxonomy: another alliance's tag is 404. An admin
        key names the alliance with `?alliance_id=` (422 without it).
        """
        alliance_id = access.taxonomy_alliance_id(db(), principal(), args.get("alliance_id"))
        skill = find_skill(db(), name, alliance_id=alliance_id)
        if skill is None:
            raise NotFound(f"No skill tag '{name}'.")
        return skill

    @blp.query(SkillScopeArgsSchema)
    @blp.arguments(SkillSchema)
    @blp.response(200, SkillSchema)
    @blp.alt_response(201, schema=SkillSchema, description="The tag was created")
    @blp.doc(operationId="upsertSkill")
    def put(self, args: dict[str, Any], fields: dict[str, Any], name: str) -> Any:
        """Create or replace a skill tag of the coordinator's alliance.

        Renames, parents and aliases change the alliance's own taxonomy only: another
        alliance's tag of the same name is neither seen nor touched (this creates the
        coordinator's own). An admin key names the alliance with `?alliance_id=` (422 without
        it).
        """
        caller = principal()
        access.require(caller, "skills.write")
        alliance_id = access.taxonomy_alliance_id(db(), caller, args.get("alliance_id"))
        result = put_skill(
            db(),
            alliance_id=alliance_id,
            name=name,
            parent=fields["parent"],
            aliases=fields["aliases"],
        )
        db().commit()
        return result.skill, 201 if result.created else 200
