"""WriteBatch: concurrent writes share a commit, each caller gets its own result, one bad write sinks no other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, event, select, text, update

from filmroll.store import accounts, sources
from filmroll.store.batch import Fenced, WriteBatch
from filmroll.store.database import Database
from filmroll.store.tables import Account, Source

pytestmark = pytest.mark.anyio


async def _accounts(database: Database, count: int) -> list[int]:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        return [(await accounts.upsert(
                session, ig_user_id=f"1784140000{i:07d}", app_scoped_id=str(i),
                profile={"username": f"u{i}"}, now=now))[0].id
                for i in range(count)]


async def test_concurrent_writes_share_commits_and_each_gets_its_result(database_url):
    database = Database(database_url)
    commits: list[int] = []
    event.listen(database.engine.sync_engine, "commit", lambda conn: commits.append(1))
    try:
        ids = await _accounts(database, 60)
        commits.clear()
        batch = WriteBatch(database)

        async def bump(account_id: int) -> int:
            async def write(session) -> int:  # type: ignore[no-untyped-def]
                result = await session.execute(update(Account).where(Account.id == account_id)
                                               .values(followers_count=account_id * 10))
                return result.rowcount * account_id

            return await batch.run(write)

        results = await asyncio.gather(*(bump(i) for i in ids))
        assert results == ids  # each caller got the result of its own write
        assert 1 <= len(commits) <= 3  # 60 writes, not 60 commits
        async with database.read() as session:
            stored = dict((await session.execute(select(Account.id, Account.followers_count))).all())
        assert stored == {i: i * 10 for i in ids}  # durable once run() returned
    finally:
        await database.dispose()


async def test_a_failing_write_fails_alone(database_url):
    database = Database(database_url)
    try:
        ids = await _accounts(database, 10)
        batch = WriteBatch(database)

        async def good(account_id: int) -> None:
            await batch.run(lambda session: session.execute(
                update(Account).where(Account.id == account_id).values(name=f"kept {account_id}")))

        async def bad() -> None:
            await batch.run(lambda session: session.execute(text("UPDATE no_such_table SET x = 1")))

        outcomes = await asyncio.gather(*(good(i) for i in ids[:5]), bad(), *(good(i) for i in ids[5:]),
                                        return_exceptions=True)
        assert [isinstance(o, Exception) for o in outcomes] == [False] * 5 + [True] + [False] * 5
        async with database.read() as session:
            names = list((await session.execute(select(Account.name).order_by(Account.id))).scalars())
        assert names == [f"kept {i}" for i in ids]
    finally:
        await database.dispose()


_SOURCES = Source.__table__
# A sync's bookkeeping in miniature: give the source's lease back if it is ours, then (only then) rename its account.
_RELEASE_IF_OURS = (update(_SOURCES).where(_SOURCES.c.id == bindparam("source_id"),
                                           _SOURCES.c.sync_lease_owner == bindparam("owner"))
                    .values(sync_lease_owner=None))
_RENAME = update(Account.__table__).where(Account.__table__.c.id == bindparam("account_id")).values(
    name=bindparam("name"))


async def test_fenced_writes_go_as_one_statement_and_each_learns_whether_its_lease_held(database_url):
    database = Database(database_url)
    executions: list[bool] = []  # executemany?
    event.listen(database.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, params, context, many: executions.append(many)
                 if statement.lstrip().upper().startswith("UPDATE SOURCES") else None)
    try:
        ids = await _accounts(database, 20)
        async with database.transaction() as session:
            own = await sources.account_sources(session, ids)
        taken_over = set(ids[3:6])
        async with database.transaction() as session:
            await session.execute(update(Source).values(sync_lease_owner="me"))
            await session.execute(update(Source).where(Source.account_id.in_(taken_over))
                                  .values(sync_lease_owner="other"))
        executions.clear()
        batch = WriteBatch(database)

        def rename(account_id: int):  # type: ignore[no-untyped-def]
            return batch.run(Fenced(_RELEASE_IF_OURS, {"source_id": own[account_id], "owner": "me"},
                                    then=(_RENAME, {"account_id": account_id, "name": f"n{account_id}"})))

        # All leases held: every write succeeds, and where the driver can count an executemany's rows, one statement.
        first = [i for i in ids if i not in taken_over][:10]
        assert await asyncio.gather(*(rename(i) for i in first)) == [True] * 10
        if database.engine.dialect.supports_sane_multi_rowcount:
            assert executions == [True]
        # Some leases lost: each write still learns its own outcome, and only the held rows change (the follow-up
        # write of a lost lease never runs).
        rest = [i for i in ids if i not in first]
        assert await asyncio.gather(*(rename(i) for i in rest)) == [i not in taken_over for i in rest]
        async with database.read() as session:
            rows = dict((await session.execute(select(Account.id, Account.name))).all())
            held = dict((await session.execute(select(Source.account_id, Source.sync_lease_owner))).all())
        assert {i for i, name in rows.items() if name == f"n{i}"} == set(ids) - taken_over
        assert {i for i, owner in held.items() if owner == "other"} == taken_over
    finally:
        await database.dispose()
