"""Keeping the Meta app alive: the worker's log warns when no call has reached Instagram for longer than the
setting while tokens are held, and a real call (a refresh against the sandbox) or Meta's own webhook delivery ends
the warning."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from filmroll.runtime import probe_job
from filmroll.service.activity import ActivityWatch, activity
from filmroll.store import webhooks
from filmroll.store.tables import Account, Token, WebhookDelivery
from filmroll.worker import Worker
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
MONTH = timedelta(days=30)


async def _backdate(harness, by: timedelta) -> None:  # type: ignore[no-untyped-def]
    async with harness.database.transaction() as session:
        for account in (await session.execute(select(Account))).scalars():
            account.connected_at -= by
        for token in (await session.execute(select(Token))).scalars():
            token.next_probe_at = datetime.now(UTC) + timedelta(days=1)  # nothing due: the worker makes no call


async def test_the_worker_warns_of_a_quiet_app_and_a_call_ends_the_warning(harness, sandbox, caplog):
    assert not (await activity(harness.database)).quiet(MONTH)  # no tokens: nothing to lose
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 2, first=30, due=False)
    found = await activity(harness.database)
    assert found.tokens == 2 and not found.quiet(MONTH)
    await _backdate(harness, timedelta(days=40))
    found = await activity(harness.database)
    assert found.quiet(MONTH) and not found.quiet(timedelta(days=41))
    assert "for 40 days" in found.describe() and "49 days from now" in found.describe()

    async def worker_log() -> list[str]:
        caplog.clear()
        stop = asyncio.Event()
        worker = Worker(harness.database, [probe_job(harness.prober())], owner="w", idle_poll=0.05,
                        watches=[ActivityWatch(harness.database, MONTH)])
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.5)
        stop.set()
        await running
        return [r.getMessage() for r in caplog.records if r.name == "filmroll.activity"
                and r.levelno == logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="filmroll.activity"):
        (warning,) = await worker_log()
        assert "Meta app may be switched off soon" in warning and "2 token(s) are held" in warning
        async with harness.database.transaction() as session:  # Meta delivering a webhook is activity too
            await webhooks.store(session, b'{"object": "instagram", "entry": []}', datetime.now(UTC))
        assert await worker_log() == []

    async with harness.database.transaction() as session:
        await session.execute(delete(WebhookDelivery))
    assert (await activity(harness.database)).quiet(MONTH)
    async with harness.database.transaction() as session:  # a refresh against the sandbox: a real call
        for token in (await session.execute(select(Token).where(Token.account_id == ids[0]))).scalars():
            token.next_refresh_at = datetime.now(UTC) - timedelta(minutes=1)
    assert (await harness.run_worker())["refreshed"] == 1
    assert not (await activity(harness.database)).quiet(MONTH)
