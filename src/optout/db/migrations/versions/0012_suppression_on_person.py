"""opt-out and hard bounce on the person row, kept from the suppressions by triggers

Revision ID: 0012_suppression_on_person
Revises: 0011_matches_by_person_and_rule
Create Date: 2026-12-03 18:10:00

Every write that can change them goes through a trigger: a suppression inserted, deleted
or changed; a person inserted or given another address. The decision index's queue
ignores an update that only moves these two columns (no exclusion reads them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from optout.db.statistics import ANALYSIS_LIMIT

revision = "0012_suppression_on_person"
down_revision = "0011_matches_by_person_and_rule"
branch_labels = None
depends_on = None

_FLAGS = {"opt_out": "opted_out", "bounce": "bounced"}


def _is_suppressed(kind: str, person: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM suppressions AS s WHERE s.workspace_id = {person}.workspace_id "
        f"AND s.email = {person}.email AND s.kind = '{kind}')"
    )


def _refresh(where: str) -> str:
    """One statement that sets both columns from the suppressions, for people `where`."""
    sets = ", ".join(
        f"{column} = {_is_suppressed(kind, 'people')}" for kind, column in _FLAGS.items()
    )
    return f"UPDATE people SET {sets} WHERE {where};\n"


def _of(row: str) -> str:
    return f"workspace_id = {row}.workspace_id AND email = {row}.email"


# What each trigger does, the same on both databases; ROW is NEW or OLD.
_SUPPRESSION_INSERT = _refresh(_of("NEW"))
_SUPPRESSION_DELETE = _refresh(_of("OLD"))
_SUPPRESSION_UPDATE = _refresh(f"({_of('OLD')}) OR ({_of('NEW')})")
# A new person, or one given another address: only when there is something to set or clear.
_PERSON_WRITE = _refresh(
    "id = NEW.id AND (NEW.opted_out OR NEW.bounced OR EXISTS (SELECT 1 FROM suppressions AS s "
    "WHERE s.workspace_id = NEW.workspace_id AND s.email = NEW.email))"
)
_FLAGS_STILL = (
    "NEW.opted_out IS NOT DISTINCT FROM OLD.opted_out "
    "AND NEW.bounced IS NOT DISTINCT FROM OLD.bounced"
)


def _sqlite() -> None:
    for name, event, body in (
        ("suppression_insert", "AFTER INSERT ON suppressions", _SUPPRESSION_INSERT),
        ("suppression_delete", "AFTER DELETE ON suppressions", _SUPPRESSION_DELETE),
        ("suppression_update", "AFTER UPDATE ON suppressions", _SUPPRESSION_UPDATE),
        ("person_insert", "AFTER INSERT ON people", _PERSON_WRITE),
        ("person_email", "AFTER UPDATE OF email, workspace_id ON people", _PERSON_WRITE),
    ):
        op.execute(f"CREATE TRIGGER people_flags_{name} {event} FOR EACH ROW BEGIN\n{body}END")
    # The decision index's queue: skip an update that changed nothing but the flags.
    bind = op.get_bind()
    queue = bind.scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE name = 'match_queue_people_update'")
    )
    if not queue or "FOR EACH ROW BEGIN" not in queue:
        raise RuntimeError("the people queue trigger of migration 0003 is missing or changed")
    op.execute("DROP TRIGGER match_queue_people_update")
    condition = _FLAGS_STILL.replace("IS NOT DISTINCT FROM", "IS")
    op.execute(queue.replace("FOR EACH ROW BEGIN", f"FOR EACH ROW WHEN {condition} BEGIN", 1))


def _postgresql() -> None:
    for name, table, event, body in (
        ("suppression_insert", "suppressions", "AFTER INSERT", _SUPPRESSION_INSERT),
        ("suppression_delete", "suppressions", "AFTER DELETE", _SUPPRESSION_DELETE),
        ("suppression_update", "suppressions", "AFTER UPDATE", _SUPPRESSION_UPDATE),
        ("person_insert", "people", "AFTER INSERT", _PERSON_WRITE),
        ("person_email", "people", "AFTER UPDATE OF email, workspace_id", _PERSON_WRITE),
    ):
        result = "OLD" if "DELETE" in event else "NEW"
        op.execute(
            f"CREATE FUNCTION people_flags_{name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body}RETURN {result};\nEND\n$$"
        )
        op.execute(
            f"CREATE TRIGGER people_flags_{name} {event} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION people_flags_{name}()"
        )
    # The decision index's queue: inserts as before; updates unless only the flags moved.
    op.execute("DROP TRIGGER match_queue_people_write ON people")
    op.execute(
        "CREATE TRIGGER match_queue_people_write AFTER INSERT ON people "
        "FOR EACH ROW EXECUTE FUNCTION match_queue_people()"
    )
    op.execute(
        "CREATE TRIGGER match_queue_people_update AFTER UPDATE ON people FOR EACH ROW "
        f"WHEN ({_FLAGS_STILL}) "
        "EXECUTE FUNCTION match_queue_people()"
    )


def upgrade() -> None:
    for column in _FLAGS.values():
        op.add_column(
            "people", sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # The people who are suppressed now, set-based.
    op.execute(
        _refresh(
            "EXISTS (SELECT 1 FROM suppressions AS s WHERE s.workspace_id = people.workspace_id "
            "AND s.email = people.email)"
        ).rstrip(";\n")
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql()
    else:
        _sqlite()
    # The eligible set reads every person of a workspace from this index alone.
    op.drop_index("ix_people_ws_id", table_name="people")
    op.create_index(
        "ix_people_ws_id", "people", ["workspace_id", "id", "company_id", "opted_out", "bounced"]
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.scalar(
        sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ):
        # A database with planner statistics gets them for the new index too: without,
        # SQLite guesses its selectivity and may prefer it where another index is better.
        op.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        op.execute("ANALYZE people")


def downgrade() -> None:
    raise NotImplementedError("0012 is not reversible")
