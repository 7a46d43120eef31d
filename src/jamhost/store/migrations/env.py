"""Alembic environment: run against the connection jamhost hands in (see store.migrate)."""

from __future__ import annotations

from alembic import context

from jamhost.store.sql.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - jamhost always passes a connection
    raise RuntimeError("run migrations through `jamhost migrate`")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
