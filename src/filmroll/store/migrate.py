"""Schema migrations with Alembic, run in-process. Only `filmroll db upgrade`, `serve`, `worker` and `demo` create
or migrate a schema; every other command checks it (:func:`require_current`) and says what to run, so a command
pointed at the wrong database never puts filmroll's tables into it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from filmroll.errors import DatabaseError
from filmroll.store.database import Database, shown_url

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

    return await _migrating(database, run)


async def downgrade(database: Database, revision: str) -> str:
    """Take the schema back to ``revision`` (each migration says what its downgrade keeps)."""

    def run(connection: Any) -> str:
        command.downgrade(_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision() or ""

    return await _migrating(database, run)


async def _migrating(database: Database, run: Callable[[Any], str]) -> str:
    """Run migrations in one transaction. On SQLite, with foreign keys off while they run: a migration that alters a
    table rebuilds it (create a copy, DROP the original, rename), and with foreign keys on, that DROP deletes every
    row that references the table, ON DELETE CASCADE (0015 rebuilding ``accounts`` took every token with it). The
    references are checked before the commit instead; a migration that broke one is rolled back."""
    async with database.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection if database.is_sqlite else None
        if raw is not None:  # outside a transaction: inside one, SQLite ignores this pragma
            await raw.execute("PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                revision = await connection.run_sync(run)
                if raw is not None:
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
                    if broken:
                        raise DatabaseError(f"migrating {shown_url(database.url)} would leave {len(broken)} row(s) "
                                            f"referring to rows that do not exist (first in table {broken[0][0]}); "
                                            "nothing was changed")
            return revision
        finally:
            if raw is not None:
                await raw.execute("PRAGMA foreign_keys=ON")


async def current(database: Database) -> str | None:
    def read(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)


async def require_current(database: Database) -> None:
    """Refuse a database whose schema is not this filmroll's head, saying why and what to run."""

    def read(connection: Any) -> tuple[str | None, list[str]]:
        return MigrationContext.configure(connection).get_current_revision(), inspect(connection).get_table_names()

    async with database.engine.connect() as connection:
        revision, tables = await connection.run_sync(read)
    latest = head()
    where = shown_url(database.url)
    if revision == latest:
        return
    if revision is None and not tables:
        raise DatabaseError(f"{where} has no filmroll tables yet; run `filmroll db upgrade` to create them")
    if revision is None:
        raise DatabaseError(f"{where} holds {len(tables)} other table(s) and no filmroll schema: is "
                            "FILMROLL_DATABASE_URL the right database? (`filmroll db upgrade` would add filmroll's "
                            "tables to it.) Nothing was changed")
    if revision.isdigit() and latest.isdigit() and int(revision) > int(latest):
        raise DatabaseError(f"{where} was upgraded by a newer filmroll (schema {revision}; this one knows up to "
                            f"{latest}): use that version")
    raise DatabaseError(f"{where} is at schema {revision}; this filmroll needs {latest}: back it up, then run "
                        "`filmroll db upgrade`")
