"""Alembic environment: always run with a connection handed in by gateway.storage.db."""

from __future__ import annotations

from alembic import context

from gateway.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `sluis db upgrade`, which hands in a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
