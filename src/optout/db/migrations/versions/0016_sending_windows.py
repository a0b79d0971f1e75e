"""sending windows: a schedule on each sequence, a time zone on each person

Revision ID: 0016_sending_windows
Revises: 0015_complaints
Create Date: 2026-12-07 07:30:00

A sequence sends on some days of the week (`send_days`, a bit per day: Monday 1, Tuesday 2,
... Sunday 64) between two minutes of the day (`send_from_minute` inclusive,
`send_until_minute` exclusive, 0..1440), read in the recipient's time zone; its waits count
business days when `business_day_waits` is set. Sequences that exist before this migration
keep sending at any hour (every day, 0..1440), so nothing changes for them; the service
gives new sequences their schedule.

`people.time_zone` holds an IANA zone name (NULL: unknown). SQLite's update trigger of the
decision index's queue lists the columns it compares (0013): the new column is added to it,
so an update of it alone queues the person as any other column does.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016_sending_windows"
down_revision = "0015_complaints"
branch_labels = None
depends_on = None

_FIRST = 'NEW."id" IS NOT OLD."id"'
_ADDED = ' OR NEW."time_zone" IS NOT OLD."time_zone"'


def _sqlite_queue_trigger(*, add: bool) -> None:
    name = "match_queue_people_update"
    sql = op.get_bind().scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
    )
    if not sql or _FIRST not in str(sql):
        raise RuntimeError(f"the trigger {name} of migrations 0003 and 0013 is missing or changed")
    head, body = str(sql).split(" BEGIN\n", 1)
    head = head.replace(_FIRST, _FIRST + _ADDED) if add else head.replace(_ADDED, "")
    op.execute(f"DROP TRIGGER {name}")
    op.execute(f"{head} BEGIN\n{body}")


_SEQUENCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("send_days", sa.Integer(), nullable=False, server_default="127"),
    sa.Column("send_from_minute", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("send_until_minute", sa.Integer(), nullable=False, server_default="1440"),
    sa.Column("business_day_waits", sa.Boolean(), nullable=False, server_default=sa.false()),
)


def upgrade() -> None:
    for column in _SEQUENCE_COLUMNS:
        op.add_column("sequences", column)
    op.add_column("people", sa.Column("time_zone", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_queue_trigger(add=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_queue_trigger(add=False)
    op.execute("ALTER TABLE people DROP COLUMN time_zone")
    for column in reversed(_SEQUENCE_COLUMNS):
        op.execute(f"ALTER TABLE sequences DROP COLUMN {column.name}")
