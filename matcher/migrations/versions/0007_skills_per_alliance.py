"""each alliance owns its skill taxonomy

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:00:00.000000

Until now one taxonomy served every alliance, so one alliance's coordinator could rename or
re-parent the tags another alliance's people use (security.md: it must not). Every tag becomes
an alliance's: each alliance that uses a tag gets its own copy, with the tag's ancestors (same
parent structure) and aliases, and its people's skills and wants point at its own copies.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The tables as this migration knows them (never the models, which move on).
alliances = sa.table("alliances", sa.column("id", sa.Integer))
units = sa.table("units", sa.column("id", sa.Integer), sa.column("alliance_id", sa.Integer))
skills = sa.table(
    "skills",
    sa.column("id", sa.Integer),
    sa.column("alliance_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("key", sa.String),
    sa.column("parent_id", sa.Integer),
    sa.column("created_at", matcher.db.UTCDateTime()),
    sa.column("updated_at", matcher.db.UTCDateTime()),
)
skill_aliases = sa.table(
    "skill_aliases",
    sa.column("id", sa.Integer),
    sa.column("alliance_id", sa.Integer),
    sa.column("skill_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("key", sa.String),
)
craftsmen = sa.table("craftsmen", sa.column("id", sa.Integer), sa.column("unit_id", sa.Integer))
apprentices = sa.table("apprentices", sa.column("id", sa.Integer), sa.column("unit_id", sa.Integer))
craftsman_skills = sa.table(
    "craftsman_skills", sa.column("craftsman_id", sa.Integer), sa.column("skill_id", sa.Integer)
)
apprentice_wants = sa.table(
    "apprentice_wants", sa.column("apprentice_id", sa.Integer), sa.column("skill_id", sa.Integer)
)
mentorships = sa.table(
    "mentorships", sa.column("id", sa.Integer), sa.column("alliance_id", sa.Integer)
)
training_summaries = sa.table(
    "training_summaries", sa.column("mentorship_id", sa.Integer), sa.column("skills", sa.JSON)
)

# The rows that reference skills.id (besides skills.parent_id and skill_aliases.skill_id), each
# with its owner's table: the owner's unit says which alliance the reference belongs to.
REFERENCES = (
    (craftsman_skills, craftsman_skills.c.craftsman_id, craftsmen),
    (apprentice_wants, apprentice_wants.c.apprentice_id, apprentices),
)


def upgrade() -> None:
    # The copies repeat their originals' keys: the global uniqueness goes before they are made.
    for table in ("skills", "skill_aliases"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("alliance_id", sa.Integer(), nullable=True))
            batch_op.drop_constraint(f"uq_{table}_key", type_="unique")

    _share_out(op.get_bind())

    with op.batch_alter_table("skills", schema=None) as batch_op:
        batch_op.alter_column("alliance_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_skills_alliance_id_key"), ["alliance_id", "key"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_skills_alliance_id_alliances"), "alliances", ["alliance_id"], ["id"]
        )
    with op.batch_alter_table("skill_aliases", schema=None) as batch_op:
        batch_op.alter_column("alliance_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_skill_aliases_alliance_id_key"), ["alliance_id", "key"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_skill_aliases_alliance_id_alliances"),
            "alliances",
            ["alliance_id"],
            ["id"],
        )


def _users(connection: sa.Connection, by_name: dict[str, int]) -> dict[int, set[int]]:
    """skill id -> the alliances whose people or training summaries use it."""
    users: dict[int, set[int]] = defaultdict(set)
    for table, owner_fk, owners in REFERENCES:
        rows = connection.execute(
            sa.select(table.c.skill_id, units.c.alliance_id)
            .join(owners, owners.c.id == owner_fk)
            .join(units, units.c.id == owners.c.unit_id)
            .distinct()
        )
        for skill_id, alliance_id in rows:
            users[skill_id].add(alliance_id)
    # Summaries keep the canonical names of the tags practised (not ids): a tag named there is
    # part of that alliance's ledger of skills passed on.
    rows = connection.execute(
        sa.select(mentorships.c.alliance_id, training_summaries.c.skills).join(
            mentorships, mentorships.c.id == training_summaries.c.mentorship_id
        )
    )
    for alliance_id, names in rows:
        for name in names or ():
            if name in by_name:
                users[by_name[name]].add(alliance_id)
    return users


def _share_out(connection: sa.Connection) -> None:
    """Give every alliance its own copy of each tag it uses, with the tag's ancestors and
    aliases, and point its people's skills and wants at its copies."""
    every_alliance = set(connection.scalars(sa.select(alliances.c.id)))
    tags = {row.id: row for row in connection.execute(sa.select(skills)).all()}
    parent_of = {tag_id: row.parent_id for tag_id, row in tags.items()}
    users = _users(connection, {row.name: tag_id for tag_id, row in tags.items()})

    owners: dict[int, set[int]] = {}
    for tag_id in tags:
        # A tag nobody uses yet goes to every alliance: each could see it and push it until
        # now (an HR system may be about to), so no alliance's pushes start failing, and each
        # coordinator may prune its copy. Without alliances such tags are nobody's: dropped.
        owners[tag_id] = set(users.get(tag_id) or every_alliance)
    for tag_id in sorted(tags):
        # The ancestors come along: a child's parent structure (and related-skill credit) must
        # be the same in each alliance's copy.
        seen = {tag_id}
        parent = parent_of[tag_id]
        while parent is not None and parent not in seen:
            owners[parent] |= owners[tag_id]
            seen.add(parent)
            parent = parent_of[parent]

    # The first alliance keeps the original row (its references stay as they are); the others
    # get copies.
    copy_of: dict[tuple[int, int], int] = {}
    for tag_id, row in sorted(tags.items()):
        if not owners[tag_id]:
            continue
        first, *others = sorted(owners[tag_id])
        connection.execute(skills.update().where(skills.c.id == tag_id).values(alliance_id=first))
        copy_of[first, tag_id] = tag_id
        for alliance_id in others:
            copy_of[alliance_id, tag_id] = connection.execute(
                skills.insert()
                .values(
                    alliance_id=alliance_id,
                    name=row.name,
                    key=row.key,
                    parent_id=None,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                )
                .returning(skills.c.id)
            ).scalar_one()
    for (alliance_id, tag_id), copy_id in copy_of.items():
        parent = parent_of[tag_id]
        new_parent = None if parent is None else copy_of[alliance_id, parent]
        if copy_id != tag_id or new_parent != parent:
            connection.execute(
                skills.update().where(skills.c.id == copy_id).values(parent_id=new_parent)
            )

    for alias in connection.execute(sa.select(skill_aliases)).all():
        owned_by = sorted(owners[alias.skill_id])
        if not owned_by:
            continue
        first, *others = owned_by
        connection.execute(
            skill_aliases.update().where(skill_aliases.c.id == alias.id).values(alliance_id=first)
        )
        for alliance_id in others:
            connection.execute(
                skill_aliases.insert().values(
                    alliance_id=alliance_id,
                    skill_id=copy_of[alliance_id, alias.skill_id],
                    name=alias.name,
                    key=alias.key,
                )
            )

    for (alliance_id, tag_id), copy_id in copy_of.items():
        if copy_id == tag_id:
            continue
        for table, owner_fk, owners_table in REFERENCES:
            of_alliance = (
                sa.select(owners_table.c.id)
                .join(units, units.c.id == owners_table.c.unit_id)
                .where(units.c.alliance_id == alliance_id)
            )
            connection.execute(
                table.update()
                .where(table.c.skill_id == tag_id, owner_fk.in_(of_alliance))
                .values(skill_id=copy_id)
            )

    orphans = [tag_id for tag_id in tags if not owners[tag_id]]  # only when there is no alliance
    if orphans:
        connection.execute(skill_aliases.delete().where(skill_aliases.c.skill_id.in_(orphans)))
        connection.execute(skills.update().where(skills.c.id.in_(orphans)).values(parent_id=None))
        connection.execute(skills.delete().where(skills.c.id.in_(orphans)))


def downgrade() -> None:
    _merge_back(op.get_bind())
    with op.batch_alter_table("skill_aliases", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_skill_aliases_alliance_id_alliances"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_skill_aliases_alliance_id_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_skill_aliases_key"), ["key"])
        batch_op.drop_column("alliance_id")
    with op.batch_alter_table("skills", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_skills_alliance_id_alliances"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_skills_alliance_id_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_skills_key"), ["key"])
        batch_op.drop_column("alliance_id")


def _merge_back(connection: sa.Connection) -> None:
    """One global taxonomy again, which loses what alliances made different: per name, the
    oldest tag (lowest id) is kept with its name and parent; the others' references and aliases
    move to it; an alias that clashes with a tag or an earlier alias is dropped."""
    rows = connection.execute(
        sa.select(skills.c.id, skills.c.key, skills.c.parent_id).order_by(skills.c.id)
    ).all()
    kept: dict[str, int] = {}
    for row in rows:
        kept.setdefault(row.key, row.id)
    target = {row.id: kept[row.key] for row in rows}
    dropped = [row.id for row in rows if target[row.id] != row.id]
    for tag_id in dropped:
        for table, _, _ in REFERENCES:
            connection.execute(
                table.update().where(table.c.skill_id == tag_id).values(skill_id=target[tag_id])
            )
        connection.execute(
            skill_aliases.update()
            .where(skill_aliases.c.skill_id == tag_id)
            .values(skill_id=target[tag_id])
        )
    for row in rows:
        if target[row.id] != row.id:
            continue
        parent = None if row.parent_id is None else target[row.parent_id]
        if parent != row.parent_id:
            connection.execute(
                skills.update()
                .where(skills.c.id == row.id)
                .values(parent_id=None if parent == row.id else parent)
            )
    if dropped:
        connection.execute(skills.update().where(skills.c.id.in_(dropped)).values(parent_id=None))
        connection.execute(skills.delete().where(skills.c.id.in_(dropped)))
    taken = set(kept)
    clashing: list[Any] = []
    for alias in connection.execute(
        sa.select(skill_aliases.c.id, skill_aliases.c.key).order_by(skill_aliases.c.id)
    ):
        if alias.key in taken:
            clashing.append(alias.id)
        taken.add(alias.key)
    if clashing:
        connection.execute(skill_aliases.delete().where(skill_aliases.c.id.in_(clashing)))
