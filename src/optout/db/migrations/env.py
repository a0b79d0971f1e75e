"""Alembic environment: runs on the connection handed over by `optout.db.migrate`."""

from __future__ import annotations

from alembic import context

from optout.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through optout.db.migrate.upgrade()")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
