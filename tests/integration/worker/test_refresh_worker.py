"""The worker and the refresh job against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from filmroll.secret import Secret
from filmroll.store import tokens as token_store
from filmroll.store.lease import claim_due
from filmroll.store.tables import Event, Token
from filmroll.worker import Worker
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio


async def test_due_tokens_are_refreshed_exactly_once(harness, sandbox):
    due = await seed_accounts(harness.database, harness.vault, sandbox, 20)
    later = await seed_accounts(harness.database, harness.vault, sandbox, 5, first=20, due=False)
    before = await harness.tokens()
    assert await harness.run_worker(concurrency=8) == {"refreshed": 20}
    calls = sandbox.control.calls(endpoint="refresh")
    assert len(calls) == 20 and len({c["account"] for c in calls}) == 20
    assert sandbox.control.overlaps("refresh") == []
    after = await harness.tokens()
    now = datetime.now(UTC)
    for account_id in due:
        token = after[account_id]
        assert token.version == 2 and token.lease_owner is None and token.refreshed_at is not None
        assert token.expires_at > before[account_id].expires_at + timedelta(days=30)
        assert now + timedelta(days=28) < token.next_refresh_at < token.expires_at - timedelta(days=1)
        assert sandbox.control.inspect(harness.plain(token))["valid"]
    for account_id in later:
        assert after[account_id].version == 1
    assert await harness.run_worker() == {}  # nothing due any more: no calls
    assert len(sandbox.control.calls(endpoint="refresh")) == 20


async def test_rotation_stores_the_new_token(harness, sandbox):
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh="revoked")
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    old = harness.plain((await harness.tokens())[account_id])
    assert await harness.run_worker() == {"refreshed": 1}
    new = harness.plain((await harness.tokens())[account_id])
    assert new != old and sandbox.control.inspect(new)["valid"] and not sandbox.control.inspect(old)["valid"]


@pytest.mark.parametrize(("reason", "words"), [("password_changed", "password"), ("revoked", "revoked"),
                                               ("app_removed", "removed the app")])
async def test_dead_tokens_need_reauth_without_retries(harness, sandbox, reason, words):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 3)
    sandbox.control.revoke(1, reason)  # the second seeded account
    assert await harness.run_worker() == {"refreshed": 2, "needs_reauth": 1}
    accounts = await harness.accounts()
    dead = accounts[ids[1]]
    assert dead.status == "needs_reauth" and words in dead.status_reason
    assert [a.status for i, a in accounts.items() if i != ids[1]] == ["active", "active"]
    async with harness.database.read() as session:
        kinds = [e.kind for e in (await session.execute(select(Event).where(Event.account_id == ids[1]))).scalars()]
    assert kinds == ["account.needs_reauth"]
    await harness.run_worker()
    assert len(sandbox.control.calls(endpoint="refresh")) == 3  # never retried


async def test_a_refresh_whose_answer_was_lost_is_retried_with_backoff_not_at_once(harness, sandbox):
    # Instagram gave the same string back (its common answer) and the worker died before storing the new expiry:
    # the stored token looks 40 days old while Instagram counts it as refreshed a moment ago.
    sandbox.control.switches(refresh_token_string="same")
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    token = harness.plain((await harness.tokens())[account_id])
    sandbox.control.advance(2 * 86_400)
    assert httpx.get(f"{sandbox.base_url}/refresh_access_token", params={
        "grant_type": "ig_refresh_token", "access_token": token}).status_code == 200  # the lost refresh
    async with asyncio.timeout(60):  # it used to loop, calling Instagram again at once, for ever
        assert await harness.run_worker() == {"retry": 1}
    assert await harness.run_worker() == {}  # not due again at once: it backs off
    assert len(sandbox.control.calls(endpoint="refresh")) == 2
    stored = (await harness.tokens())[account_id]
    assert stored.next_attempt_at > datetime.now(UTC) + timedelta(seconds=25) and stored.refresh_failures == 1
    assert "24 hours" in stored.refresh_error


async def test_throttling_waits_as_long_as_instagram_says(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 2)
    sandbox.control.add_fault("graph_error", endpoint="refresh", account=sandbox.control.account(0)["ig_id"],
                              code=80002, times=1)
    assert await harness.run_worker() == {"refreshed": 1, "throttled": 1}
    token = (await harness.tokens())[ids[0]]
    assert token.refresh_failures == 0 and token.version == 1 and "RateLimitedError" in token.refresh_error
    assert token.refresh_failure_kind == "throttled"
    assert token.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)


async def test_transient_failures_back_off_with_jitter_and_recover(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    sandbox.control.add_fault("status", endpoint="refresh", status=503, times=1)
    assert await harness.run_worker() == {"retry": 1}
    token = (await harness.tokens())[ids[0]]
    assert token.refresh_failures == 1 and token.version == 1 and "TransientError" in token.refresh_error
    assert token.refresh_failure_kind == "temporary"
    assert datetime.now(UTC) + timedelta(seconds=25) < token.next_attempt_at < datetime.now(UTC) + timedelta(minutes=3)
    async with harness.database.transaction() as session:  # time passes
        (await session.get(Token, ids[0])).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await harness.run_worker() == {"refreshed": 1}
    assert (await harness.tokens())[ids[0]].refresh_failures == 0


async def test_a_refresh_that_starts_failing_says_so_once_and_again_when_it_recovers(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    sandbox.control.add_fault("status", endpoint="refresh", status=503, times=3)
    for _ in range(3):
        assert await harness.run_worker() == {"retry": 1}
        async with harness.database.transaction() as session:  # time passes
            (await session.get(Token, ids[0])).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await harness.run_worker() == {"refreshed": 1}
    async with harness.database.read() as session:
        kinds_and_messages = (await session.execute(select(Event.kind, Event.message).where(
            Event.account_id == ids[0], Event.kind.like("token.%")).order_by(Event.id))).all()
    assert [kind for kind, _ in kinds_and_messages] == ["token.refresh_failing", "token.refreshed"]
    assert "TransientError" in kinds_and_messages[0][1] and "retrying from" in kinds_and_messages[0][1]
    assert "after 3 failed attempts" in kinds_and_messages[1][1]


@pytest.mark.parametrize("body", ['{"access_token": "", "expires_in": 5184000}', '{"access_token": "IGAAx"}',
                                  '{"access_token": "IGAAx", "expires_in": "soon"}', '{"trunc', "<html>oops</html>"])
async def test_a_malformed_answer_never_replaces_the_token(harness, sandbox, body):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    before = (await harness.tokens())[ids[0]]
    sandbox.control.add_fault("body", endpoint="refresh", status=200, message=body, times=1)
    assert await harness.run_worker() == {"retry": 1}
    after = (await harness.tokens())[ids[0]]
    assert after.ciphertext == before.ciphertext and after.version == 1
    assert sandbox.control.inspect(harness.plain(after))["valid"] and "Malformed" in after.refresh_error


async def test_a_lost_race_is_not_a_dead_account(harness, sandbox):
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh="revoked")
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    now = await harness.database.now()
    async with harness.database.transaction() as session:
        (slow,) = await claim_due(session, token_store.REFRESHES, owner="slow", now=now, lease=timedelta(seconds=1),
                                  limit=5)
    later = now + timedelta(seconds=5)  # the slow worker's lease has expired; another worker takes over
    async with harness.database.transaction() as session:
        (fast,) = await claim_due(session, token_store.REFRESHES, owner="fast", now=later,
                                  lease=timedelta(seconds=60), limit=5)
    assert await harness.refresher("fast").run(fast) == "refreshed"
    assert await harness.refresher("slow").run(slow) in ("lost_race", "stale_lease")
    account = (await harness.accounts())[account_id]
    assert account.status == "active"
    assert sandbox.control.inspect(harness.plain((await harness.tokens())[account_id]))["valid"]


async def test_a_stale_lease_writes_nothing(harness, sandbox):
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    now = await harness.database.now()
    async with harness.database.transaction() as session:
        (stale,) = await claim_due(session, token_store.REFRESHES, owner="stale", now=now,
                                   lease=timedelta(seconds=1), limit=1)
    async with harness.database.transaction() as session:
        await claim_due(session, token_store.REFRESHES, owner="new-owner", now=now + timedelta(seconds=5),
                        lease=timedelta(seconds=60), limit=1)
    assert await harness.refresher("stale").run(stale) == "stale_lease"
    token = (await harness.tokens())[account_id]
    assert token.version == 1 and token.lease_owner == "new-owner"


@pytest.mark.parametrize(("mode", "expected", "status"), [("valid", "refreshed", "active"),
                                                         ("revoked", "needs_reauth", "needs_reauth")])
async def test_recovery_after_a_crash_in_the_middle_of_a_refresh(harness, sandbox, mode, expected, status):
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh=mode)
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    stored = Secret(harness.plain((await harness.tokens())[account_id]))
    await harness.instagram.refresh(stored)  # the crashed worker's call: Instagram answered, the answer died with it
    async with harness.database.transaction() as session:
        (await session.get(Token, account_id)).refresh_started_at = datetime.now(UTC) - timedelta(minutes=5)
    assert await harness.run_worker() == {expected: 1}
    account = (await harness.accounts())[account_id]
    assert account.status == status
    if status == "needs_reauth":
        assert "refresh_lost_in_crash" in account.status_reason


async def test_concurrent_claims_are_disjoint(harness, sandbox):
    import asyncio

    await seed_accounts(harness.database, harness.vault, sandbox, 60)
    now = await harness.database.now()

    async def claim(owner: str) -> list[int]:
        async with harness.database.transaction() as session:
            found = await claim_due(session, token_store.REFRESHES, owner=owner, now=now,
                                    lease=timedelta(seconds=60), limit=25)
            await asyncio.sleep(0.05)  # hold the claim transaction open while the others run
            return [c.account_id for c in found]

    claimed = await asyncio.gather(*(claim(f"w{i}") for i in range(4)))
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == len(set(flat)) == 60


async def test_a_lost_claim_gives_back_exactly_its_own_rows(harness, sandbox):
    """``release_unanswered`` frees the rows of one claim (our owner, the expiry it wrote) and no other lease."""
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 6)
    now = await harness.database.now()
    minute = timedelta(seconds=60)
    async with harness.database.transaction() as session:
        kept = await claim_due(session, token_store.REFRESHES, owner="w1", now=now, lease=minute,
                               limit=2)
        lost = await claim_due(session, token_store.REFRESHES, owner="w1", now=now + timedelta(seconds=1),
                               lease=minute, limit=2)
        theirs = await claim_due(session, token_store.REFRESHES, owner="w2", now=now + timedelta(seconds=1),
                                 lease=minute, limit=2)
    async with harness.database.transaction() as session:
        freed = await token_store.TOKEN.release_unanswered(session, owner="w1",
                                                           until=now + timedelta(seconds=1) + minute)
    assert freed == 2
    tokens = await harness.tokens()
    assert {i for i in ids if tokens[i].lease_owner is None} == {c.account_id for c in lost}
    assert {tokens[c.account_id].lease_owner for c in kept} == {"w1"}
    assert {tokens[c.account_id].lease_owner for c in theirs} == {"w2"}


async def _probes_due(harness, ids):
    async with harness.database.transaction() as session:
        for account_id in ids:
            (await session.get(Token, account_id)).next_probe_at = datetime.now(UTC) - timedelta(minutes=1)


async def test_the_daily_probe_catches_a_revoked_token(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 4, due=False)
    await _probes_due(harness, ids)
    sandbox.control.revoke(2, "password_changed")
    assert await harness.run_worker() == {"alive": 3, "needs_reauth": 1}
    tokens, accounts = await harness.tokens(), await harness.accounts()
    assert accounts[ids[2]].status == "needs_reauth" and "password" in accounts[ids[2]].status_reason
    for account_id in (ids[0], ids[1], ids[3]):
        token = tokens[account_id]
        assert token.last_probe_at is not None and token.lease_owner is None
        assert timedelta(hours=19) < token.next_probe_at - datetime.now(UTC) < timedelta(hours=24)  # never later
    assert len(sandbox.control.calls(endpoint="user")) == 4
    assert await harness.run_worker() == {}  # the dead one is not probed again, the live ones not before tomorrow


async def test_a_failed_probe_tries_again_soon_without_condemning_the_token(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 1, due=False)
    await _probes_due(harness, ids)
    sandbox.control.add_fault("status", endpoint="user", status=503, times=1)
    assert await harness.run_worker() == {"retry": 1}
    token = (await harness.tokens())[ids[0]]
    assert (await harness.accounts())[ids[0]].status == "active"
    assert timedelta(minutes=14) < token.next_probe_at - datetime.now(UTC) < timedelta(minutes=16)


async def test_refresh_and_probe_never_run_on_one_account_at_once(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 10)
    await _probes_due(harness, ids)  # every account is due for both
    outcomes = await harness.run_worker(concurrency=20)
    assert outcomes.get("refreshed") == 10
    refreshes = sandbox.control.calls(endpoint="refresh")
    probes = sandbox.control.calls(endpoint="user")
    for refresh in refreshes:
        for probe in probes:
            if probe["account"] == refresh["account"]:
                assert probe["ended"] <= refresh["started"] or refresh["ended"] <= probe["started"]


async def test_a_job_that_fails_unexpectedly_keeps_its_lease_until_it_expires(harness, sandbox, caplog):
    import asyncio
    import logging

    from filmroll.store import tokens as token_store
    from filmroll.worker import Job

    ids = await seed_accounts(harness.database, harness.vault, sandbox, 2, due=False)
    await _probes_due(harness, ids)
    attempts: list[int] = []

    async def broken(claim) -> str:  # type: ignore[no-untyped-def]
        attempts.append(claim.account_id)
        raise RuntimeError("a bug in a job")

    worker = Worker(harness.database, [Job.of("probe", token_store.PROBES, broken)], owner="worker-a", idle_poll=0.05,
                    lease=timedelta(seconds=30))
    stats = await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=True), 60)  # a retry loop never idles
    assert stats.crashed == 2 and sorted(attempts) == sorted(ids)  # once each: no tight retry loop
    crashes = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert crashes == [f"probe of @sandbox{i} failed unexpectedly; retried once its lease expires" for i in (0, 1)]
    tokens = await harness.tokens()
    for account_id in ids:
        assert tokens[account_id].lease_owner == "worker-a"  # left to expire, not handed straight back
    # Once the lease has run out, the work is claimed again (here by a healthy worker) and done.
    async with harness.database.transaction() as session:
        for account_id in ids:
            (await session.get(Token, account_id)).lease_until = datetime.now(UTC) - timedelta(seconds=1)
    assert await harness.run_worker(owner="worker-b") == {"alive": 2}


async def test_the_worker_tells_operators_what_it_does_and_which_owner_must_act(harness, sandbox, caplog):
    import logging

    ids = await seed_accounts(harness.database, harness.vault, sandbox, 3)
    tokens = [harness.plain(t) for t in (await harness.tokens()).values()]
    sandbox.control.revoke(1, "password_changed")
    sandbox.control.switches(latency_ms=300)  # the run outlasts a few progress reports
    caplog.set_level(logging.INFO, logger="filmroll")
    assert await harness.run_worker(report_every=0.1) == {"refreshed": 2, "needs_reauth": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("worker worker-a started: refresh, probe, up to 32 jobs") for line in lines)
    assert [line for line in lines if line.startswith("worker worker-a, last 0 s: ")]  # while it works
    assert lines[-1] == "worker worker-a stopped: needs_reauth 1, refreshed 2"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"@sandbox1 (account {ids[1]}) needs re-authorisation by its owner: the owner changed their "
                        "Instagram "
                        "password, or Instagram reset the session for security"]
    assert not [t for t in tokens if t in caplog.text]
