"""the scheduler's heartbeat

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beat_at", matcher.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", matcher.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_heartbeats")
