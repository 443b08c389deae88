"""Alembic environment: run with the connection filmroll hands in (see store/migrate.py)."""

from alembic import context

from filmroll.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
