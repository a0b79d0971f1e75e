"""stored matches indexed by person (or group) and rule, so a person's matches are read
from the index alone

Revision ID: 0011_matches_by_person_and_rule
Revises: 0010_deployment_settings
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011_matches_by_person_and_rule"
down_revision = "0010_deployment_settings"
branch_labels = None
depends_on = None

_INDEXES = (
    ("exclusion_matches", "person_id", "ix_exclusion_matches_person"),
    ("exclusion_group_matches", "group_id", "ix_exclusion_group_matches_group"),
)


def upgrade() -> None:
    for table, key, old in _INDEXES:
        op.create_index(f"{old}_rule", table, [key, "exclusion_id"])
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, key, old in _INDEXES:
        op.create_index(old, table, [key])
        op.drop_index(f"{old}_rule", table_name=table)
