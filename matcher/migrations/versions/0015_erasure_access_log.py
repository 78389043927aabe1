"""erasure, retention and the access log (privacy.md)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 20:20:00.000000

People get ``erased_at`` (their personal fields hold a pseudonym since), alliances their
``retention_months`` (default 36), and the access log of single-person reads is created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retention_months", sa.Integer(), server_default="36", nullable=False)
        )
        batch_op.create_check_constraint("retention_months", "retention_months BETWEEN 1 AND 120")
    for table in ("craftsmen", "apprentices"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("erased_at", matcher.db.UTCDateTime(), nullable=True))
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_kind", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reader", sa.String(length=200), nullable=False),
        sa.Column("reader_role", sa.String(length=16), nullable=False),
        sa.Column("reader_alliance_id", sa.Integer(), nullable=True),
        sa.Column("reader_unit_id", sa.Integer(), nullable=True),
        sa.Column("created_at", matcher.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "person_kind IN ('craftsman', 'apprentice')", name=op.f("ck_access_log_person_kind")
        ),
        sa.CheckConstraint("action IN ('read', 'export')", name=op.f("ck_access_log_action")),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_access_log_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_person", "access_log", ["person_kind", "person_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_access_log_person", table_name="access_log")
    op.drop_table("access_log")
    for table in ("apprentices", "craftsmen"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("erased_at")
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alliances_retention_months"), type_="check")
        batch_op.drop_column("retention_months")
