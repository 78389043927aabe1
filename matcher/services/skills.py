"""The skill taxonomies: canonical tags, parent categories and aliases, one set per alliance.

Every lookup takes the alliance whose taxonomy it reads: a name resolves to that alliance's tag
or to nothing, never to another alliance's tag (security.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed
from matcher.models import Skill, SkillAlias
from matcher.text import single_line_problem, skill_display, skill_key


def skills_query(*, alliance_id: int) -> Select[Skill]:
    """The alliance's tags with their parents and aliases, by name."""
    return (
        select(Skill)
        .where(Skill.alliance_id == alliance_id)
        .options(selectinload(Skill.aliases), selectinload(Skill.parent))
        .order_by(Skill.key)
    )


def resolve_skill_keys(
    session: Session, keys: Iterable[str], *, alliance_id: int
) -> dict[str, int]:
    """Map normalised names (canonical or alias) to the alliance's skill ids; unknown keys are
    left out. Two queries per 1,000 keys, whatever the number of people they came from."""
    wanted = sorted(set(keys))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        found.update(
            session.execute(
                select(Skill.key, Skill.id).where(
                    Skill.alliance_id == alliance_id, Skill.key.in_(chunk)
                )
            ).all()
        )
        found.update(
            session.execute(
                select(SkillAlias.key, SkillAlias.skill_id).where(
                    SkillAlias.alliance_id == alliance_id, SkillAlias.key.in_(chunk)
                )
            ).all()
        )
    return found


def find_skill(session: Session, name: str, *, alliance_id: int) -> Skill | None:
    """The alliance's tag a name (canonical or alias) stands for."""
    key = skill_key(name)
    skill_id = resolve_skill_keys(session, [key], alliance_id=alliance_id).get(key)
    return None if skill_id is None else session.get(Skill, skill_id)


@dataclass(frozen=True)
class SkillPut:
    """What ``put_skill`` did."""

    skill: Skill
    created: bool


def put_skill(
    session: Session, *, alliance_id: int, name: str, parent: str | None, aliases: Sequence[str]
) -> SkillPut:
    """Create or replace a tag of the alliance: its parent category and its full list of
    aliases. Another alliance's tag of the same name is neither seen nor touched."""
    key = skill_key(name)
    if not key:
        raise ValidationFailed("A skill name cannot be blank.", errors={"name": ["Blank."]})
    if problem := single_line_problem(name):  # the URL's name: the body's names pass Text
        raise ValidationFailed("The skill name is not one text line.", errors={"name": [problem]})
    skill = session.scalars(
        select(Skill).where(Skill.alliance_id == alliance_id, Skill.key == key)
    ).one_or_none()
    if skill is None:
        owner = session.scalars(
            select(SkillAlias).where(SkillAlias.alliance_id == alliance_id, SkillAlias.key == key)
        ).one_or_none()
        if owner is not None:
            raise Conflict(f"'{name}' is already an alias of '{owner.skill.name}'.")
        skill = Skill(alliance_id=alliance_id, name=skill_display(name), key=key)
        session.add(skill)
        session.flush()
        created = True
    else:
        skill.name = skill_display(name)
        created = False

    skill.parent_id = _parent_id(session, skill, parent)
    _replace_aliases(session, skill, aliases)
    skill.updated_at = utcnow()
    session.flush()
    return SkillPut(skill=skill, created=created)


def _parent_id(session: Session, skill: Skill, parent: str | None) -> int | None:
    if parent is None or not skill_key(parent):
        return None
    parent_skill = find_skill(session, parent, alliance_id=skill.alliance_id)
    if parent_skill is None:
        raise ValidationFailed(
            f"Unknown parent skill '{parent}'.", errors={"parent": ["Unknown skill tag."]}
        )
    # Walk up from the new parent: meeting the skill itself would close a cycle.
    cursor: Skill | None = parent_skill
    while cursor is not None:
        if cursor.id == skill.id:
            raise ValidationFailed(
                "A skill cannot be its own ancestor.", errors={"parent": ["Would create a cycle."]}
            )
        cursor = cursor.parent
    return parent_skill.id


def _replace_aliases(session: Session, skill: Skill, aliases: Sequence[str]) -> None:
    wanted: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for index, alias in enumerate(aliases):
        key = skill_key(alias)
        if not key:
            problems[str(index)] = ["Blank."]
        elif key == skill.key:
            problems[str(index)] = ["An alias cannot repeat the skill's own name."]
        else:
            wanted[key] = skill_display(alias)
    if wanted:
        skill_keys = set(
            session.scalars(
                select(Skill.key).where(
                    Skill.alliance_id == skill.alliance_id, Skill.key.in_(wanted)
                )
            )
        )
        alias_owners = dict(
            session.execute(
                select(SkillAlias.key, Skill.name)
                .join(Skill, SkillAlias.skill_id == Skill.id)
                .where(
                    SkillAlias.alliance_id == skill.alliance_id,
                    SkillAlias.key.in_(wanted),
                    SkillAlias.skill_id != skill.id,
                )
            ).all()
        )
        for index, alias in enumerate(aliases):
            key = skill_key(alias)
            if key in skill_keys:
                problems[str(index)] = ["This name is a skill tag of its own."]
            elif key in alias_owners:
                problems[str(index)] = [f"Already an alias of '{alias_owners[key]}'."]
    if problems:
        raise ValidationFailed("Some aliases cannot be used.", errors={"aliases": problems})
    kept = {alias.key: alias for alias in skill.aliases if alias.key in wanted}
    skill.aliases = [
        kept.get(key) or SkillAlias(alliance_id=skill.alliance_id, key=key, name=name)
        for key, name in wanted.items()
    ]
