"""two-way choice, first half: apprentices' preferences, craftsmen's availability

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:20:00.000000

New table ``apprentice_preferences`` (up to 3 ranked craftsmen and 20 avoided per apprentice);
apprentices gain ``preferences_updated_at``; craftsmen gain ``accepting`` (true for everybody
so far), ``paused_until`` and ``availability_updated_at``; proposals gain ``preference_rank``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apprentice_preferences",
        sa.Column("apprentice_id", sa.Integer(), nullable=False),
        sa.Column("craftsman_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint(
            "rank IS NULL OR rank BETWEEN 1 AND 3", name=op.f("ck_apprentice_preferences_rank")
        ),
        sa.ForeignKeyConstraint(
            ["apprentice_id"],
            ["apprentices.id"],
            name=op.f("fk_apprentice_preferences_apprentice_id_apprentices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["craftsman_id"],
            ["craftsmen.id"],
            name=op.f("fk_apprentice_preferences_craftsman_id_craftsmen"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "apprentice_id", "craftsman_id", name=op.f("pk_apprentice_preferences")
        ),
        sa.UniqueConstraint(
            "apprentice_id", "rank", name=op.f("uq_apprentice_preferences_apprentice_id_rank")
        ),
    )
    op.create_index(
        op.f("ix_apprentice_preferences_craftsman_id"),
        "apprentice_preferences",
        ["craftsman_id"],
    )
    with op.batch_alter_table("apprentices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("preferences_updated_at", matcher.db.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("craftsmen", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accepting", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("paused_until", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("availability_updated_at", matcher.db.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preference_rank", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("preference_rank")
    with op.batch_alter_table("craftsmen", schema=None) as batch_op:
        batch_op.drop_column("availability_updated_at")
        batch_op.drop_column("paused_until")
        batch_op.drop_column("accepting")
    with op.batch_alter_table("apprentices", schema=None) as batch_op:
        batch_op.drop_column("preferences_updated_at")
    op.drop_index(
        op.f("ix_apprentice_preferences_craftsman_id"), table_name="apprentice_preferences"
    )
    op.drop_table("apprentice_preferences")
