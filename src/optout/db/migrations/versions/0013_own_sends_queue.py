"""the decision index's queue: a send of ours moves activity dates without re-matching every
rule

Revision ID: 0013_own_sends_queue
Revises: 0012_suppression_on_person
Create Date: 2026-12-04 01:20:00

Recording a sent email moves `last_emailed_at` and `last_activity_any_at` on the person and
`last_activity_any_at` on the company. Each such update queued the person, and every person
and the group of the company, for a re-match against every rule, which is most of what a
worker did. Now an update queues as before only when another column changed; when one of
these moved it queues kind 'a' (the person) or 'b' (the company), which
`decision_index.flush` re-matches only when a rule of the workspace reads one of these
fields, and otherwise drops. `OWN_SEND_COLUMNS` must name the columns behind
`decision_index.OWN_SEND_FIELDS`; a test holds them together.

SQLite compares the other columns one by one, as the table has them now: a later migration
that adds a column to people or companies re-creates the update triggers (a test fails
until it does). PostgreSQL compares the whole rows minus these columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_own_sends_queue"
down_revision = "0012_suppression_on_person"
branch_labels = None
depends_on = None

OWN_SEND_COLUMNS = {
    "people": ("last_emailed_at", "last_activity_any_at"),
    "companies": ("last_activity_any_at",),
}
# Kept from the suppressions; an update that moves only them never queued (0012).
_FLAG_COLUMNS = {"people": ("opted_out", "bounced"), "companies": ()}
_KIND = {"people": "a", "companies": "b"}


def _moved(columns: tuple[str, ...], distinct: str) -> str:
    return " OR ".join(f'NEW."{c}" {distinct} OLD."{c}"' for c in columns)


def _own_send_insert(table: str, txn: str) -> str:
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


def _sqlite_others_moved(table: str) -> str:
    skipped = set(OWN_SEND_COLUMNS[table]) | set(_FLAG_COLUMNS[table])
    columns = [
        row[1]
        for row in op.get_bind().exec_driver_sql(f"PRAGMA table_info({table})")
        if row[1] not in skipped
    ]
    return f"({_moved(tuple(columns), 'IS NOT')})"


def _sqlite_update_trigger(table: str) -> tuple[str, str]:
    """The update trigger of `table` as its head (up to its body) and its body."""
    name = f"match_queue_{table}_update"
    sql = op.get_bind().scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
    )
    if not sql or "FOR EACH ROW" not in sql or " BEGIN\n" not in sql:
        raise RuntimeError(f"the trigger {name} of migrations 0003 and 0012 is missing or changed")
    head, body = str(sql).split(" BEGIN\n", 1)
    return head, body


def _sqlite_upgrade() -> None:
    for table, columns in OWN_SEND_COLUMNS.items():
        head, body = _sqlite_update_trigger(table)
        joiner = " AND " if " WHEN " in head else " WHEN "
        op.execute(f"DROP TRIGGER match_queue_{table}_update")
        op.execute(f"{head}{joiner}{_sqlite_others_moved(table)} BEGIN\n{body}")
        op.execute(
            f"CREATE TRIGGER match_queue_{table}_own_send AFTER UPDATE OF "
            f"{', '.join(columns)} ON {table} FOR EACH ROW WHEN {_moved(columns, 'IS NOT')} "
            f"BEGIN\n{_own_send_insert(table, '0')}END"
        )


def _sqlite_downgrade() -> None:
    for table in OWN_SEND_COLUMNS:
        op.execute(f"DROP TRIGGER match_queue_{table}_own_send")
        head, body = _sqlite_update_trigger(table)
        added = _sqlite_others_moved(table)
        head = head.replace(f" AND {added}", "").replace(f" WHEN {added}", "")
        op.execute(f"DROP TRIGGER match_queue_{table}_update")
        op.execute(f"{head} BEGIN\n{body}")


def _pg_others_moved(table: str) -> str:
    skipped = ", ".join(f"'{c}'" for c in (*OWN_SEND_COLUMNS[table], *_FLAG_COLUMNS[table]))
    return f"(to_jsonb(NEW) - ARRAY[{skipped}]) IS DISTINCT FROM (to_jsonb(OLD) - ARRAY[{skipped}])"


_PG_FLAGS_STILL = (
    "NEW.opted_out IS NOT DISTINCT FROM OLD.opted_out "
    "AND NEW.bounced IS NOT DISTINCT FROM OLD.bounced"
)


def _pg_upgrade() -> None:
    # companies: one trigger for inserts and updates before; now one for each.
    op.execute("DROP TRIGGER match_queue_companies_write ON companies")
    op.execute(
        "CREATE TRIGGER match_queue_companies_write AFTER INSERT ON companies "
        "FOR EACH ROW EXECUTE FUNCTION match_queue_companies()"
    )
    op.execute("DROP TRIGGER match_queue_people_update ON people")
    for table, condition in (
        ("people", f"({_PG_FLAGS_STILL}) AND {_pg_others_moved('people')}"),
        ("companies", _pg_others_moved("companies")),
    ):
        op.execute(
            f"CREATE TRIGGER match_queue_{table}_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION match_queue_{table}()"
        )
        columns = OWN_SEND_COLUMNS[table]
        op.execute(
            f"CREATE FUNCTION match_queue_{table}_own_send() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$\nBEGIN\n{_own_send_insert(table, 'txid_current()')}RETURN NEW;\nEND\n$$"
        )
        op.execute(
            f"CREATE TRIGGER match_queue_{table}_own_send AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} FOR EACH ROW WHEN ({_moved(columns, 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION match_queue_{table}_own_send()"
        )


def _pg_downgrade() -> None:
    for table in OWN_SEND_COLUMNS:
        op.execute(f"DROP TRIGGER match_queue_{table}_own_send ON {table}")
        op.execute(f"DROP FUNCTION match_queue_{table}_own_send()")
        op.execute(f"DROP TRIGGER match_queue_{table}_update ON {table}")
    op.execute(
        "CREATE TRIGGER match_queue_people_update AFTER UPDATE ON people FOR EACH ROW "
        f"WHEN ({_PG_FLAGS_STILL}) EXECUTE FUNCTION match_queue_people()"
    )
    op.execute("DROP TRIGGER match_queue_companies_write ON companies")
    op.execute(
        "CREATE TRIGGER match_queue_companies_write AFTER INSERT OR UPDATE ON companies "
        "FOR EACH ROW EXECUTE FUNCTION match_queue_companies()"
    )


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
