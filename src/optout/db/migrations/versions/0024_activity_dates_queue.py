"""the decision index's queue: a reply moves activity dates without re-matching every rule

Revision ID: 0024_activity_dates_queue
Revises: 0023_audience_matches_no_rowid
Create Date: 2026-12-08 00:10:00

A reply (or a meeting, a call, a CRM activity) moves `last_replied_at` and
`last_activity_at` on the person and on their company. Each such update queued the person
for a re-match against every people-level rule, and the company for a re-match of all its
people against every rule that reads a company field and of its group against every
company-level rule, although only the rules that read one of these dates can answer
differently. Now, as 0013 did for the dates our own sends move, an update queues as before
only when another column changed; when one of these dates moved it queues kind 'r' (the
person) or 'd' (the company), which `decision_index.flush` re-matches only against the
rules that read the dates that moved. `ACTIVITY_COLUMNS` must name the columns behind
`decision_index.ACTIVITY_FIELDS`; a test holds them together.

SQLite's update triggers list the columns they compare (0013): these two leave the list.
PostgreSQL's compare the whole rows minus the columns named: these two join the names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_activity_dates_queue"
down_revision = "0023_audience_matches_no_rowid"
branch_labels = None
depends_on = None

ACTIVITY_COLUMNS = {
    "people": ("last_replied_at", "last_activity_at"),
    "companies": ("last_replied_at", "last_activity_at"),
}
_KIND = {"people": "r", "companies": "d"}
# What the update triggers already left out (0013, 0015): our own sends' dates, the marks.
_OWN_SEND_COLUMNS = {
    "people": ("last_emailed_at", "last_activity_any_at"),
    "companies": ("last_activity_any_at",),
}
_FLAG_COLUMNS = {"people": ("opted_out", "bounced", "complained"), "companies": ()}
_FIRST = 'NEW."id" IS NOT OLD."id"'


def _moved(columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f'NEW."{c}" {distinct} OLD."{c}"' for c in columns)


def _insert(table: str, txn: str) -> str:
    kind = _KIND[table]
    if txn == "0":
        return (
            f"INSERT INTO match_queue (workspace_id, kind, key) SELECT NEW.workspace_id, "
            f"'{kind}', NEW.id WHERE NOT EXISTS (SELECT 1 FROM match_queue AS q "
            f"WHERE q.txn = 0 AND q.kind = '{kind}' AND q.key = NEW.id);\n"
        )
    return (
        f"INSERT INTO match_queue (txn, workspace_id, kind, key) VALUES "
        f"({txn}, NEW.workspace_id, '{kind}', NEW.id) ON CONFLICT DO NOTHING;\n"
    )


# SQLite ------------------------------------------------------------------------------------


def _compared(column: str) -> str:
    return f' OR NEW."{column}" IS NOT OLD."{column}"'


def _sqlite_update_trigger(table: str, *, compare_dates: bool) -> None:
    """Re-create `match_queue_<table>_update` with the activity dates in or out of the
    columns it compares."""
    name = f"match_queue_{table}_update"
    sql = op.get_bind().scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
    )
    if not sql or _FIRST not in str(sql) or " BEGIN\n" not in str(sql):
        raise RuntimeError(f"the trigger {name} of migrations 0003 and 0013 is missing or changed")
    head, body = str(sql).split(" BEGIN\n", 1)
    for column in ACTIVITY_COLUMNS[table]:
        listed = _compared(column) in head
        if listed is compare_dates:
            raise RuntimeError(f"the trigger {name} does not list {column} as expected")
        if compare_dates:
            head = head.replace(_FIRST, _FIRST + _compared(column), 1)
        else:
            head = head.replace(_compared(column), "", 1)
    op.execute(f"DROP TRIGGER {name}")
    op.execute(f"{head} BEGIN\n{body}")


def _sqlite_upgrade() -> None:
    for table, columns in ACTIVITY_COLUMNS.items():
        _sqlite_update_trigger(table, compare_dates=False)
        op.execute(
            f"CREATE TRIGGER match_queue_{table}_activity AFTER UPDATE OF "
            f"{', '.join(columns)} ON {table} FOR EACH ROW WHEN {_moved(columns, 'IS NOT')} "
            f"BEGIN\n{_insert(table, '0')}END"
        )


def _sqlite_downgrade() -> None:
    for table in ACTIVITY_COLUMNS:
        op.execute(f"DROP TRIGGER match_queue_{table}_activity")
        _sqlite_update_trigger(table, compare_dates=True)


# PostgreSQL --------------------------------------------------------------------------------


def _pg_update_trigger(table: str, *, skip_dates: bool) -> None:
    """Re-create `match_queue_<table>_update`: it fires when a column other than the
    skipped ones moved (and, on people, no mark moved), as 0013 and 0015 made it."""
    skipped = (
        *_OWN_SEND_COLUMNS[table],
        *_FLAG_COLUMNS[table],
        *(ACTIVITY_COLUMNS[table] if skip_dates else ()),
    )
    names = ", ".join(f"'{c}'" for c in skipped)
    condition = (
        f"(to_jsonb(NEW) - ARRAY[{names}]) IS DISTINCT FROM (to_jsonb(OLD) - ARRAY[{names}])"
    )
    if _FLAG_COLUMNS[table]:
        still = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _FLAG_COLUMNS[table])
        condition = f"({still}) AND {condition}"
    op.execute(f"DROP TRIGGER match_queue_{table}_update ON {table}")
    op.execute(
        f"CREATE TRIGGER match_queue_{table}_update AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN ({condition}) EXECUTE FUNCTION match_queue_{table}()"
    )


def _pg_upgrade() -> None:
    for table, columns in ACTIVITY_COLUMNS.items():
        _pg_update_trigger(table, skip_dates=True)
        op.execute(
            f"CREATE FUNCTION match_queue_{table}_activity() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$\nBEGIN\n{_insert(table, 'txid_current()')}RETURN NEW;\nEND\n$$"
        )
        op.execute(
            f"CREATE TRIGGER match_queue_{table}_activity AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} FOR EACH ROW WHEN ({_moved(columns, 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION match_queue_{table}_activity()"
        )


def _pg_downgrade() -> None:
    for table in ACTIVITY_COLUMNS:
        op.execute(f"DROP TRIGGER match_queue_{table}_activity ON {table}")
        op.execute(f"DROP FUNCTION match_queue_{table}_activity()")
        _pg_update_trigger(table, skip_dates=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    else:
        _sqlite_downgrade()
