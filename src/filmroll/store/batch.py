"""Many small writes from concurrent jobs, committed in one transaction.

A worker finishing hundreds of probes or syncs a second would otherwise pay one commit each — on SQLite with
``synchronous=FULL`` that is an fsync per account, and the fsyncs, not Instagram, set the pace. Jobs hand their
bookkeeping write to :meth:`WriteBatch.run` and wait for it: the writes queued meanwhile share one transaction,
so each job still returns only after its write is durable. Every write is fenced on its own (lease owner, row
version), so sharing a transaction changes no outcome. If the shared transaction fails, each write is retried
alone, so one bad write never sinks the others.

A write that is one fenced UPDATE (:class:`Fenced`) says so, and the fenced writes of one statement in a batch go to
the database as a single ``executemany``: on SQLite the driver reports the total of matched rows, and if that total
is short (some lease was lost) the transaction is rolled back and the batch replayed one write at a time, which tells
each job its own outcome. Drivers that cannot count rows over an ``executemany`` (asyncpg) run them one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from filmroll.store.database import Database, rowcount

T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Fenced:
    """One fenced UPDATE of one row (a Core statement, so a list of parameters makes an executemany): it took
    effect, and the write returns True, when it matched exactly that row, i.e. the lease was still ours. ``then``:
    a statement and its parameters that follow in the same transaction only if it did (a sync's profile columns,
    on the account of the source whose lease fenced the first)."""

    statement: Executable
    params: dict[str, Any]
    then: tuple[Executable, dict[str, Any]] | None = None

    async def __call__(self, session: AsyncSession) -> bool:
        if rowcount(await session.execute(self.statement, self.params)) != 1:
            return False
        if self.then is not None:
            await session.execute(*self.then)
        return True


class _ShortCount(Exception):
    """An executemany matched fewer rows than it had writes: replay one by one to learn whose lease was lost."""


class WriteBatch:
    def __init__(self, database: Database, *, max_items: int = 256, gather_seconds: float = 0.005) -> None:
        self.database = database
        self.max_items = max_items
        self.gather_seconds = gather_seconds
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, write: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``write`` in a shared transaction; returns its result once that transaction has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(self.gather_seconds)  # let the jobs finishing alongside join this commit
            items, self._pending = self._pending[:self.max_items], self._pending[self.max_items:]
            try:
                async with self.database.transaction() as session:
                    results = await self._write_all(session, items)
            except Exception:
                await self._one_by_one(items)
                continue
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write_all(self, session: AsyncSession, items: list[tuple[Write, asyncio.Future[Any]]]) -> list[Any]:
        results: list[Any] = [None] * len(items)
        grouped: dict[int, list[int]] = {}  # id(statement) -> positions of its fenced writes
        many = session.get_bind().dialect.supports_sane_multi_rowcount
        for position, (write, _) in enumerate(items):
            if many and isinstance(write, Fenced):
                grouped.setdefault(id(write.statement), []).append(position)
            else:
                results[position] = await write(session)
        for positions in grouped.values():
            writes: list[Fenced] = [items[p][0] for p in positions]  # type: ignore[misc]
            if len(writes) == 1:
                results[positions[0]] = await writes[0](session)
                continue
            result = await session.execute(writes[0].statement, [w.params for w in writes])
            if rowcount(result) != len(writes):
                raise _ShortCount
            followers: dict[int, list[tuple[Executable, dict[str, Any]]]] = {}
            for write in writes:
                if write.then is not None:
                    followers.setdefault(id(write.then[0]), []).append(write.then)
            for then in followers.values():
                await session.execute(then[0][0], [params for _, params in then])
            for position in positions:
                results[position] = True
        return results

    async def _one_by_one(self, items: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        for write, future in items:
            try:
                async with self.database.transaction() as session:
                    result = await write(session)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
