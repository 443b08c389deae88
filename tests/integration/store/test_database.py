"""The storage engine does what the store's docstring promises, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from filmroll.errors import ConfigError
from filmroll.secret import Secret
from filmroll.store import accounts, migrate, tokens
from filmroll.store.database import Database, async_url
from filmroll.store.lease import claim_one
from filmroll.vault import Keyring, Vault, generate_key, parse_keys

pytestmark = pytest.mark.anyio


async def test_sqlite_runs_in_wal_with_foreign_keys_and_durable_commits(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with database.transaction() as session:
            modes = [(await session.execute(text(f"PRAGMA {name}"))).scalar_one()
                     for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")]
        assert modes == ["wal", 1, 2, 30_000]  # synchronous 2 = FULL
    finally:
        await database.dispose()


async def test_the_sqlite_url_timeout_sets_the_busy_timeout(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'x.db'}?timeout=2.5")
    try:
        async with database.transaction() as session:
            assert (await session.execute(text("PRAGMA busy_timeout"))).scalar_one() == 2500
    finally:
        await database.dispose()
    for bad in ("0", "-1", "soon", "nan", "99999"):
        with pytest.raises(ConfigError, match="timeout="):
            Database(f"sqlite:///{tmp_path / 'x.db'}?timeout={bad}")


async def test_concurrent_read_then_write_transactions_never_fail_with_locked(tmp_path):
    """Deferred transactions that read then write fail at once with "database is locked"; ours wait instead."""
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await migrate.upgrade(database)
        now = datetime.now(UTC)
        async with database.transaction() as session:
            await accounts.upsert(
                session, ig_user_id="17841400000000001", app_scoped_id="1",
                profile={"username": "a"}, now=now)

        async def bump(i: int) -> None:
            async with database.transaction() as session:
                row = (await session.execute(text("SELECT followers_count FROM accounts"))).scalar_one()
                await asyncio.sleep(0.01)  # hold the transaction open across the read and the write
                await session.execute(text("UPDATE accounts SET followers_count = :n"), {"n": (row or 0) + 1})

        await asyncio.gather(*(bump(i) for i in range(20)))
        async with database.read() as session:
            assert (await session.execute(text("SELECT followers_count FROM accounts"))).scalar_one() == 20
    finally:
        await database.dispose()


async def test_fenced_token_write_under_concurrency(database_url):
    database = Database(database_url)
    vault = Vault(Keyring(parse_keys(generate_key())))
    try:
        now = datetime.now(UTC)
        async with database.transaction() as session:
            account, _ = await accounts.upsert(
                session, ig_user_id="17841400000000002", app_scoped_id="1",
                profile={"username": "b"}, now=now)
            token = await tokens.put(session, account.id, vault.seal(Secret("t0"), account.id), kind="long",
                                     permissions=(), issued_at=now, expires_at=now + timedelta(days=60),
                                     next_refresh_at=None)
        version = token.version
        async with database.transaction() as session:
            assert await claim_one(session, tokens.REFRESHES, account.id, owner="w", now=now,
                                   lease=timedelta(minutes=1))

        async def writer(i: int) -> bool:
            sealed = vault.seal(Secret(f"t{i}"), account.id)
            async with database.transaction() as session:
                return await tokens.store_refreshed(
                    session, owner="w", account_id=account.id, version=version, ciphertext=sealed.ciphertext,
                    key_id=sealed.key_id, issued_at=now, expires_at=now, refreshed_at=now, next_refresh_at=now)

        results = await asyncio.gather(*(writer(i) for i in range(1, 9)))
        assert results.count(True) == 1  # eight writers read the same version; exactly one may write
    finally:
        await database.dispose()


def test_database_urls():
    assert async_url("sqlite:///filmroll.db") == "sqlite+aiosqlite:///filmroll.db"
    assert async_url("postgresql://u:p@h/db").startswith("postgresql+asyncpg://u:p@h/db")
    for bad in ("mysql://h/db", "not a url"):
        with pytest.raises(ConfigError):
            async_url(bad)


async def test_migrations_build_exactly_the_models(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from filmroll.store.tables import Base

    database = Database(database_url)
    try:
        assert await migrate.current(database) == migrate.head()
        async with database.engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
        assert diff == []
    finally:
        await database.dispose()


async def test_the_sync_interval_keeps_its_meaning_through_every_migration(database_url):
    """0007: 600 s was the only interval ever written, so it means "the default" (NULL); 0008: the column counts
    minutes; 0017 moves it to the account's source. Downgrades give back what was there."""
    database = Database(database_url)
    insert = text("INSERT INTO accounts (ig_user_id, slug, status, sync_interval, sync_failures, sync_error, "
                  "connected_at, created_at, updated_at) "
                  "VALUES (:ig, :ig, 'active', :interval, 0, :error, :now, :now, :now)")
    seconds = text("SELECT ig_user_id, sync_interval FROM accounts ORDER BY ig_user_id")
    # Since 0017 the sync's columns are the account's own source's.
    minutes = text("SELECT a.ig_user_id, s.sync_interval_minutes, s.sync_failure_kind, a.provider FROM accounts a "
                   "JOIN sources s ON s.account_id = a.id AND s.kind = 'account' ORDER BY a.ig_user_id")
    try:
        assert await migrate.downgrade(database, "0006") == "0006"
        async with database.transaction() as session:
            for ig, interval, error in (("1001", 600, None), ("1002", 1800, "RateLimitedError: wait"),
                                        ("1003", 90, "TransportError: down")):
                await session.execute(insert, {"ig": ig, "interval": interval, "error": error,
                                               "now": datetime.now(UTC)})
        assert await migrate.upgrade(database, "0007") == "0007"
        async with database.read() as session:
            assert (await session.execute(seconds)).all() == [("1001", None), ("1002", 1800), ("1003", 90)]
        assert await migrate.upgrade(database) == migrate.head()
        async with database.read() as session:
            assert (await session.execute(minutes)).all() == [
                ("1001", None, None, "instagram_login"), ("1002", 30, "throttled", "instagram_login"),
                ("1003", 2, "temporary", "instagram_login")]
        await migrate.downgrade(database, "0006")
        async with database.read() as session:
            assert (await session.execute(seconds)).all() == [("1001", 600), ("1002", 1800), ("1003", 120)]
    finally:
        await database.dispose()
