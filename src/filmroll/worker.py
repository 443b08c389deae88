"""The worker: claims due work from the database, runs it with bounded concurrency, renews its leases, drains, and
rides out database outages without a restart.

    stop = asyncio.Event()
    jobs = [refresh_job(refresher), probe_job(prober), sync_job(syncer)]      # runtime.py makes them
    await Worker(database, jobs, owner="host:pid:…").run(stop)      # set stop on SIGTERM

The worker knows a job kind only as a :class:`Job`: a claim step, the :class:`~filmroll.store.lease.Lease` its rows
are held by, and a runner. Refresh and probe share the token's lease (one token operation at a time), sync has the
account's own, alerts their outbox rows'. Only orchestration lives here; the claims sit beside their tables
(``store/lease.py`` draws them), the work itself in the services, and the jobs are made in ``runtime.py``.

Supervision, as procrastinate does it:

* One account's failure never stops the others: each job runs in its own task and its exceptions are logged; the
  lease of a job that failed unexpectedly runs out instead of being given back, so a bug cannot spin.
* A database error is an outage, not a bug (:func:`~filmroll.store.database.is_unavailable`): logged once when it
  starts and once when it ends, claims retried every poll interval meanwhile, so work resumes within one poll of
  the database coming back. The leases it leaves us holding with nothing running on them (jobs it interrupted,
  claims whose commit landed but whose answer was lost) are given back as soon as it answers.
* If the leases of running jobs cannot be renewed before they expire, the worker can no longer vouch for those
  jobs: it abandons them (another worker may take them over; their writes are fenced anyway), cancelling all but
  refreshes: a refresh's answer may be a new token that exists nowhere else, so it runs on and its fenced write
  lands once the database is back, unless another worker took the token over (``service/refresh.py``).
* The side tasks (lease renewal, progress report, the watches such as ``service.activity.ActivityWatch``) are
  restarted if they ever fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from filmroll.service.policy import Backoff
from filmroll.store.database import Database, explain, is_damaged, is_unavailable
from filmroll.store.lease import Claim, Claimable, Lease, claim_due
from filmroll.vocabulary import Outcome

log = logging.getLogger("filmroll.worker")


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Watch(Protocol):
    """A side task that looks at the installation as a whole while the worker runs (``service/activity.py``)."""

    name: str

    def __call__(self) -> Awaitable[None]: ...


@dataclass(frozen=True)
class Job:
    """One job kind as the worker sees it: ``claim(session, *, owner, now, lease, limit)`` returns claims (each with
    ``leased_id`` and ``label``, see ``store.lease.Claim``), ``run(claim)`` does the work and says how it went."""

    kind: str
    claim: Callable[..., Awaitable[Sequence[Any]]]
    run: Callable[[Any], Awaitable[Outcome]]
    lease: Lease
    # Whether a job of this kind is cancelled when its lease cannot be vouched for. A refresh is not: its answer
    # may be a new token that exists nowhere else, and its write is fenced, so it runs on to land or be refused.
    cancel_when_abandoned: bool = True

    @classmethod
    def of(cls, kind: str, claimable: Claimable[Any], run: Callable[[Any], Awaitable[Outcome]],
           **options: Any) -> Job:
        """A job whose claim step is :func:`~filmroll.store.lease.claim_due` of ``claimable`` alone."""
        return cls(kind, partial(claim_due, kind=claimable), run, claimable.lease, **options)


@dataclass
class WorkerStats:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    jobs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (job kind, outcome): what /metrics counts
    crashed: int = 0
    abandoned: int = 0  # jobs given up because their leases could not be renewed in time
    outages: int = 0  # times the database became unreachable
    leased_elsewhere: int = 0  # at an --until-idle exit: rows another worker still holds a live lease on
    leased_until: datetime | None = None  # ... and when the last of those leases runs out


class DatabaseHealth:
    """Whether the database answered lately, said once per outage in the log (and asked by ``/readyz``)."""

    def __init__(self) -> None:
        self.down_since: float | None = None  # monotonic
        self.outages = 0

    @property
    def ok(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            log.warning("the database is unreachable (%s); filmroll keeps retrying and resumes by itself",
                        type(exc).__name__)

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("the database is reachable again after %.0f s; work resumes",
                        time.monotonic() - self.down_since)
            self.down_since = None


class Worker:
    def __init__(self, database: Database, jobs: Sequence[Job], *, owner: str, concurrency: int = 32,
                 batch: int = 64, lease: timedelta = timedelta(seconds=60), idle_poll: float = 2.0,
                 drain_timeout: float = 30.0, report_every: float = 60.0,
                 health: DatabaseHealth | None = None, watches: Sequence[Watch] = ()) -> None:
        self.database = database
        self.jobs = list(jobs)
        self.watches = list(watches)
        self.owner = owner
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.idle_poll = idle_poll
        self.drain_timeout = drain_timeout
        self.report_every = report_every
        self.health = health or DatabaseHealth()
        self.stats = WorkerStats()
        self._in_flight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._labels: dict[tuple[str, int], str] = {}  # of the jobs in flight
        self._vouched_until: dict[tuple[str, int], float] = {}  # monotonic: when we last knew the lease good until
        # Leases of jobs an outage interrupted, given back once the database answers (or they would sit out their
        # whole lease period before anyone, this worker included, could retry them).
        self._interrupted: dict[Lease, set[int]] = {}
        # Claims that failed for want of the database: their commit may have landed all the same (lease, expiry).
        self._unanswered: set[tuple[Lease, datetime]] = set()
        self._freed = asyncio.Event()  # set whenever a job finishes
        self._damaged: BaseException | None = None  # the database file is broken: the worker stops with it
        # Retry claims while the database is down no less often than a poll: work resumes within a poll of recovery.
        self._retry = Backoff(base=timedelta(seconds=idle_poll / 4), cap=timedelta(seconds=idle_poll),
                              floor=timedelta(0))
        self._rng = random.Random()

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> WorkerStats:
        """Work until ``stop`` is set (or, with ``until_idle``, until nothing is due), then drain."""
        log.info("worker %s started: %s, up to %s jobs at once", self.owner, ", ".join(j.kind for j in self.jobs),
                 self.concurrency)
        side_tasks = [asyncio.create_task(self._supervised("lease renewal", self._renew_leases)),
                      asyncio.create_task(self._supervised("progress report", self._report_progress)),
                      *(asyncio.create_task(self._supervised(watch.name, watch)) for watch in self.watches)]
        try:
            await self._loop(stop, until_idle)
        finally:
            await self._drain()
            try:
                await self._give_back()
            except Exception as exc:  # what cannot be given back now runs out by itself
                if not is_unavailable(exc):
                    raise
            for side_task in side_tasks:
                side_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await side_task
            self.stats.outages = self.health.outages
            log.info("worker %s stopped: %s", self.owner,
                     ", ".join(f"{kind} {n}" for kind, n in sorted(self.stats.outcomes.items())) or "nothing done")
        return self.stats

    async def _loop(self, stop: asyncio.Event, until_idle: bool) -> None:
        drained: dict[str, float] = {}  # kind -> when a claim of that kind last came back short
        failures = 0  # consecutive rounds the database did not answer
        while not stop.is_set():
            if self._damaged is not None:
                raise self._damaged
            self._freed.clear()  # before any await of this round, so no finished job goes unnoticed
            free = self.concurrency - len(self._in_flight)
            # Claiming costs a write transaction per kind: wait for a worthwhile number of free slots rather than
            # claiming after every finished job.
            if free <= 0 or (self._in_flight and free < min(self.batch, self.concurrency) // 4):
                await self._wait(stop, timeout=self.idle_poll, for_a_job=True)
                continue
            busy, now = bool(self._in_flight), time.monotonic()
            try:
                await self._give_back()
                claimed = await self._claim_round(busy, now, drained)
            except Exception as exc:
                if is_damaged(exc):
                    raise
                if is_unavailable(exc):
                    self.health.failed(exc)
                else:  # a bug in a claim: keep the worker alive, say so loudly, and try again later
                    log.exception("claiming work failed unexpectedly; retrying")
                await self._wait(stop, timeout=self._retry.delay(failures, self._rng).total_seconds(),
                                 for_a_job=False)
                failures += 1
                continue
            failures = 0
            self.health.answered()
            if claimed:
                continue
            # Idle means a whole round of claims that started with nothing running found nothing: work that the last
            # task queued (an alert, say) is claimed before the worker calls it a day.
            if until_idle and not busy and not self._in_flight:
                await self._note_leased_elsewhere()
                break
            await self._wait(stop, timeout=self.idle_poll, for_a_job=bool(self._in_flight))

    async def _claim_round(self, busy: bool, now: float, drained: dict[str, float]) -> int:
        claimed = 0
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
                if (job.kind, claim.leased_id) in self._in_flight:
                    # An abandoned refresh still running here, its lease expired and now ours again: it carries on
                    # under the renewed lease, and no second call is made.
                    continue
                claimed += 1
                self._start(job, claim)
        return claimed

    async def _claim(self, job: Job, limit: int) -> Sequence[Any]:
        started = time.monotonic()
        now: datetime = await self.database.now()
        try:
            async with self.database.transaction() as session:
                claims = await job.claim(session, owner=self.owner, now=now, lease=self.lease, limit=limit)
        except Exception as exc:
            if is_unavailable(exc):
                self._unanswered.add((job.lease, now + self.lease))
            raise
        self.stats.claimed += len(claims)
        for claim in claims:
            self._vouched_until[(job.kind, claim.leased_id)] = started + self._trust()
        return claims

    def _trust(self) -> float:
        """How long after a successful claim or renewal we still trust the lease: a margin short of its length."""
        return self.lease.total_seconds() * 0.9

    def _start(self, job: Job, claim: Claim) -> None:
        key = (job.kind, claim.leased_id)
        task = asyncio.create_task(self._one(job, claim))
        self._in_flight[key] = task
        self._labels[key] = claim.label
        task.add_done_callback(lambda _t, key=key: self._finished(key))  # type: ignore[misc]

    async def _one(self, job: Job, claim: Claim) -> None:
        try:
            outcome = await job.run(claim)
        except asyncio.CancelledError:
            outcome = Outcome.INTERRUPTED  # abandoned (its lease could not be renewed), or cancelled at the drain
        except Exception as exc:  # one account's failure must never stop the others
            if is_damaged(exc):
                self._damaged = exc
                self._freed.set()
                outcome = Outcome.INTERRUPTED
            elif is_unavailable(exc):
                self.health.failed(exc)
                self._interrupted.setdefault(job.lease, set()).add(claim.leased_id)
                outcome = Outcome.INTERRUPTED
            else:
                # Treated as a crash of this one job: its lease is left to expire rather than given back, so a bug
                # costs one attempt per lease period instead of a tight loop of claim, call Instagram, fail.
                log.exception("%s of %s failed unexpectedly; retried once its lease expires", job.kind, claim.label)
                self.stats.crashed += 1
                outcome = Outcome.CRASHED
        self.stats.outcomes[outcome] += 1
        self.stats.jobs[(job.kind, str(outcome))] += 1

    async def _give_back(self) -> None:
        """Give back the leases an outage left us holding with nothing running on them: jobs it interrupted, and
        claims whose answer it swallowed."""
        if not self._interrupted and not self._unanswered:
            return
        # Take what is pending now: jobs still running can be interrupted while this transaction waits, and what
        # they add must stay for the next round rather than be cleared with what this one gave back.
        interrupted, self._interrupted = self._interrupted, {}
        unanswered, self._unanswered = self._unanswered, set()
        try:
            async with self.database.transaction() as session:
                for lease, ids in interrupted.items():
                    await lease.release(session, sorted(ids), owner=self.owner)
                for lease, until in unanswered:
                    if found := await lease.release_unanswered(session, owner=self.owner, until=until):
                        log.info("gave back %d %s lease(s) taken by a claim whose answer the outage lost", found,
                                 lease.name)
        except BaseException:
            for lease, ids in interrupted.items():
                self._interrupted.setdefault(lease, set()).update(ids)
            self._unanswered |= unanswered
            raise

    def _finished(self, key: tuple[str, int]) -> None:
        self._in_flight.pop(key, None)
        self._labels.pop(key, None)
        self._vouched_until.pop(key, None)
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

    async def _supervised(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run a side task for as long as the worker runs, restarting it if it ever fails."""
        failures = 0
        while True:
            try:
                await body()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_damaged(exc):
                    self._damaged = exc
                    return
                log.exception("the worker's %s failed; restarting it", name)
                await asyncio.sleep(self._retry.delay(failures, self._rng).total_seconds())
                failures += 1

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

    async def _renew_leases(self) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not self._in_flight:
                continue
            try:
                await self._renew_round()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                self.health.failed(exc)
            self._abandon_unvouched()

    async def _renew_round(self) -> None:
        started = time.monotonic()
        now = await self.database.now()
        for job in self.jobs:
            held = [ident for kind, ident in list(self._in_flight) if kind == job.kind]
            if not held:
                continue
            async with self.database.transaction() as session:
                kept = await job.lease.renew(session, held, owner=self.owner, now=now, lease=self.lease)
            for ident in kept:
                if (job.kind, ident) in self._vouched_until:
                    self._vouched_until[(job.kind, ident)] = started + self._trust()
            for lost in set(held) - kept:
                if (job.kind, lost) in self._in_flight:  # a job that just finished released its own lease
                    log.warning("%s lease on %s was lost; its result will not be written", job.kind,
                                self._labels.get((job.kind, lost), lost))
        self.health.answered()

    def _abandon_unvouched(self) -> None:
        now = time.monotonic()
        expired = [key for key, until in self._vouched_until.items() if until <= now and key in self._in_flight]
        if not expired:
            return
        log.warning("%d job(s) abandoned: their leases could not be renewed before running out, so other workers "
                    "may take them over (their writes are fenced)", len(expired))
        cancel = {job.kind for job in self.jobs if job.cancel_when_abandoned}
        for key in expired:
            self._vouched_until.pop(key, None)
            self.stats.abandoned += 1
            if key[0] in cancel:
                self._in_flight[key].cancel()

    async def _note_leased_elsewhere(self) -> None:
        """At an --until-idle exit: is work still held by another worker (one that crashed, say)?"""
        now = await self.database.now()
        async with self.database.read() as session:
            for lease in {job.lease for job in self.jobs}:
                count, until = await lease.held_elsewhere(session, owner=self.owner, now=now)
                self.stats.leased_elsewhere += count
                if until is not None and (self.stats.leased_until is None or until > self.stats.leased_until):
                    self.stats.leased_until = until

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
        try:
            async with self.database.transaction() as session:
                for job in self.jobs:
                    stopped = [i for (kind, i), task in running.items() if task in pending and kind == job.kind]
                    await job.lease.release(session, stopped, owner=self.owner)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("could not give back the leases of %d stopped job(s) (%s); they run out by themselves",
                        len(pending), type(exc).__name__)


_RESTART = Backoff(base=timedelta(seconds=1), cap=timedelta(seconds=30), floor=timedelta(0))


async def run_supervised(worker: Worker, stop: asyncio.Event) -> None:
    """The embedded worker of ``filmroll serve``: never gone for good. Outages are handled inside ``Worker.run``;
    should it fail anyway, it is restarted after a pause instead of leaving tokens unrefreshed until a restart."""
    failures = 0
    while not stop.is_set():
        try:
            await worker.run(stop)
            return
        except Exception as exc:
            if is_damaged(exc):  # no restart mends a broken file; the feeds keep their last renders
                explained = explain(exc, worker.database.url)
                log.error("the embedded worker stopped: %s", explained.message if explained else exc)
                return
            log.exception("the embedded worker stopped unexpectedly; restarting it")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RESTART.delay(failures, random.Random()).total_seconds())
            failures += 1
