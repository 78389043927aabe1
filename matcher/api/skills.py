"""``/skills``: the skill taxonomy that matching uses."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from matcher.api.base import Blueprint, paginate
from matcher.api.schemas import ListQueryArgsSchema, SkillSchema
from matcher.errors import NotFound
from matcher.extensions import db, principal
from matcher.models import Skill
from matcher.services import access
from matcher.services.skills import find_skill, put_skill

blp = Blueprint("skills", __name__, description="Skill tags, parent categories and aliases")
BLUEPRINTS = [blp]


@blp.route("/skills")
class Skills(MethodView):
    @blp.query(ListQueryArgsSchema)
    @blp.response(200, SkillSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List the skill tags by name."""
        stmt = (
            select(Skill)
            .options(selectinload(Skill.aliases), selectinload(Skill.parent))
            .order_by(Skill.key)
        )
        if "updated_since" in args:
            stmt = stmt.where(Skill.updated_at >= args["updated_since"])
        return paginate(db(), stmt, args)


@blp.route("/skills/<name:name>")
class SkillByName(MethodView):
    @blp.response(200, SkillSchema)
    def get(self, name: str) -> Skill:
        """Read a skill tag by its name or one of its aliases."""
        skill = find_skill(db(), name)
        if skill is None:
            raise NotFound(f"No skill tag '{name}'.")
        return skill

    @blp.arguments(SkillSchema)
    @blp.response(200, SkillSchema)
    @blp.alt_response(201, schema=SkillSchema, description="The tag was created")
    def put(self, fields: dict[str, Any], name: str) -> Any:
        """Create or replace a skill tag (coordinator)."""
        access.require_role(principal(), "coordinator")
        result = put_skill(db(), name=name, parent=fields["parent"], aliases=fields["aliases"])
        db().commit()
        return result.skill, 201 if result.created else 200
