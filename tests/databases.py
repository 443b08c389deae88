"""Real databases for tests: a SQLite file per test, or a PostgreSQL database cloned from a migrated template."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg

from filmroll.store import migrate
from filmroll.store.database import Database
from tests import aio

PG_ADMIN_URL = os.environ.get("FILMROLL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_TEMPLATE = f"filmroll_template_{os.getpid()}"


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _build_template() -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"')
    await _admin(f'CREATE DATABASE "{_TEMPLATE}"')
    database = Database(_pg_url(_TEMPLATE))
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


_template_ready = False


def postgres_database() -> tuple[str, str]:
    """Create a fresh migrated database; returns (url, name). Runs its own event loop (call from sync code)."""
    global _template_ready
    if not _template_ready:
        aio.run(_build_template())
        _template_ready = True
    name = f"filmroll_test_{uuid.uuid4().hex[:12]}"
    aio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"'))
    return _pg_url(name), name


def sqlite_template(path: Path) -> Path:
    """A migrated SQLite file to copy: closed, so the WAL is checkpointed into it and the copy is whole."""

    async def build() -> None:
        database = Database(f"sqlite:///{path}")
        try:
            await migrate.upgrade(database)
        finally:
            await database.dispose()

    aio.run(build())
    assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0
    return path


def drop_postgres_database(name: str) -> None:
    aio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_template() -> None:
    if _template_ready:
        aio.run(_admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)'))
