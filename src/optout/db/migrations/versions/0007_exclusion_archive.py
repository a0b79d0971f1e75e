"""archived exclusions, prefix-search indexes for people and companies, events by exclusion

Revision ID: 0007_exclusion_archive
Revises: 0005_in_doubt
Create Date: 2026-12-03 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_exclusion_archive"
down_revision = "0005_in_doubt"
branch_labels = None
depends_on = None

# On PostgreSQL a left-anchored LIKE uses a btree only with the pattern operator class
# (the default one follows the database's collation); SQLite answers the same search with
# a range on plain indexes, so the email and domain ones exist on PostgreSQL only (SQLite
# has them already: ix_people_ws_email, uq_companies_workspace_id_domain). The indexed
# expressions are those of `optout.services.reads.search`, written the same way.


def upgrade() -> None:
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    ops = " text_pattern_ops" if postgres else ""
    op.execute(
        "CREATE INDEX ix_people_ws_full_name ON people "
        f"(workspace_id, (lower(first_name || ' ' || last_name)){ops})"
    )
    op.execute(
        f"CREATE INDEX ix_people_ws_last_name ON people (workspace_id, (lower(last_name)){ops})"
    )
    op.execute(
        f"CREATE INDEX ix_companies_ws_name_key ON companies (workspace_id, (lower(name)){ops})"
    )
    if postgres:
        op.execute(
            "CREATE INDEX ix_people_ws_email_prefix ON people (workspace_id, email text_pattern_ops)"
        )
        op.execute(
            "CREATE INDEX ix_companies_ws_domain_prefix ON companies "
            "(workspace_id, domain text_pattern_ops)"
        )
    op.create_index("ix_events_exclusion", "events", ["exclusion_id", "id"], unique=False)
    # Newest first within a workspace, a page at a time (`services.reads.keyset`).
    op.create_index("ix_people_ws_id", "people", ["workspace_id", "id"], unique=False)
    op.create_index("ix_companies_ws_id", "companies", ["workspace_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_companies_ws_id", table_name="companies")
    op.drop_index("ix_people_ws_id", table_name="people")
    op.drop_index("ix_events_exclusion", table_name="events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_companies_ws_domain_prefix")
        op.execute("DROP INDEX ix_people_ws_email_prefix")
    op.execute("DROP INDEX ix_companies_ws_name_key")
    op.execute("DROP INDEX ix_people_ws_last_name")
    op.execute("DROP INDEX ix_people_ws_full_name")
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
