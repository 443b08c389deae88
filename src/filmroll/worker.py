"""The worker: claims due work from the database, runs it with bounded concurrency, renews its leases, drains.

    stop = asyncio.Event()
    jobs = [refresh_job(refresher), probe_job(prober)]
    await Worker(database, jobs, owner="host:pid:…").run(stop)      # set stop on SIGTERM

A job kind is a claim statement plus a runner. Every kind leases the same per-token lease, so one account is never
worked on twice at once, whatever the kind.

Only orchestration lives here; every lease statement is in ``store/leases.py`` and the work itself in the services.
One account's failure never stops the others: each job runs in its own task and its exceptions are logged; the
lease of a job that failed unexpectedly runs out instead of being given back, so a bug cannot spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.service.alerts import Alerter
from filmroll.service.probe import Prober
from filmroll.service.refresh import Refresher
from filmroll.service.sync import Syncer
from filmroll.store import alerts, leases
from filmroll.store.database import Database

log = logging.getLogger("filmroll.worker")


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Job:
    kind: str
    claim: Callable[..., Awaitable[list[Any]]]  # (session, *, owner, now, lease, limit) -> claims
    run: Callable[[Any], Awaitable[str]]
    renew: Callable[..., Awaitable[set[int]]] = leases.renew  # the token lease, unless the job has its own
    release: Callable[..., Awaitable[int]] = leases.release
    ident: Callable[[Any], int] = attrgetter("account_id")  # what renew/release take: the leased rows' ids
    close: Callable[[], Awaitable[None]] | None = None  # called once when the worker stops


def refresh_job(refresher: Refresher) -> Job:
    return Job("refresh", leases.claim_refreshes, refresher.run)


def probe_job(prober: Prober) -> Job:
    return Job("probe", leases.claim_probes, prober.run)


def sync_job(syncer: Syncer) -> Job:
    return Job("sync", leases.claim_syncs, syncer.run, leases.renew_syncs, leases.release_syncs)


def alert_job(alerter: Alerter) -> Job:
    return Job("alert", alerter.claim, alerter.run, alerts.renew, alerts.release, attrgetter("alert_id"),
               alerter.aclose)


@dataclass
class WorkerStats:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    crashed: int = 0


class Worker:
    def __init__(self, database: Database, jobs: Sequence[Job], *, owner: str, concurrency: int = 32,
                 batch: int = 64, lease: timedelta = timedelta(seconds=60), idle_poll: float = 2.0,
                 drain_timeout: float = 30.0, report_every: float = 60.0) -> None:
        self.database = database
        self.jobs = list(jobs)
        self.owner = owner
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.idle_poll = idle_poll
        self.drain_timeout = drain_timeout
        self.report_every = report_every
        self.stats = WorkerStats()
        self._in_flight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._freed = asyncio.Event()  # set whenever a job finishes

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> WorkerStats:
        """Work until ``stop`` is set (or, with ``until_idle``, until nothing is due), then drain."""
        log.info("worker %s started: %s, up to %s jobs at once", self.owner, ", ".join(j.kind for j in self.jobs),
                 self.concurrency)
        renewer = asyncio.create_task(self._renew_leases(stop))
        reporter = asyncio.create_task(self._report_progress())
        try:
            drained: dict[str, float] = {}  # kind -> when a claim of that kind last came back short
            while not stop.is_set():
                self._freed.clear()  # before any await of this round, so no finished job goes unnoticed
                free = self.concurrency - len(self._in_flight)
                # Claiming costs a write transaction per kind: wait for a worthwhile number of free slots rather
                # than claiming after every finished job.
                if free <= 0 or (self._in_flight and free < min(self.batch, self.concurrency) // 4):
                    await self._wait(stop, timeout=self.idle_poll, for_a_job=True)
                    continue
                claimed, busy, now = 0, bool(self._in_flight), time.monotonic()
                for job in self.jobs:  # in order of importance: a due refresh before a due probe
                    room = min(self.batch, self.concurrency - len(self._in_flight))
                    if room <= 0:
                        break
                    if busy and now - drained.get(job.kind, -1e9) < self.idle_poll:
                        continue  # nothing was due a moment ago; look again after idle_poll
                    claims = await self._claim(job, room)
                    if len(claims) < room:
                        drained[job.kind] = now
                    for claim in claims:
                        claimed += 1
                        key = (job.kind, job.ident(claim))
                        task = asyncio.create_task(self._one(job, claim))
                        self._in_flight[key] = task
                        task.add_done_callback(lambda _t, key=key: self._finished(key))
                if claimed:
                    continue
                # Idle means a whole round of claims that started with nothing running found nothing: work that
                # the last task queued (an alert, say) is claimed before the worker calls it a day.
                if until_idle and not busy and not self._in_flight:
                    break
                await self._wait(stop, timeout=self.idle_poll, for_a_job=bool(self._in_flight))
        finally:
            await self._drain()
            for side_task in (renewer, reporter):
                side_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await side_task
            log.info("worker %s stopped: %s", self.owner,
                     ", ".join(f"{kind} {n}" for kind, n in sorted(self.stats.outcomes.items())) or "nothing done")
            for job in self.jobs:
                if job.close is not None:
                    await job.close()
        return self.stats

    async def _claim(self, job: Job, limit: int) -> list[Any]:
        now: datetime = await self.database.now()
        session: AsyncSession
        async with self.database.transaction() as session:
            claims = await job.claim(session, owner=self.owner, now=now, lease=self.lease, limit=limit)
        self.stats.claimed += len(claims)
        return claims

    async def _one(self, job: Job, claim: Any) -> None:
        try:
            outcome = await job.run(claim)
        except Exception:  # one account's failure must never stop the others
            # Treated as a crash of this one job: its lease is left to expire rather than given back, so a bug
            # costs one attempt per lease period instead of a tight loop of claim, call Instagram, fail.
            log.exception("%s of account %s failed unexpectedly; retried once its lease expires", job.kind,
                          claim.account_id)
            self.stats.crashed += 1
            outcome = f"{job.kind}_crashed"
        self.stats.outcomes[outcome] += 1

    def _finished(self, key: tuple[str, int]) -> None:
        self._in_flight.pop(key, None)
        self._freed.set()

    async def _wait(self, stop: asyncio.Event, *, timeout: float, for_a_job: bool) -> None:
        # One event for "a job finished", not asyncio.wait over every running task: that would add and remove a
        # callback on each of up to `concurrency` tasks at every wake-up.
        waiters = {asyncio.create_task(stop.wait())}
        if for_a_job and self._in_flight:
            waiters.add(asyncio.create_task(self._freed.wait()))
        _, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def _report_progress(self) -> None:
        """What the worker did lately, once a ``report_every`` when it did anything (INFO: silent by default)."""
        reported: Counter[str] = Counter()
        while True:
            await asyncio.sleep(self.report_every)
            done = self.stats.outcomes - reported
            if done:
                log.info("worker %s, last %.0f s: %s; %d in flight", self.owner, self.report_every,
                         ", ".join(f"{kind} {n}" for kind, n in sorted(done.items())), len(self._in_flight))
            reported = Counter(self.stats.outcomes)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not self._in_flight:
                continue
            now = await self.database.now()
            for job in self.jobs:
                held = [ident for kind, ident in list(self._in_flight) if kind == job.kind]
                if not held:
                    continue
                async with self.database.transaction() as session:
                    kept = await job.renew(session, held, owner=self.owner, now=now, lease=self.lease)
                for lost in set(held) - kept:
                    if (job.kind, lost) in self._in_flight:  # a job that just finished released its own lease
                        log.warning("%s lease on account %s was lost; its result will not be written", job.kind, lost)

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
            for job in self.jobs:
                stopped = [i for (kind, i), task in running.items() if task in pending and kind == job.kind]
                await job.release(session, stopped, owner=self.owner)
