"""Workers on machines whose clocks are ten minutes off, sharing one PostgreSQL database, agree with it: they claim
what the database's clock says is due, refresh each token once, and the due times they write are the database's,
so a slow clock does not make every account due again at once (a sync storm) and a fast one does not starve it.

PostgreSQL only: on SQLite every process is on one machine and reads one clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from filmroll.clock import Clock
from filmroll.runtime import probe_job, refresh_job, sync_job
from filmroll.service.policy import SyncPolicy
from filmroll.service.probe import Prober
from filmroll.service.refresh import Refresher
from filmroll.service.sync import Syncer
from filmroll.store import sources
from filmroll.store.database import Database
from filmroll.store.tables import Source, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.worker import Worker
from tests import databases
from tests.harness import instagram_for
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
SKEW = timedelta(minutes=10)
INTERVAL = timedelta(minutes=10)


class SkewedClock(Clock):
    """A machine whose clock is ``skew`` ahead (or behind, if negative)."""

    def __init__(self, skew: timedelta) -> None:
        super().__init__()
        self.skew = skew

    def wall(self) -> datetime:
        return super().wall() + self.skew


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, name = databases.postgres_database()
    yield url
    databases.drop_postgres_database(name)


async def test_workers_with_skewed_clocks_follow_the_database_clock(sandbox, postgres_url):
    vault = Vault(Keyring(parse_keys(generate_key())))
    setup = Database(postgres_url)
    due = await seed_accounts(setup, vault, sandbox, 40)  # refresh due now by the database's clock
    later = await seed_accounts(setup, vault, sandbox, 10, first=40, due=False)
    server_now = await setup.now()
    async with setup.transaction() as session:
        await session.execute(update(Source).where(Source.account_id.in_(due))
                              .values(next_sync_at=server_now - timedelta(seconds=1)))
        # Due in five minutes by the database's clock: the fast worker must not think they are due already.
        await session.execute(update(Source).where(Source.account_id.in_(later))
                              .values(next_sync_at=server_now + timedelta(minutes=5)))
        await session.execute(update(Token).where(Token.account_id.in_(later))
                              .values(next_refresh_at=server_now + timedelta(minutes=5),
                                      next_probe_at=server_now + timedelta(minutes=5)))

    async def worker(skew: timedelta, owner: str) -> Counter[str]:
        database = Database(postgres_url, clock=SkewedClock(skew))
        instagram = instagram_for(sandbox, clock=database.clock)
        try:
            args = (database, vault, instagram)
            jobs = [refresh_job(Refresher(*args, owner=owner)), probe_job(Prober(*args, owner=owner)),
                    sync_job(Syncer(*args, owner=owner, policy=SyncPolicy(interval=INTERVAL)))]
            engine = Worker(database, jobs, owner=owner, concurrency=16, idle_poll=0.05)
            # A storm would never go idle: bound the run, and let the call counts below say what happened.
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(60, stop.set)
            return (await engine.run(stop, until_idle=True)).outcomes
        finally:
            await instagram.aclose()
            await database.dispose()

    outcomes = await asyncio.gather(worker(SKEW, "fast"), worker(-SKEW, "slow"))
    total = outcomes[0] + outcomes[1]
    assert total["refreshed"] == len(due) and total["synced_full"] == len(due), total
    assert {kind for kind in total} <= {"refreshed", "synced_full", "alive"}, total
    assert outcomes[0]["refreshed"] and outcomes[1]["refreshed"]  # both machines took part

    accounts = {a["ig_id"]: i + 1 for i, a in enumerate(sandbox.control.accounts(limit=50)["data"])}
    refreshes = Counter(accounts[c["account"]] for c in sandbox.control.calls(endpoint="refresh"))
    syncs = Counter(accounts[c["account"]] for c in sandbox.control.calls(endpoint="user"))
    assert refreshes == Counter(due) and sandbox.control.overlaps("refresh") == []
    assert syncs == Counter(due)  # one sync each: no account came due again within the run

    server_now = await setup.now()
    async with setup.read() as session:
        rows = await sources.own(session)
        tokens = {t.account_id: t for t in (await session.execute(select(Token))).scalars()}
    await setup.dispose()
    for account_id in due:
        # Written in the database's time, whichever machine wrote it: one interval after the sync, give or take
        # the run's length, never ten minutes early or late.
        assert abs(rows[account_id].next_sync_at - (server_now + INTERVAL)) < timedelta(minutes=2)
        assert abs(tokens[account_id].refreshed_at - server_now) < timedelta(minutes=2)
    for account_id in later:
        assert rows[account_id].last_synced_at is None and tokens[account_id].version == 1
