"""Leases an outage leaves a worker holding with nothing running on them are given back, including those of jobs the
outage interrupts while an earlier give-back is still waiting on the database."""

from __future__ import annotations

import asyncio
import errno
from collections import Counter
from datetime import timedelta
from functools import partial

import pytest

from filmroll.store import tokens as token_store
from filmroll.store.database import Database
from filmroll.store.lease import Lease, claim_due
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.vocabulary import Outcome
from filmroll.worker import Job, Worker
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio


async def test_a_job_interrupted_during_a_give_back_is_given_back_too(sandbox, database_url):
    database = Database(database_url)
    first, second = await seed_accounts(database, Vault(Keyring(parse_keys(generate_key()))), sandbox, 2)
    attempts: Counter[int] = Counter()
    giving_back, second_interrupted = asyncio.Event(), asyncio.Event()

    class SlowGiveBack(Lease):
        """The token lease, whose first give-back waits until the second job has been interrupted too."""

        async def release(self, session, ids, *, owner):  # type: ignore[no-untyped-def]
            if not giving_back.is_set():
                giving_back.set()
                await second_interrupted.wait()
            return await super().release(session, ids, owner=owner)

    token = token_store.TOKEN
    lease = SlowGiveBack(token.name, token.table, token.key, token.owner, token.until)

    async def run(claim) -> Outcome:  # type: ignore[no-untyped-def]
        account_id = claim.leased_id
        attempts[account_id] += 1
        if attempts[account_id] == 1:  # both first attempts meet the outage, the second one later
            if account_id == second:
                await giving_back.wait()
                asyncio.get_running_loop().call_soon(second_interrupted.set)
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")  # as the driver's connect
        async with database.transaction() as session:  # done: no longer due, lease given back with the write
            await lease.finish(session, account_id, owner="w",
                               values={"next_refresh_at": await database.now() + timedelta(days=30)})
        return Outcome.REFRESHED

    job = Job("refresh", partial(claim_due, kind=token_store.REFRESHES), run, lease)
    try:
        worker = Worker(database, [job], owner="w", concurrency=2, batch=2, idle_poll=0.01)
        stats = await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=True), 60)
        async with database.read() as session:
            held, _ = await token.held_elsewhere(session, owner="nobody", now=await database.now())
    finally:
        await database.dispose()
    assert second_interrupted.is_set()  # the race under test happened
    # The second job's lease was given back too, so this same run tried it again instead of ending with it held.
    assert attempts == {first: 2, second: 2}, attempts
    assert stats.outcomes == {Outcome.INTERRUPTED: 2, Outcome.REFRESHED: 2}
    assert held == 0
