"""fair shares between member units: alliance match defaults, the unit_cap reason

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:00:00.000000

An alliance keeps default match parameters for its runs (``alliances.match_defaults``, the
parameters a coordinator set, key by key; NULL: none). A run may leave an apprentice unmatched
because a fair-share cap is full: ``unit_cap`` joins the reasons the check allows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REASONS_BEFORE = ("no_eligible_craftsman", "capacity_exhausted", "excluded")
REASONS_AFTER = (*REASONS_BEFORE, "unit_cap")


def _reason_check(reasons: tuple[str, ...]) -> str:
    return "reason_code IN (" + ", ".join(f"'{r}'" for r in reasons) + ")"


def upgrade() -> None:
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_defaults", sa.JSON(), nullable=True))
    with op.batch_alter_table("unmatched_apprentices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_unmatched_apprentices_reason_code"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_unmatched_apprentices_reason_code"), _reason_check(REASONS_AFTER)
        )


def downgrade() -> None:
    # Runs that named the new reason keep their apprentices, as capacity_exhausted (the nearest
    # of the old reasons: eligible craftsmen exist).
    op.execute(
        "UPDATE unmatched_apprentices SET reason_code = 'capacity_exhausted' "
        "WHERE reason_code = 'unit_cap'"
    )
    with op.batch_alter_table("unmatched_apprentices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_unmatched_apprentices_reason_code"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_unmatched_apprentices_reason_code"), _reason_check(REASONS_BEFORE)
        )
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.drop_column("match_defaults")
