"""Schema migrations with Alembic, run in-process (`filmroll db upgrade`; `filmroll serve` upgrades on start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from filmroll.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


async def upgrade(database: Database, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is at afterwards."""

    def run(connection: Any) -> str:
        command.upgrade(_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision() or ""

    async with database.engine.begin() as connection:
        return await connection.run_sync(run)


async def downgrade(database: Database, revision: str) -> str:
    """Take the schema back to ``revision`` (each migration says what its downgrade keeps)."""

    def run(connection: Any) -> str:
        command.downgrade(_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision() or ""

    async with database.engine.begin() as connection:
        return await connection.run_sync(run)


async def current(database: Database) -> str | None:
    def read(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)
