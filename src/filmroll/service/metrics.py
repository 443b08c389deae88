"""Prometheus metrics: what this process did (jobs by kind and outcome, feed answers), and, in the one process
asked to, what the database says about the whole house (accounts by status and provider, when tokens end, sync
lag, rate-limit usage, stored bytes, the mirror's queue, each job's last success).

Labels are few and fixed (status, provider, job, outcome, code): never an account id or a username. Database
gauges are read at most every ``cache_seconds`` whatever the scrape rate, and by one process only: ``serve``
exports them unless ``FILMROLL_METRICS__DATABASE_GAUGES=false`` (set it on every process but one when several
serve); ``filmroll worker --metrics-port N`` exports its own counters, and the gauges with ``--database-gauges``.
The metric list and example alert rules are in ``docs/operations.md``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

from filmroll import errors
from filmroll.store import gauges
from filmroll.store.database import Database
from filmroll.vocabulary import AccountStatus, Provider

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def serve_metrics(metrics: Metrics, host: str, port: int) -> Any:
    """``GET /metrics`` on ``host:port`` in this event loop (a standalone worker's); returns the runner to clean up.
    A port in use is a ConfigError naming it."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=await metrics.render(), headers={"Content-Type": CONTENT_TYPE,
                                                                   "Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/metrics", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise errors.ConfigError(f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror})") from None
    return runner


class Metrics:
    def __init__(self, database: Database, *, jobs: Callable[[], Counter[tuple[str, str]]] | None = None,
                 answered: Counter[int] | None = None, database_gauges: bool = True, max_attempts: int = 5,
                 cache_seconds: float = 10.0) -> None:
        self.database = database
        self.jobs = jobs
        self.answered = answered
        self.database_gauges = database_gauges
        self.max_attempts = max_attempts
        self.cache_seconds = cache_seconds
        self._read: tuple[float, datetime, gauges.Gauges] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    async def render(self) -> bytes:
        """The exposition text, the database's gauges read afresh when the last read is older than the cache."""
        if self.database_gauges and (self._read is None or time.monotonic() - self._read[0] >= self.cache_seconds):
            now = self.database.clock.now()
            async with self.database.read() as session:
                self._read = (time.monotonic(), now, await gauges.read(session, now, max_attempts=self.max_attempts))
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        if self._read is not None:
            yield from self._gauges(*self._read[1:])

    def _counters(self) -> Iterator[Metric]:
        jobs = CounterMetricFamily("filmroll_jobs", "Jobs this process finished, by kind and outcome",
                                   labels=["job", "outcome"])
        for (job, outcome), count in sorted((self.jobs() if self.jobs else Counter()).items()):
            jobs.add_metric([job, outcome], count)
        yield jobs
        if self.answered is not None:
            feeds = CounterMetricFamily("filmroll_feed_responses", "Feed documents this process answered, by status "
                                        "(304: the client's copy was current)", labels=["code"])
            for code in (200, 304):
                feeds.add_metric([str(code)], self.answered[code])
            yield feeds

    def _gauges(self, now: datetime, read: gauges.Gauges) -> Iterator[Metric]:
        accounts = GaugeMetricFamily("filmroll_accounts", "Connected accounts by status and provider",
                                     labels=["status", "provider"])
        for status in AccountStatus:
            for provider in Provider:
                accounts.add_metric([status.value, provider.value], read.accounts.get((status, provider), 0))
        yield accounts
        if read.earliest_expiry is not None:
            yield GaugeMetricFamily("filmroll_token_earliest_expiry_seconds", "Seconds until the first active "
                                    "account's token expires (negative: it has)",
                                    value=(read.earliest_expiry - now).total_seconds())
        yield GaugeHistogramMetricFamily(
            "filmroll_token_expiry_seconds", "Active accounts' tokens by the time they have left",
            buckets=[*((str(days * 86_400), read.expiring_within[days]) for days in gauges.EXPIRY_BUCKETS_DAYS),
                     ("+Inf", read.active_tokens)], gsum_value=read.seconds_left)
        lag = (now - read.oldest_sync).total_seconds() if read.oldest_sync else 0.0
        yield GaugeMetricFamily("filmroll_sync_lag_seconds", "Since the least recently synced active account's "
                                "last sync", value=lag)
        yield GaugeMetricFamily("filmroll_sync_never_synced", "Active accounts not synced yet",
                                value=read.never_synced)
        yield GaugeMetricFamily("filmroll_rate_limit_usage_percent", "The highest share of its rate limit Instagram "
                                "says any source has used", value=read.busiest_usage)
        yield GaugeMetricFamily("filmroll_mirror_stored_bytes", "Bytes of every stored file (originals, posters, "
                                "videos, variants)", value=read.stored_bytes)
        yield GaugeMetricFamily("filmroll_mirror_queue_posts", "Live posts whose pictures are not stored yet",
                                value=read.mirror_queue)
        last = GaugeMetricFamily("filmroll_job_last_success_timestamp_seconds", "When each job last succeeded "
                                 "anywhere (Unix time)", labels=["job"])
        for job, when in sorted(read.last_success.items()):
            if when is not None:
                last.add_metric([job], when.timestamp())
        yield last
