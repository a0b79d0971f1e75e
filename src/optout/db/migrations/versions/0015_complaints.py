"""spam complaints: a suppression kind, a mark on the person row, an inbound message kind

Revision ID: 0015_complaints
Revises: 0014_domain_skeleton_indexes
Create Date: 2026-12-07 03:50:00

A complaint (a feedback-loop report about one of our emails) suppresses the address with
kind 'complaint'. As for opt-outs and bounces (0012), `people.complained` is kept from the
suppressions by the same triggers, now setting three columns, and the decision index's
queue ignores an update that only moves these marks. Inbound messages may be stored with
kind 'complaint'.

SQLite cannot change a CHECK constraint in place: `suppressions` and `inbound_messages`
are rebuilt from their own stored definitions with the constraint changed, and their
indexes re-created; nothing references either table. The triggers on people whose bodies
read `suppressions` are dropped first (SQLite's rename checks every trigger) and made
again after.

Downgrade keeps every complained address suppressed: a complaint becomes an opt-out (or
goes, where the address has opted out too), and inbound messages of kind 'complaint'
become 'unclassified'. The ledger keeps its lines as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optout.db.statistics import ANALYSIS_LIMIT

revision = "0015_complaints"
down_revision = "0014_domain_skeleton_indexes"
branch_labels = None
depends_on = None

# suppression kind: person column, before and after this migration.
_FLAGS_BEFORE = {"opt_out": "opted_out", "bounce": "bounced"}
_FLAGS_AFTER = {**_FLAGS_BEFORE, "complaint": "complained"}
# The check constraints that change, as (table, constraint, before, after).
_CHECKS = (
    (
        "suppressions",
        "ck_suppressions_kind",
        "kind IN ('opt_out', 'bounce')",
        "kind IN ('opt_out', 'bounce', 'complaint')",
    ),
    (
        "inbound_messages",
        "ck_inbound_messages_kind",
        "kind IN ('reply', 'unsubscribe', 'auto_reply', 'bounce', 'unclassified')",
        "kind IN ('reply', 'unsubscribe', 'auto_reply', 'bounce', 'unclassified', 'complaint')",
    ),
)
_OWN_SEND_COLUMNS = ("last_emailed_at", "last_activity_any_at")  # migration 0013
_INDEX = ("workspace_id", "id", "company_id")  # ix_people_ws_id, then the marks


# The triggers that keep the marks (as in 0012, for any set of marks) ----------------------


def _is_suppressed(kind: str, person: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM suppressions AS s WHERE s.workspace_id = {person}.workspace_id "
        f"AND s.email = {person}.email AND s.kind = '{kind}')"
    )


def _refresh(flags: dict[str, str], where: str) -> str:
    """One statement that sets every mark from the suppressions, for people `where`."""
    sets = ", ".join(
        f"{column} = {_is_suppressed(kind, 'people')}" for kind, column in flags.items()
    )
    return f"UPDATE people SET {sets} WHERE {where};\n"


def _of(row: str) -> str:
    return f"workspace_id = {row}.workspace_id AND email = {row}.email"


def _bodies(flags: dict[str, str]) -> tuple[tuple[str, str, str, str], ...]:
    """Each trigger as (name, table, event, body), the same on both databases."""
    marked = " OR ".join(f"NEW.{column}" for column in flags.values())
    person_write = _refresh(
        flags,
        f"id = NEW.id AND ({marked} OR EXISTS (SELECT 1 FROM suppressions AS s "
        "WHERE s.workspace_id = NEW.workspace_id AND s.email = NEW.email))",
    )
    return (
        ("suppression_insert", "suppressions", "AFTER INSERT", _refresh(flags, _of("NEW"))),
        ("suppression_delete", "suppressions", "AFTER DELETE", _refresh(flags, _of("OLD"))),
        (
            "suppression_update",
            "suppressions",
            "AFTER UPDATE",
            _refresh(flags, f"({_of('OLD')}) OR ({_of('NEW')})"),
        ),
        ("person_insert", "people", "AFTER INSERT", person_write),
        ("person_email", "people", "AFTER UPDATE OF email, workspace_id", person_write),
    )


def _flags_still(flags: dict[str, str]) -> str:
    return " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in flags.values())


# SQLite ------------------------------------------------------------------------------------


def _sqlite_drop_flag_triggers(flags: dict[str, str]) -> None:
    for name, _table, _event, _body in _bodies(flags):
        op.execute(f"DROP TRIGGER people_flags_{name}")


def _sqlite_create_flag_triggers(flags: dict[str, str]) -> None:
    for name, table, event, body in _bodies(flags):
        op.execute(
            f"CREATE TRIGGER people_flags_{name} {event} ON {table} FOR EACH ROW BEGIN\n{body}END"
        )


def _sqlite_rebuild(table: str, old: str, new: str) -> None:
    """Rebuild `table` from its stored definition with the text `old` replaced by `new`,
    its rows and its indexes (SQLite's documented way to change a constraint)."""
    bind = op.get_bind()
    ddl = bind.scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
    )
    # A table renamed into place (by this migration) is stored with its name quoted.
    head = next(
        (
            h
            for h in (f"CREATE TABLE {table} (", f'CREATE TABLE "{table}" (')
            if str(ddl).startswith(h)
        ),
        None,
    )
    if not ddl or head is None or str(ddl).count(old) != 1:
        raise RuntimeError(f"the table {table} is not as the earlier migrations left it")
    indexes = [
        str(sql)
        for (sql,) in bind.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                "AND sql IS NOT NULL"
            ),
            {"t": table},
        )
    ]
    triggers = bind.scalar(
        sa.text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": table},
    )
    if triggers:
        raise RuntimeError(f"the table {table} has triggers this migration does not know")
    scratch = f"_new_{table}"
    op.execute(str(ddl).replace(head, f"CREATE TABLE {scratch} (", 1).replace(old, new))
    op.execute(f"INSERT INTO {scratch} SELECT * FROM {table}")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {scratch} RENAME TO {table}")
    for sql in indexes:
        op.execute(sql)


def _sqlite_analyze_people() -> None:
    # As in 0012: a database with planner statistics gets them for the changed index.
    if op.get_bind().scalar(
        sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ):
        op.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        op.execute("ANALYZE people")


def _sqlite_upgrade() -> None:
    _sqlite_drop_flag_triggers(_FLAGS_BEFORE)
    for table, _name, before, after in _CHECKS:
        _sqlite_rebuild(table, before, after)
    _add_column()
    _sqlite_create_flag_triggers(_FLAGS_AFTER)
    # The queue's update trigger compares the columns it listed when 0013 made it, which
    # `complained` is not one of: an update that moves only the marks queues nothing still.
    _reindex(_FLAGS_AFTER)
    _sqlite_analyze_people()


def _sqlite_downgrade() -> None:
    _sqlite_drop_flag_triggers(_FLAGS_AFTER)
    for table, _name, before, after in _CHECKS:
        _sqlite_rebuild(table, after, before)
    _reindex(_FLAGS_BEFORE)
    op.execute("ALTER TABLE people DROP COLUMN complained")
    _sqlite_create_flag_triggers(_FLAGS_BEFORE)
    _sqlite_analyze_people()


# PostgreSQL --------------------------------------------------------------------------------


def _pg_checks(index: int) -> None:
    """Set each changed check constraint to its text before (2) or after (3)."""
    for check in _CHECKS:
        table, name = check[0], check[1]
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check[index]})")


def _pg_functions(flags: dict[str, str]) -> None:
    for name, _table, event, body in _bodies(flags):
        result = "OLD" if "DELETE" in event else "NEW"
        op.execute(
            f"CREATE OR REPLACE FUNCTION people_flags_{name}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$\nBEGIN\n{body}RETURN {result};\nEND\n$$"
        )


def _pg_queue_trigger(flags: dict[str, str]) -> None:
    """The decision index's queue on people updates, as 0013 made it, for these marks:
    an update queues unless only marks or our own sends' dates moved."""
    skipped = ", ".join(f"'{c}'" for c in (*_OWN_SEND_COLUMNS, *flags.values()))
    others = (
        f"(to_jsonb(NEW) - ARRAY[{skipped}]) IS DISTINCT FROM (to_jsonb(OLD) - ARRAY[{skipped}])"
    )
    op.execute("DROP TRIGGER match_queue_people_update ON people")
    op.execute(
        "CREATE TRIGGER match_queue_people_update AFTER UPDATE ON people FOR EACH ROW "
        f"WHEN (({_flags_still(flags)}) AND {others}) EXECUTE FUNCTION match_queue_people()"
    )


def _pg_upgrade() -> None:
    _pg_checks(3)
    _add_column()
    _pg_functions(_FLAGS_AFTER)
    _pg_queue_trigger(_FLAGS_AFTER)
    _reindex(_FLAGS_AFTER)


def _pg_downgrade() -> None:
    _pg_checks(2)
    _pg_queue_trigger(_FLAGS_BEFORE)
    _pg_functions(_FLAGS_BEFORE)
    _reindex(_FLAGS_BEFORE)
    op.drop_column("people", "complained")


# Both --------------------------------------------------------------------------------------


def _add_column() -> None:
    op.add_column(
        "people", sa.Column("complained", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def _reindex(flags: dict[str, str]) -> None:
    """The eligible set reads every person of a workspace from this index alone, marks
    included (0012)."""
    op.drop_index("ix_people_ws_id", table_name="people")
    op.create_index("ix_people_ws_id", "people", [*_INDEX, *flags.values()])


def upgrade() -> None:
    # No complaint exists before this migration: every `complained` starts false.
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    # While the triggers still keep `opted_out`: complaints become opt-outs.
    op.execute(
        "UPDATE suppressions SET kind = 'opt_out' WHERE kind = 'complaint' AND NOT EXISTS "
        "(SELECT 1 FROM suppressions AS o WHERE o.workspace_id = suppressions.workspace_id "
        "AND o.email = suppressions.email AND o.kind = 'opt_out')"
    )
    op.execute("DELETE FROM suppressions WHERE kind = 'complaint'")
    op.execute("UPDATE inbound_messages SET kind = 'unclassified' WHERE kind = 'complaint'")
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    else:
        _sqlite_downgrade()
