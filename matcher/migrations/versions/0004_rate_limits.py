"""rate limits; one queued or running match run per alliance

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:49:51.907836
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE_RUN = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_rate_limit_windows_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "window_start", name=op.f("pk_rate_limit_windows")),
    )
    # Before the rule, an alliance could have several queued runs: the oldest keeps its turn,
    # the others fail with a reason (their coordinator starts them again once it is done).
    op.execute(
        sa.text(
            "UPDATE match_runs SET status = 'failed', error = :error "  # noqa: S608 - a constant
            f"WHERE {ACTIVE_RUN} AND EXISTS (SELECT 1 FROM match_runs AS older "
            "WHERE older.alliance_id = match_runs.alliance_id "
            "AND older.status IN ('queued', 'running') AND older.id < match_runs.id)"
        ).bindparams(
            error="Not solved: another run of the alliance was queued or running when only one "
            "at a time became the rule (migration 0004). Start it again."
        )
    )
    op.create_index(
        "uq_match_runs_active_alliance_id",
        "match_runs",
        ["alliance_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_RUN),
        sqlite_where=sa.text(ACTIVE_RUN),
    )


def downgrade() -> None:
    op.drop_index("uq_match_runs_active_alliance_id", table_name="match_runs")
    op.drop_table("rate_limit_windows")
