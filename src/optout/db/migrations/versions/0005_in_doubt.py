"""in-doubt emails: the hand-over and the SMTP answer are recorded as they happen

Revision ID: 0005_in_doubt
Revises: 0004
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_in_doubt"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD = "status IN ('queued', 'sending', 'sent', 'cancelled')"
_NEW = "status IN ('queued', 'sending', 'sent', 'cancelled', 'in_doubt')"


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_doubt_resend_minutes", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("smtp_reply", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("in_doubt_at", sa.DateTime(), nullable=True))
        batch_op.drop_constraint(op.f("ck_outbound_emails_status"), type_="check")
        batch_op.create_check_constraint("status", _NEW)


def downgrade() -> None:
    op.execute(
        "UPDATE outbound_emails SET status = 'cancelled', "
        "cancel_reason = 'in doubt when the schema was downgraded' WHERE status = 'in_doubt'"
    )
    with op.batch_alter_table("outbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbound_emails_status"), type_="check")
        batch_op.create_check_constraint("status", _OLD)
        batch_op.drop_column("in_doubt_at")
        batch_op.drop_column("smtp_reply")
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("handed_over_at")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("in_doubt_resend_minutes")
