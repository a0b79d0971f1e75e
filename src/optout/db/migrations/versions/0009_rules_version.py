"""rules version: a token on the workspace that changes with every write to its exclusions

Revision ID: 0009
Revises: 0008_jobs_review
Create Date: 2026-12-03 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008_jobs_review"
branch_labels = None
depends_on = None

# Random, never counted: a rolled-back write cannot leave behind a token that a later write
# would give again (readers cache the parsed rules by it, `services.exclusion_rules`).
_PG_RANDOM = "(floor(random() * 9.2e18))::bigint"


def upgrade() -> None:
    op.add_column(
        "workspaces",
        sa.Column("rules_version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"UPDATE workspaces SET rules_version = {_PG_RANDOM}")
        op.execute(
            f"""
            CREATE FUNCTION rules_version_bump() RETURNS trigger AS $$
            BEGIN
              IF TG_TABLE_NAME = 'workspaces' THEN
                NEW.rules_version := {_PG_RANDOM};
                RETURN NEW;
              END IF;
              IF TG_OP <> 'DELETE' THEN
                UPDATE workspaces SET rules_version = {_PG_RANDOM} WHERE id = NEW.workspace_id;
              END IF;
              IF TG_OP <> 'INSERT' THEN
                UPDATE workspaces SET rules_version = {_PG_RANDOM} WHERE id = OLD.workspace_id;
              END IF;
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER rules_version_new_workspace BEFORE INSERT ON workspaces "
            "FOR EACH ROW EXECUTE FUNCTION rules_version_bump()"
        )
        op.execute(
            "CREATE TRIGGER rules_version_exclusions AFTER INSERT OR UPDATE OR DELETE "
            "ON exclusions FOR EACH ROW EXECUTE FUNCTION rules_version_bump()"
        )
        return
    op.execute("UPDATE workspaces SET rules_version = random()")
    op.execute(
        "CREATE TRIGGER rules_version_new_workspace AFTER INSERT ON workspaces BEGIN "
        "UPDATE workspaces SET rules_version = random() WHERE id = NEW.id; END"
    )
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        extra = " OR id = OLD.workspace_id" if event == "UPDATE" else ""
        op.execute(
            f"CREATE TRIGGER rules_version_exclusions_{event.lower()} AFTER {event} "
            f"ON exclusions BEGIN UPDATE workspaces SET rules_version = random() "
            f"WHERE id = {row}.workspace_id{extra}; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS rules_version_exclusions ON exclusions")
        op.execute("DROP TRIGGER IF EXISTS rules_version_new_workspace ON workspaces")
        op.execute("DROP FUNCTION IF EXISTS rules_version_bump()")
    else:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS rules_version_exclusions_{event}")
        op.execute("DROP TRIGGER IF EXISTS rules_version_new_workspace")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("rules_version")
