"""audience members stored in one b-tree fewer on SQLite

Revision ID: 0023_audience_matches_no_rowid
Revises: 0022_outbound_message_id_index
Create Date: 2026-12-07 21:00:00

An audience edit writes a row of `audience_matches` for every person who comes to match
and deletes one for every person who leaves: 220,000 rows when a 120,000-person audience
of a 1,000,000-person workspace becomes a 100,000-person one. On SQLite the table had a
hidden row number besides its (audience, person) key, so each row lived in three b-trees
(the rows by number, the key, the person index); as a `WITHOUT ROWID` table the key is
the table, and each row is written to two. PostgreSQL is unchanged. The rows are kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_audience_matches_no_rowid"
down_revision = "0022_outbound_message_id_index"
branch_labels = None
depends_on = None

TABLE = "audience_matches"
INDEX = "ix_audience_matches_person"


def upgrade() -> None:
    _rebuild(without_rowid=True)


def downgrade() -> None:
    _rebuild(without_rowid=False)


def _rebuild(*, without_rowid: bool) -> None:
    """Copy the rows into a table of the new kind, in key order, and take its place."""
    if op.get_bind().dialect.name != "sqlite":
        return
    building = f"_{TABLE}_rebuilt"
    op.create_table(
        building,
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audience_id"],
            ["audiences.id"],
            name="fk_audience_matches_audience_id_audiences",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name="fk_audience_matches_person_id_people",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("audience_id", "person_id", name="pk_audience_matches"),
        sqlite_with_rowid=not without_rowid,
    )
    op.execute(
        f"INSERT INTO {building} (audience_id, person_id) "
        f"SELECT audience_id, person_id FROM {TABLE} ORDER BY audience_id, person_id"
    )
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
    op.rename_table(building, TABLE)
    op.create_index(INDEX, TABLE, ["person_id", "audience_id"])
