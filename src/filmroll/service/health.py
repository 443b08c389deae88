"""Is this process fit to serve? What a load balancer's ``/readyz`` asks: the database answers, its schema is the one
this code expects, every stored token's key is in the keyring, and the embedded worker (if any) can reach the
database. Each check says in words what is wrong; none reveals a secret or a connection string."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text

from filmroll import errors
from filmroll.store import migrate
from filmroll.store.database import Database, is_unavailable
from filmroll.store.tokens import key_ids_in_use
from filmroll.vault import Vault

CHECK_TIMEOUT = 3.0  # seconds: a load balancer's probe must not hang on a dead database


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def readiness(database: Database, vault: Vault, *, worker_ok: bool | None = None) -> list[Check]:
    checks: list[Check] = []
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with database.read() as session:
                await session.execute(text("SELECT 1"))
            revision = await migrate.current(database)
            async with database.read() as session:
                used = await key_ids_in_use(session)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return [Check("database", False, f"unreachable ({type(exc).__name__})")]
    checks.append(Check("database", True, "reachable"))
    head = migrate.head()
    checks.append(Check("schema", revision == head, "at head" if revision == head else
                        f"at {revision or 'nothing'}, this filmroll needs {head}: run `filmroll db upgrade`"))
    try:
        vault.keyring.require(used)
        checks.append(Check("keyring", True, f"reads all {sum(used.values())} stored token(s)"))
    except errors.KeyMissingError as exc:
        checks.append(Check("keyring", False, exc.message))
    if worker_ok is not None:
        checks.append(Check("worker", worker_ok, "reaching the database" if worker_ok else
                            "cannot reach the database; it retries by itself"))
    return checks
