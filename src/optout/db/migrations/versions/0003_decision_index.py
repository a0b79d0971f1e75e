"""decision index: stored matches per exclusion and the triggers that queue stale rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002_company_association"
branch_labels = None
depends_on = None

# Every write to a row an exclusion can read queues what it makes stale (see
# `optout.services.decision_index`). kind 'p': a person; 'c': a company (its people); 'g': a
# linked-company group. Deletes queue before the row goes, while its links still exist.
_QUEUE = {
    "people": {
        "INSERT": [
            "SELECT NEW.workspace_id AS w, 'p' AS k, NEW.id AS x",
        ],
        "UPDATE": [
            "SELECT NEW.workspace_id AS w, 'p' AS k, NEW.id AS x",
        ],
        "DELETE": [],
    },
    "companies": {
        "INSERT": [
            "SELECT NEW.workspace_id AS w, 'c' AS k, NEW.id AS x",
            "SELECT NEW.workspace_id AS w, 'g' AS k, NEW.group_id AS x WHERE NEW.group_id IS NOT NULL",
        ],
        "UPDATE": [
            "SELECT NEW.workspace_id AS w, 'c' AS k, NEW.id AS x",
            "SELECT NEW.workspace_id AS w, 'g' AS k, NEW.group_id AS x WHERE NEW.group_id IS NOT NULL",
            "SELECT OLD.workspace_id AS w, 'g' AS k, OLD.group_id AS x WHERE OLD.group_id IS NOT NULL",
        ],
        "DELETE": [
            "SELECT OLD.workspace_id AS w, 'g' AS k, OLD.group_id AS x WHERE OLD.group_id IS NOT NULL",
            "SELECT workspace_id AS w, 'p' AS k, id AS x FROM people WHERE company_id = OLD.id",
        ],
    },
    "opportunities": {
        "INSERT": [
            "SELECT workspace_id AS w, 'g' AS k, group_id AS x FROM companies WHERE id = NEW.company_id AND group_id IS NOT NULL",
        ],
        "UPDATE": [
            "SELECT workspace_id AS w, 'g' AS k, group_id AS x FROM companies WHERE id IN (NEW.company_id, OLD.company_id) AND group_id IS NOT NULL",
            "SELECT NEW.workspace_id AS w, 'p' AS k, person_id AS x FROM opportunity_contacts WHERE opportunity_id = NEW.id",
        ],
        "DELETE": [
            "SELECT workspace_id AS w, 'g' AS k, group_id AS x FROM companies WHERE id = OLD.company_id AND group_id IS NOT NULL",
            "SELECT OLD.workspace_id AS w, 'p' AS k, person_id AS x FROM opportunity_contacts WHERE opportunity_id = OLD.id",
        ],
    },
    "opportunity_contacts": {
        "INSERT": [
            "SELECT workspace_id AS w, 'p' AS k, id AS x FROM people WHERE id = NEW.person_id",
        ],
        "UPDATE": [
            "SELECT workspace_id AS w, 'p' AS k, id AS x FROM people WHERE id IN (NEW.person_id, OLD.person_id)",
        ],
        "DELETE": [
            "SELECT workspace_id AS w, 'p' AS k, id AS x FROM people WHERE id = OLD.person_id",
        ],
    },
}


def _sqlite_triggers() -> list[str]:
    out = []
    for table, ops in _QUEUE.items():
        for operation, selects in ops.items():
            if not selects:
                continue
            when = "BEFORE" if operation == "DELETE" else "AFTER"
            # Not `INSERT OR IGNORE`: the statement that fires a trigger imposes its own
            # conflict handling on the trigger's inserts; an explicit test does not depend on it.
            body = "".join(
                "INSERT INTO match_queue (workspace_id, kind, key) SELECT w, k, x FROM "
                f"({select}) AS queued WHERE NOT EXISTS (SELECT 1 FROM match_queue AS q "
                "WHERE q.txn = 0 AND q.kind = queued.k AND q.key = queued.x);\n"
                for select in selects
            )
            out.append(
                f"CREATE TRIGGER match_queue_{table}_{operation.lower()} {when} {operation} "
                f"ON {table} FOR EACH ROW BEGIN\n{body}END"
            )
    return out


def _postgresql_triggers() -> list[str]:
    out = []
    for table, ops in _QUEUE.items():
        branches = []
        for operation, selects in ops.items():
            inserts = "".join(
                "INSERT INTO match_queue (txn, workspace_id, kind, key) "
                f"SELECT txid_current(), w, k, x FROM ({select}) AS queued"
                " ON CONFLICT DO NOTHING;\n"
                for select in selects
            )
            branches.append(f"IF TG_OP = '{operation}' THEN\n{inserts or 'NULL;'}\nEND IF;")
        function = f"match_queue_{table}"
        out.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
            + "\n".join(branches)
            + "\nIF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\nRETURN NEW;\nEND\n$$"
        )
        out.append(
            f"CREATE TRIGGER match_queue_{table}_write AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
        out.append(
            f"CREATE TRIGGER match_queue_{table}_delete BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    return out


def upgrade() -> None:
    op.add_column("exclusions", sa.Column("matched_at", sa.DateTime(), nullable=True))
    op.create_table(
        "exclusion_matches",
        sa.Column("exclusion_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exclusion_id"],
            ["exclusions.id"],
            name=op.f("fk_exclusion_matches_exclusion_id_exclusions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_exclusion_matches_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exclusion_id", "person_id", name=op.f("pk_exclusion_matches")),
    )
    op.create_index("ix_exclusion_matches_person", "exclusion_matches", ["person_id"], unique=False)
    op.create_table(
        "exclusion_group_matches",
        sa.Column("exclusion_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exclusion_id"],
            ["exclusions.id"],
            name=op.f("fk_exclusion_group_matches_exclusion_id_exclusions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "exclusion_id", "group_id", name=op.f("pk_exclusion_group_matches")
        ),
    )
    op.create_index(
        "ix_exclusion_group_matches_group", "exclusion_group_matches", ["group_id"], unique=False
    )
    op.create_table(
        "match_queue",
        sa.Column("txn", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("key", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("txn", "kind", "key", name=op.f("pk_match_queue")),
    )
    dialect = op.get_bind().dialect.name
    for statement in _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _QUEUE:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS match_queue_{table}_write ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS match_queue_{table}_delete ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS match_queue_{table}()")
        else:
            for operation in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS match_queue_{table}_{operation}")
    op.drop_table("match_queue")
    op.drop_index("ix_exclusion_group_matches_group", table_name="exclusion_group_matches")
    op.drop_table("exclusion_group_matches")
    op.drop_index("ix_exclusion_matches_person", table_name="exclusion_matches")
    op.drop_table("exclusion_matches")
    with op.batch_alter_table("exclusions") as batch:
        batch.drop_column("matched_at")
