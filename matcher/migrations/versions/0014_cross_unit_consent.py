"""cross-unit consent: people's consent, the alliance's consent settings, the no_consent reason

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 20:15:00.000000

privacy.md "Consent": every craftsman and apprentice carries when they consented to be shown to
other member units and to which notice version (both NULL: no consent). An alliance requires that
consent (``consent_required``, true for new alliances) and names its notice's version. Alliances
that exist now were set up without it, so they are migrated with ``consent_required`` false: their
people keep taking part until a coordinator turns it on (the overview page says so meanwhile). A
run leaves an apprentice without consent unmatched as ``no_consent``; a mentorship records when one
of its pair withdrew consent (``consent_withdrawn_at``) so that coordinators are asked to end it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

REASONS_BEFORE = ("no_eligible_craftsman", "capacity_exhausted", "excluded", "unit_cap")
REASONS_AFTER = (*REASONS_BEFORE, "no_consent")


def _reason_check(reasons: tuple[str, ...]) -> str:
    return "reason_code IN (" + ", ".join(f"'{r}'" for r in reasons) + ")"


def upgrade() -> None:
    for table in ("craftsmen", "apprentices"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("cross_unit_consent_at", matcher.db.UTCDateTime(), nullable=True)
            )
            batch_op.add_column(
                sa.Column("cross_unit_consent_version", sa.String(length=32), nullable=True)
            )
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_required", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "consent_notice_version", sa.String(length=32), server_default="1", nullable=False
            )
        )
    # The alliances that exist already were set up without consent: they keep matching as before
    # until a coordinator turns the requirement on. New alliances require it (the default).
    op.execute(sa.text("UPDATE alliances SET consent_required = :off").bindparams(off=False))
    with op.batch_alter_table("mentorships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_withdrawn_at", matcher.db.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("unmatched_apprentices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_unmatched_apprentices_reason_code"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_unmatched_apprentices_reason_code"), _reason_check(REASONS_AFTER)
        )


def downgrade() -> None:
    # Apprentices a run left out for want of consent are kept, as no_eligible_craftsman (the
    # nearest of the old reasons: no craftsman could be proposed to them).
    op.execute(
        "UPDATE unmatched_apprentices SET reason_code = 'no_eligible_craftsman' "
        "WHERE reason_code = 'no_consent'"
    )
    with op.batch_alter_table("unmatched_apprentices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_unmatched_apprentices_reason_code"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_unmatched_apprentices_reason_code"), _reason_check(REASONS_BEFORE)
        )
    with op.batch_alter_table("mentorships", schema=None) as batch_op:
        batch_op.drop_column("consent_withdrawn_at")
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.drop_column("consent_notice_version")
        batch_op.drop_column("consent_required")
    for table in ("craftsmen", "apprentices"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("cross_unit_consent_version")
            batch_op.drop_column("cross_unit_consent_at")
