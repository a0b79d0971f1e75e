"""indexes on the skeleton of company and email domains, for the look-alike search

Revision ID: 0014_domain_skeleton_indexes
Revises: 0013_own_sends_queue
Create Date: 2026-12-04 01:45:00

The preview of a rule that lists domains looks for domains in the data that read like a
listed one (`optout.services.exclusions.look_alikes`). It compared the skeleton of every
company or email domain of the workspace; with these indexes it looks up the skeletons of
the listed domains. The expression is `optout.db.skeletons.skeleton_sql`, written out here
as it is now: a later change of it needs a migration that rebuilds these indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optout.db.statistics import ANALYSIS_LIMIT

revision = "0014_domain_skeleton_indexes"
down_revision = "0013_own_sends_queue"
branch_labels = None
depends_on = None


def _skeleton(column: str) -> str:
    return (
        "replace(replace(replace(replace(replace(replace(replace(replace("
        f"lower({column}), '`', ''''), '\"', ''''''), '|', 'l'), '1', 'l'), 'I', 'l'), "
        "'0', 'O'), '%', 'º/₀'), 'm', 'rn')"
    )


_INDEXES = (
    ("ix_companies_ws_skeleton", "companies", "domain"),
    ("ix_people_ws_email_skeleton", "people", "email_domain"),
)


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.create_index(name, table, ["workspace_id", sa.text(_skeleton(column))])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.scalar(
        sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ):
        # As in 0012: a database with planner statistics gets them for the new indexes,
        # or SQLite guesses their selectivity and prefers them where they do not help.
        op.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        for _name, table, _column in _INDEXES:
            op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    for name, table, _column in _INDEXES:
        op.drop_index(name, table_name=table)
