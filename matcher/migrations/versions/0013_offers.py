"""offers: the craftsman's consent before a pair starts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:10:00.000000

Alliances gain ``craftsman_consent`` (existing alliances: ``not_required``, as before) and
``offer_expires_days``. New table ``offers``. Reminders gain ``offer_id`` and the kinds
``offer`` and ``offer_reminder``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('upcoming', 'overdue', 'escalation', 'digest', 'term_ending', 'check_in')"
NEW_KINDS = (
    "kind IN ('upcoming', 'overdue', 'escalation', 'digest', 'term_ending', 'check_in', "
    "'offer', 'offer_reminder')"
)


def upgrade() -> None:
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "craftsman_consent",
                sa.String(length=16),
                server_default="not_required",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("offer_expires_days", sa.Integer(), server_default="7", nullable=False)
        )
        batch_op.create_check_constraint(
            "craftsman_consent", "craftsman_consent IN ('not_required', 'required')"
        )
        batch_op.create_check_constraint(
            "offer_expires_days", "offer_expires_days BETWEEN 1 AND 30"
        )

    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alliance_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("craftsman_id", sa.Integer(), nullable=False),
        sa.Column("apprentice_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offered_at", matcher.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", matcher.db.UTCDateTime(), nullable=False),
        sa.Column("answered_at", matcher.db.UTCDateTime(), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mentorship_id", sa.Integer(), nullable=True),
        sa.Column("created_at", matcher.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", matcher.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('offered', 'accepted', 'declined', 'expired')",
            name=op.f("ck_offers_status"),
        ),
        sa.ForeignKeyConstraint(
            ["alliance_id"], ["alliances.id"], name=op.f("fk_offers_alliance_id_alliances")
        ),
        sa.ForeignKeyConstraint(
            ["apprentice_id"], ["apprentices.id"], name=op.f("fk_offers_apprentice_id_apprentices")
        ),
        sa.ForeignKeyConstraint(
            ["craftsman_id"], ["craftsmen.id"], name=op.f("fk_offers_craftsman_id_craftsmen")
        ),
        sa.ForeignKeyConstraint(
            ["mentorship_id"], ["mentorships.id"], name=op.f("fk_offers_mentorship_id_mentorships")
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.id"], name=op.f("fk_offers_proposal_id_proposals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("mentorship_id", name=op.f("uq_offers_mentorship_id")),
        sa.UniqueConstraint("proposal_id", name=op.f("uq_offers_proposal_id")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_alliance_id"), ["alliance_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_offers_apprentice_id"), ["apprentice_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_offers_craftsman_id"), ["craftsman_id"], unique=False)
        batch_op.create_index("ix_offers_status_expires_at", ["status", "expires_at"], unique=False)
        batch_op.create_index("ix_offers_status_offered_at", ["status", "offered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_offers_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offer_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_reminders_offer_id"), ["offer_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_reminders_offer_id_offers"), "offers", ["offer_id"], ["id"]
        )
        batch_op.drop_constraint(op.f("ck_reminders_kind"), type_="check")
        batch_op.create_check_constraint("kind", NEW_KINDS)


def downgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reminders_kind"), type_="check")
        batch_op.create_check_constraint("kind", OLD_KINDS)
        batch_op.drop_constraint(batch_op.f("fk_reminders_offer_id_offers"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_reminders_offer_id"))
        batch_op.drop_column("offer_id")
    op.drop_table("offers")
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alliances_offer_expires_days"), type_="check")
        batch_op.drop_constraint(op.f("ck_alliances_craftsman_consent"), type_="check")
        batch_op.drop_column("offer_expires_days")
        batch_op.drop_column("craftsman_consent")
