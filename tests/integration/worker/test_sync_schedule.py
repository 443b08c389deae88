"""How often an account is synced (the deployment's default, or an interval of its own), and syncing one account
now, on SQLite and PostgreSQL against the sandbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from filmroll import errors
from filmroll.service import accounts as account_service
from filmroll.service.policy import SyncPolicy
from filmroll.store import sources as source_store
from filmroll.store.lease import claim_due, claim_one
from filmroll.store.tables import Account, Event, Source
from tests.seeding import index_with

pytestmark = pytest.mark.anyio
POLICY = SyncPolicy(interval=timedelta(minutes=3))


async def _account(harness, account_id: int) -> Source:
    """The account's own source: its sync's schedule, lease and failures."""
    return await harness.source(account_id)


async def _not_due(harness, ids: list[int]) -> None:
    async with harness.database.transaction() as session:
        await session.execute(update(Source).where(Source.account_id.in_(ids))
                              .values(next_sync_at=datetime.now(UTC) + timedelta(hours=1)))


async def test_accounts_follow_the_default_interval_unless_they_have_their_own(harness, sandbox):
    plain, own = await harness.seed([1, 2])
    # Set before the first sync: the account stays due now (its first sync is not postponed).
    view = await account_service.set_sync_interval(harness.database, str(own), 45, default=POLICY.interval,
                                                   actor="test")
    assert view.sync_interval_minutes == 45 and view.next_sync_at <= datetime.now(UTC)
    assert await harness.sync(policy=POLICY) == {"synced_full": 2}
    for account_id, interval in ((plain, timedelta(minutes=3)), (own, timedelta(minutes=45))):
        account = await _account(harness, account_id)
        assert account.next_sync_at - account.last_synced_at == interval

    # Back to the default: the next sync moves to one default interval after the last one.
    username = sandbox.control.account(2)["username"]  # as the sync stored it
    view = await account_service.set_sync_interval(harness.database, f"@{username}", None, default=POLICY.interval,
                                                   actor="test")
    account = await _account(harness, own)
    assert view.sync_interval_minutes is None and account.sync_interval_minutes is None
    assert account.next_sync_at - account.last_synced_at == timedelta(minutes=3)
    # Shorter than the time since the last sync: due at once, and the worker takes it.
    async with harness.database.transaction() as session:
        await session.execute(update(Source).where(Source.account_id == plain)
                              .values(last_synced_at=datetime.now(UTC) - timedelta(minutes=2)))
    await account_service.set_sync_interval(harness.database, str(plain), 1, default=POLICY.interval, actor="test")
    assert (await _account(harness, plain)).next_sync_at <= datetime.now(UTC)
    assert await harness.sync(policy=POLICY) == {"synced": 1}
    async with harness.database.read() as session:
        kinds = [e.kind for e in (await session.execute(select(Event).order_by(Event.id))).scalars()]
    assert kinds.count("account.sync_interval") == 3


async def test_an_account_waiting_out_throttling_keeps_its_wait(harness, sandbox):
    (account_id,) = await harness.seed([1])
    await harness.sync()
    sandbox.control.throttle(1, minutes=30)
    await harness.due([account_id])
    assert await harness.sync() == {"sync_throttled": 1}
    waiting = (await _account(harness, account_id)).next_sync_at
    assert waiting > datetime.now(UTC) + timedelta(minutes=29)
    await account_service.set_sync_interval(harness.database, str(account_id), 1, default=POLICY.interval,
                                            actor="test")
    account = await _account(harness, account_id)
    assert account.sync_interval_minutes == 1 and account.next_sync_at == waiting


async def test_sync_now_syncs_that_account_alone_whether_due_or_not(harness, sandbox):
    index = index_with(sandbox, 30, 80)
    target, other = await harness.seed([index, 2])
    await _not_due(harness, [target, other])
    sandbox.control.clear_calls()
    report = await account_service.sync_now(harness.syncer("cli"), f"@sandbox{index}")
    profile = sandbox.control.account(index)
    assert report.outcome == "synced_full" and report.posts_before == 0
    assert report.account.posts == report.account.media_count == profile["media_count"]
    assert {c["account"] for c in sandbox.control.calls()} == {profile["ig_id"]}
    synced, untouched = await _account(harness, target), await _account(harness, other)
    assert synced.sync_lease_owner is None and synced.next_sync_at > datetime.now(UTC) + timedelta(minutes=9)
    assert untouched.last_synced_at is None

    # Again: a routine sync of an unchanged account, one call.
    sandbox.control.clear_calls()
    report = await account_service.sync_now(harness.syncer("cli"), str(target))
    assert report.outcome == "synced" and len(sandbox.control.calls()) == 1
    assert report.account.posts == report.posts_before

    # --full finds what a routine sync cannot: a post deleted far below the newest page.
    oldest = sandbox.control.media_ids(index, limit=100)[-1]
    sandbox.control.delete_media(oldest)
    assert (await account_service.sync_now(harness.syncer("cli"), str(target))).outcome == "synced"
    assert oldest in await harness.media_map(target)
    report = await account_service.sync_now(harness.syncer("cli"), str(target), full=True)
    assert report.outcome == "synced_full" and report.account.posts == report.posts_before - 1
    assert oldest not in await harness.media_map(target)


async def test_sync_now_refuses_accounts_it_must_not_touch_and_calls_nobody(harness, sandbox):
    reauth, busy = await harness.seed([1, 2])
    async with harness.database.transaction() as session:
        await session.execute(update(Account).where(Account.id == reauth)
                              .values(status="needs_reauth", status_reason="the owner changed their password"))
        assert await claim_one(session, source_store.SYNCS, (await harness.source(busy)).id, owner="worker-a",
                               now=await harness.database.now(), lease=timedelta(minutes=1)) is not None
    sandbox.control.clear_calls()
    with pytest.raises(errors.AccountStateError, match=r"needs reauth .*password.*reconnect") as refused:
        await account_service.sync_now(harness.syncer("cli"), str(reauth))
    assert refused.value.status == "needs_reauth"
    with pytest.raises(errors.AccountStateError, match="being synced by a worker") as refused:
        await account_service.sync_now(harness.syncer("cli"), str(busy))
    assert refused.value.status == "busy"
    with pytest.raises(errors.AccountNotFoundError):
        await account_service.sync_now(harness.syncer("cli"), "@nobody_here")
    assert sandbox.control.calls() == []
    assert (await _account(harness, busy)).sync_lease_owner == "worker-a"  # the worker's lease is untouched


async def test_a_throttled_account_is_not_synced_on_demand_before_instagram_allows(harness, sandbox):
    (account_id,) = await harness.seed([3])
    sandbox.control.throttle(3, minutes=30)
    assert await harness.sync() == {"sync_throttled": 1}
    sandbox.control.clear_calls()
    for attempt in (account_service.sync_now(harness.syncer("cli"), str(account_id)),
                    account_service.sync_soon(harness.database, account_id, actor="admin:test")):
        with pytest.raises(errors.AccountStateError, match=r"throttling .* when Instagram allows") as refused:
            await attempt
        assert refused.value.status == "throttled"
    assert sandbox.control.calls() == []
    waiting = await _account(harness, account_id)
    async with harness.database.transaction() as session:  # the wait is over
        await session.execute(update(Source).where(Source.account_id == account_id)
                              .values(next_sync_at=datetime.now(UTC) - timedelta(seconds=1)))
    sandbox.control.reset_rate_usage()
    assert (await account_service.sync_now(harness.syncer("cli"), str(account_id))).outcome == "synced_full"
    assert waiting.stale_since is not None and (await _account(harness, account_id)).stale_since is None


async def test_a_long_sync_now_keeps_its_lease_so_no_worker_takes_the_account_over(harness, sandbox):
    index = index_with(sandbox, 51, 80)  # three pages and the profile: four calls
    (account_id,) = await harness.seed([index])
    sandbox.control.switches(latency_ms=1300)
    # Far shorter than the sync (over 5 s): only renewal (every lease / 3) keeps it. (1.2 s with 0.4 s renewals was
    # lost on a loaded machine, where a renewal can wait its turn for SQLite's one write connection.)
    lease = timedelta(seconds=2)
    taken: list[int] = []

    async def competitor() -> None:
        while True:
            async with harness.database.transaction() as session:
                claims = await claim_due(session, source_store.SYNCS, owner="worker-b",
                                         now=await harness.database.now(), lease=lease, limit=10)
            taken.extend(c.account_id for c in claims)
            await asyncio.sleep(0.2)

    started = asyncio.get_running_loop().time()
    syncing = asyncio.create_task(account_service.sync_now(harness.syncer("cli"), str(account_id), lease=lease))
    while (await _account(harness, account_id)).sync_lease_owner != "cli":  # the rival starts once the lease is held
        await asyncio.sleep(0.01)
    rival = asyncio.create_task(competitor())
    try:
        report = await syncing
    finally:
        rival.cancel()
        await asyncio.gather(rival, return_exceptions=True)
    assert asyncio.get_running_loop().time() - started > 2 * lease.total_seconds()  # the test tests something
    assert report.outcome == "synced_full" and taken == []
    assert report.account.posts == sandbox.control.account(index)["media_count"]


async def test_sync_soon_makes_the_account_due_for_the_workers(harness, sandbox):
    (account_id,) = await harness.seed([1])
    await _not_due(harness, [account_id])
    assert await harness.sync() == {}
    view = await account_service.sync_soon(harness.database, account_id, actor="admin:test")
    assert view.next_sync_at <= datetime.now(UTC)
    assert await harness.sync() == {"synced_full": 1}
    sandbox.control.revoke(1, "password_changed")
    await harness.due([account_id])
    assert await harness.sync() == {"needs_reauth": 1}
    with pytest.raises(errors.AccountStateError):
        await account_service.sync_soon(harness.database, account_id, actor="admin:test")
    with pytest.raises(errors.AccountNotFoundError):
        await account_service.sync_soon(harness.database, 9999, actor="admin:test")
