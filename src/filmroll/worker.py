"""The worker: claims due work from the database, runs it with bounded concurrency, renews its leases, drains.

    stop = asyncio.Event()
    await Worker(database, refresher, owner="host:pid:…").run(stop)      # set stop on SIGTERM

Only orchestration lives here; every lease statement is in ``store/leases.py`` and the work itself in the services.
One account's failure never stops the others: each job runs in its own task and its exceptions are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from filmroll.service.refresh import Refresher
from filmroll.store import leases
from filmroll.store.database import Database

log = logging.getLogger("filmroll.worker")


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class WorkerStats:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    crashed: int = 0


class Worker:
    def __init__(self, database: Database, refresher: Refresher, *, owner: str, concurrency: int = 32,
                 batch: int = 64, lease: timedelta = timedelta(seconds=60), idle_poll: float = 2.0,
                 drain_timeout: float = 30.0) -> None:
        self.database = database
        self.refresher = refresher
        self.owner = owner
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.idle_poll = idle_poll
        self.drain_timeout = drain_timeout
        self.stats = WorkerStats()
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> WorkerStats:
        """Work until ``stop`` is set (or, with ``until_idle``, until nothing is due), then drain."""
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._in_flight)
                if free <= 0:
                    await self._wait(stop, timeout=self.idle_poll, for_a_job=True)
                    continue
                claims = await self._claim(min(self.batch, free))
                for claim in claims:
                    task = asyncio.create_task(self._one(claim))
                    self._in_flight[claim.account_id] = task
                    task.add_done_callback(lambda _t, ident=claim.account_id: self._in_flight.pop(ident, None))
                if claims:
                    continue
                if until_idle and not self._in_flight:
                    break
                await self._wait(stop, timeout=self.idle_poll, for_a_job=bool(self._in_flight))
        finally:
            await self._drain()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return self.stats

    async def _claim(self, limit: int) -> list[leases.RefreshClaim]:
        now = await self.database.now()
        async with self.database.transaction() as session:
            claims = await leases.claim_refreshes(session, owner=self.owner, now=now, lease=self.lease, limit=limit)
        self.stats.claimed += len(claims)
        return claims

    async def _one(self, claim: leases.RefreshClaim) -> None:
        try:
            outcome = await self.refresher.run(claim)
        except Exception:  # one account's failure must never stop the others
            log.exception("refreshing account %s failed unexpectedly", claim.account_id)
            self.stats.crashed += 1
            outcome = "crashed"
            with contextlib.suppress(Exception):
                async with self.database.transaction() as session:
                    await leases.release(session, owner=self.owner, account_ids=[claim.account_id])
        self.stats.outcomes[outcome] += 1

    async def _wait(self, stop: asyncio.Event, *, timeout: float, for_a_job: bool) -> None:
        waiters = {asyncio.create_task(stop.wait())}
        if for_a_job and self._in_flight:
            waiters.add(asyncio.ensure_future(asyncio.wait(list(self._in_flight.values()),
                                                           return_when=asyncio.FIRST_COMPLETED)))
        _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            held = list(self._in_flight)
            if not held:
                continue
            now = await self.database.now()
            async with self.database.transaction() as session:
                kept = await leases.renew(session, owner=self.owner, account_ids=held, now=now, lease=self.lease)
            for lost in set(held) - kept:
                log.warning("lease on account %s was lost; its result will not be written", lost)

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        running = dict(self._in_flight)  # done-callbacks empty _in_flight as tasks finish
        _, pending = await asyncio.wait(running.values(), timeout=self.drain_timeout)
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        async with self.database.transaction() as session:
            await leases.release(session, owner=self.owner, account_ids=[i for i, t in running.items() if t in pending])
