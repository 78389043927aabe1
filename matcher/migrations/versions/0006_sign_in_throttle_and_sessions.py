"""sign-in throttling and server-side web sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", matcher.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", matcher.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "scope IN ('account', 'address')", name=op.f("ck_sign_in_throttles_scope")
        ),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_sign_in_throttles")),
    )
    op.create_index(
        op.f("ix_sign_in_throttles_last_failure_at"),
        "sign_in_throttles",
        ["last_failure_at"],
        unique=False,
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", matcher.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", matcher.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_sign_in_throttles_last_failure_at"), table_name="sign_in_throttles")
    op.drop_table("sign_in_throttles")
