"""the programme around a pair: agreement term, check-ins, assessment, certificates

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:30:00.000000

Every mentorship gains its agreement's term (``ends_on``, ``mid_term_on``), goals, why it ended
and a flag; existing pairs get the default term of 12 months from their start. Alliances gain
``agreement_months`` and ``idle_months``. New tables: check-ins, assessments, certificates, and
the request counts of the public certificate pages. Reminders gain the kinds ``term_ending``
and ``check_in``; mentorships the status ``completed``.
"""

from __future__ import annotations

import calendar
from datetime import date

import sqlalchemy as sa
from alembic import op

import matcher.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('upcoming', 'overdue', 'escalation', 'digest')"
NEW_KINDS = "kind IN ('upcoming', 'overdue', 'escalation', 'digest', 'term_ending', 'check_in')"
OLD_STATUSES = "status IN ('active', 'ended')"
NEW_STATUSES = "status IN ('active', 'ended', 'completed')"
END_REASON = (
    "end_reason IS NULL OR end_reason IN "
    "('not_a_fit', 'left_unit', 'craftsman_unavailable', 'other')"
)
DEFAULT_TERM_MONTHS = 12

# The table as this migration knows it (never the models, which move on).
mentorships = sa.table(
    "mentorships",
    sa.column("id", sa.Integer),
    sa.column("started_on", sa.Date),
    sa.column("ends_on", sa.Date),
    sa.column("mid_term_on", sa.Date),
    sa.column("goals", sa.JSON),
)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def upgrade() -> None:
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agreement_months", sa.Integer(), server_default="12", nullable=False)
        )
        batch_op.add_column(
            sa.Column("idle_months", sa.Integer(), server_default="6", nullable=False)
        )
        batch_op.create_check_constraint("agreement_months", "agreement_months BETWEEN 1 AND 36")
        batch_op.create_check_constraint("idle_months", "idle_months BETWEEN 1 AND 120")

    with op.batch_alter_table("mentorships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("mid_term_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("goals", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("end_comment", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    # Existing pairs: the default term from their start (few rows; dates computed in Python so
    # that month ends are handled alike on both dialects).
    connection = op.get_bind()
    rows = connection.execute(sa.select(mentorships.c.id, mentorships.c.started_on)).all()
    for mentorship_id, started_on in rows:
        ends_on = _add_months(started_on, DEFAULT_TERM_MONTHS)
        connection.execute(
            mentorships.update()
            .where(mentorships.c.id == mentorship_id)
            .values(
                ends_on=ends_on,
                mid_term_on=started_on + (ends_on - started_on) / 2,
                goals=[],
            )
        )

    with op.batch_alter_table("mentorships", schema=None) as batch_op:
        batch_op.alter_column("ends_on", existing_type=sa.Date(), nullable=False)
        batch_op.alter_column("mid_term_on", existing_type=sa.Date(), nullable=False)
        batch_op.alter_column("goals", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_constraint(op.f("ck_mentorships_status"), type_="check")
        batch_op.create_check_constraint("status", NEW_STATUSES)
        batch_op.create_check_constraint("end_reason", END_REASON)
        batch_op.create_index("ix_mentorships_status_ends_on", ["status", "ends_on"], unique=False)

    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reminders_kind"), type_="check")
        batch_op.create_check_constraint("kind", NEW_KINDS)

    op.create_table(
        "check_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("occasion", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("good_fit", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("submitted_at", matcher.db.UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "author IN ('craftsman', 'apprentice')", name=op.f("ck_check_ins_author")
        ),
        sa.CheckConstraint(
            "occasion IN ('first_summary', 'mid_term')", name=op.f("ck_check_ins_occasion")
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_check_ins_rating")),
        sa.ForeignKeyConstraint(
            ["mentorship_id"],
            ["mentorships.id"],
            name=op.f("fk_check_ins_mentorship_id_mentorships"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_ins")),
        sa.UniqueConstraint(
            "mentorship_id",
            "occasion",
            "author",
            name=op.f("uq_check_ins_mentorship_id_occasion_author"),
        ),
    )
    op.create_index(op.f("ix_check_ins_mentorship_id"), "check_ins", ["mentorship_id"])
    op.create_index(op.f("ix_check_ins_submitted_at"), "check_ins", ["submitted_at"])

    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("theory", sa.Integer(), nullable=False),
        sa.Column("practice", sa.Integer(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("evaluator", sa.String(length=200), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("created_at", matcher.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", matcher.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("practice BETWEEN 0 AND 100", name=op.f("ck_assessments_practice")),
        sa.CheckConstraint("result IN ('pass', 'fail')", name=op.f("ck_assessments_result")),
        sa.CheckConstraint("theory BETWEEN 0 AND 100", name=op.f("ck_assessments_theory")),
        sa.ForeignKeyConstraint(
            ["mentorship_id"],
            ["mentorships.id"],
            name=op.f("fk_assessments_mentorship_id_mentorships"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("mentorship_id", name=op.f("uq_assessments_mentorship_id")),
    )
    op.create_index(op.f("ix_assessments_updated_at"), "assessments", ["updated_at"])

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mentorship_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("created_at", matcher.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentorship_id"],
            ["mentorships.id"],
            name=op.f("fk_certificates_mentorship_id_mentorships"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("code", name=op.f("uq_certificates_code")),
        sa.UniqueConstraint("mentorship_id", name=op.f("uq_certificates_mentorship_id")),
    )

    op.create_table(
        "public_request_windows",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", "window_start", name=op.f("pk_public_request_windows")),
    )


def downgrade() -> None:
    op.drop_table("public_request_windows")
    op.drop_table("certificates")
    op.drop_index(op.f("ix_assessments_updated_at"), table_name="assessments")
    op.drop_table("assessments")
    op.drop_index(op.f("ix_check_ins_submitted_at"), table_name="check_ins")
    op.drop_index(op.f("ix_check_ins_mentorship_id"), table_name="check_ins")
    op.drop_table("check_ins")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reminders_kind"), type_="check")
        batch_op.create_check_constraint("kind", OLD_KINDS)
    with op.batch_alter_table("mentorships", schema=None) as batch_op:
        batch_op.drop_index("ix_mentorships_status_ends_on")
        batch_op.drop_constraint(op.f("ck_mentorships_end_reason"), type_="check")
        batch_op.drop_constraint(op.f("ck_mentorships_status"), type_="check")
        batch_op.create_check_constraint("status", OLD_STATUSES)
        for column in ("flagged", "end_comment", "end_reason", "goals", "mid_term_on", "ends_on"):
            batch_op.drop_column(column)
    with op.batch_alter_table("alliances", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alliances_idle_months"), type_="check")
        batch_op.drop_constraint(op.f("ck_alliances_agreement_months"), type_="check")
        batch_op.drop_column("idle_months")
        batch_op.drop_column("agreement_months")
