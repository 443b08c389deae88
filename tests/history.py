"""Days of history lived in minutes: an account synced once a simulated day (its followers moving as the test
says, some days skipped), against the sandbox over loopback HTTP, by the real syncer, with ``database.clock`` moved a
day at a time. The days end today: the clock starts ``days`` days back (the sandbox stays at today, as Instagram
would answer a sync at any of those days with the counts it has then; it moves an hour a day, so that the app's
hourly call budget renews as a day between syncs renews it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container
from datetime import timedelta
from typing import Any

from filmroll.runtime import sync_job
from filmroll.store import sources
from filmroll.store.database import Database
from filmroll.worker import Worker


async def live_days(database: Database, syncer: Any, control: Any, *, account_id: int, index: int, days: int,
                    followers: Callable[[int], int], skipped: Container[int] = ()) -> None:
    """Sync account ``account_id`` (the sandbox's ``index``) once on each of ``days`` days ending today, its
    followers ``followers(day)`` on day ``day`` (0 is the oldest); no sync at all on the ``skipped`` days."""
    database.clock.offset -= timedelta(days=days - 1)
    for day in range(days):
        if day not in skipped:
            control.account(index, followers_count=followers(day), follows_count=100 + day % 7)
            async with database.transaction() as session:
                source = await sources.of_account(session, account_id)
                assert source is not None
                source.next_sync_at = database.clock.now() - timedelta(seconds=1)
            stats = await Worker(database, [sync_job(syncer)], owner=syncer.owner, idle_poll=0.05).run(
                asyncio.Event(), until_idle=True)
            assert set(stats.outcomes) <= {"synced", "synced_full"}, (day, dict(stats.outcomes))
        if day < days - 1:
            database.clock.advance(timedelta(days=1))
            control.advance(3600)  # the app's hourly call budget renews, as a day between syncs renews it
