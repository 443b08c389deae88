"""Many small writes from concurrent jobs, committed in one transaction.

A worker finishing hundreds of probes or syncs a second would otherwise pay one commit each — on SQLite with
``synchronous=FULL`` that is an fsync per account, and the fsyncs, not Instagram, set the pace. Jobs hand their
bookkeeping write to :meth:`WriteBatch.run` and wait for it: the writes queued meanwhile share one transaction,
so each job still returns only after its write is durable. Every write is fenced on its own (lease owner, row
version), so sharing a transaction changes no outcome. If the shared transaction fails, each write is retried
alone, so one bad write never sinks the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import Database

T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[Any]]


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
                    results = [await write(session) for write, _ in items]
            except Exception:
                await self._one_by_one(items)
                continue
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():
                    future.set_result(result)

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
