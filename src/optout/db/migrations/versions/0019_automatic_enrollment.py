"""automatic enrollment: stored audience memberships and the queue of who to enroll

Revision ID: 0019_automatic_enrollment
Revises: 0018_invitations
Create Date: 2026-12-07 11:00:00

A sequence may enroll its audience by itself (`sequences.auto_enroll`, between the
optional `auto_enroll_from` and `auto_enroll_until`). The members of the audiences such
sequences read are stored like an exclusion's matches (`audience_matches`, true at
`audiences.matched_at`) and kept true by the same flush. A person who comes to match, or
who may be enrolled again, waits in `enrollment_queue` (one row per sequence and person,
in the order they were queued) for the next pass that enrolls them. A not-enrolled
person whose reason ends with time (a cooldown, a company's cap) says when to ask again
(`enrollment_skips.retry_at`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_automatic_enrollment"
down_revision = "0018_invitations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sequences",
        sa.Column("auto_enroll", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("sequences", sa.Column("auto_enroll_from", sa.DateTime(), nullable=True))
    op.add_column("sequences", sa.Column("auto_enroll_until", sa.DateTime(), nullable=True))
    op.add_column("audiences", sa.Column("matched_at", sa.DateTime(), nullable=True))
    op.add_column("enrollment_skips", sa.Column("retry_at", sa.DateTime(), nullable=True))
    op.create_index("ix_enrollment_skips_retry", "enrollment_skips", ["retry_at"])
    op.create_table(
        "audience_matches",
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audience_id"],
            ["audiences.id"],
            name=op.f("fk_audience_matches_audience_id_audiences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_audience_matches_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audience_id", "person_id", name=op.f("pk_audience_matches")),
    )
    op.create_index("ix_audience_matches_person", "audience_matches", ["person_id", "audience_id"])
    op.create_table(
        "enrollment_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_enrollment_queue_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_enrollment_queue_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_enrollment_queue_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_queue")),
        sa.UniqueConstraint(
            "sequence_id", "person_id", name=op.f("uq_enrollment_queue_sequence_id_person_id")
        ),
    )
    op.create_index("ix_enrollment_queue_workspace", "enrollment_queue", ["workspace_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_queue_workspace", table_name="enrollment_queue")
    op.drop_table("enrollment_queue")
    op.drop_index("ix_audience_matches_person", table_name="audience_matches")
    op.drop_table("audience_matches")
    op.drop_index("ix_enrollment_skips_retry", table_name="enrollment_skips")
    # Plain DROP COLUMN, not a batch copy: on SQLite a copy drops the old table, and its
    # foreign keys' cascades would delete the enrollments of every sequence.
    op.execute("ALTER TABLE enrollment_skips DROP COLUMN retry_at")
    op.execute("ALTER TABLE audiences DROP COLUMN matched_at")
    for column in ("auto_enroll_until", "auto_enroll_from", "auto_enroll"):
        op.execute(f"ALTER TABLE sequences DROP COLUMN {column}")
