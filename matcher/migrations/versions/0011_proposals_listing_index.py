"""a run's proposals listed from an index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 17:40:00.000000

The proposals list (best score first, then id) sorted all of a run's proposals for every page;
with this index both databases read a page in order and stop after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_proposals_match_run_id_score",
        "proposals",
        ["match_run_id", sa.column("score").desc(), "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_proposals_match_run_id_score", table_name="proposals")
