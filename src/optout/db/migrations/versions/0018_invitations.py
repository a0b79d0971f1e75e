"""invitations: membership of a workspace for someone who accepts it

Revision ID: 0018_invitations
Revises: 0017_mailboxes
Create Date: 2026-12-07 08:00:00

An admin no longer adds an existing user of another workspace as a member: the address
is invited (`invitations`, one row per workspace and address; inviting again updates
it), and the user it belongs to accepts or declines after signing in. `status` is
pending, accepted or declined; `answered_at` says when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_invitations"
down_revision = "0017_mailboxes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invited_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('member', 'admin')", name=op.f("ck_invitations_role")),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined')", name=op.f("ck_invitations_status")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_invitations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint(
            "workspace_id", "email", name=op.f("uq_invitations_workspace_id_email")
        ),
    )
    op.create_index("ix_invitations_email", "invitations", ["email", "status"])


def downgrade() -> None:
    op.drop_index("ix_invitations_email", table_name="invitations")
    op.drop_table("invitations")
