"""120 simulated days with thousands of accounts: no token ever expires, no refresh of a token under 24 hours old, and
every revoked token is ``needs_reauth`` within one probe interval with its webhook delivered.

Time moves by advancing the sandbox's clock and filmroll's (``Database.clock``) together, one step at a time; after
each step the real worker (refresh, alert and probe jobs) runs against the sandbox over real HTTP until nothing is
due. Token ages at the start are spread over 0-59 days, so refreshes fall on every day of the run. Sizes can be
changed with FILMROLL_SIM_ACCOUNTS / FILMROLL_SIM_DAYS; the seed of the random revocations is printed and can be
replayed with FILMROLL_SIM_SEED.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from filmroll.runtime import alert_job, http_session, probe_job, refresh_job
from filmroll.sandbox import RunningSandbox, SandboxConfig
from filmroll.sandbox.client import SandboxControl
from filmroll.secret import Secret
from filmroll.service.alerts import Alerter, Webhook
from filmroll.service.policy import RefreshPolicy
from filmroll.service.probe import Prober
from filmroll.service.refresh import Refresher
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.store.tables import Account, Event, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.worker import Worker
from tests import aio
from tests.harness import instagram_for
from tests.seeding import seed_accounts
from tests.webhooks import webhook_receiver

pytestmark = [pytest.mark.simulation, pytest.mark.slow]

# CI runs 1 000 accounts with the default daily probe (~120 000 probes); the run recorded in docs/benchmarks.md is
# FILMROLL_SIM_ACCOUNTS=10000, also with the daily probe (1.2 M probes, about 20 minutes: too long for every CI run).
ACCOUNTS = int(os.environ.get("FILMROLL_SIM_ACCOUNTS", "1000"))
DAYS = int(os.environ.get("FILMROLL_SIM_DAYS", "120"))
STEP = timedelta(hours=6)
POLICY = RefreshPolicy(probe_interval=timedelta(hours=int(os.environ.get("FILMROLL_SIM_PROBE_HOURS", "24"))))
REVOCATIONS = 40
SECRET = "sim-webhook-secret"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A sandbox in its own process, so the sandbox and the worker each get a core."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "filmroll", "sandbox", "--port", str(port), "--seed", "11"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    control = SandboxControl(f"http://127.0.0.1:{port}")
    try:
        for _ in range(400):
            try:
                summary = control.summary()
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise RuntimeError("the sandbox did not start")
        yield RunningSandbox(f"http://127.0.0.1:{port}", control, summary["app_id"], summary["app_secret"],
                             summary["redirect_uris"][0], SandboxConfig(seed=11))
    finally:
        control.close()
        process.terminate()
        process.wait(10)


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/simulation.db"  # the embedded default; PostgreSQL is covered by the worker tests


async def _seed(database: Database, vault: Vault, sandbox, rng: random.Random) -> None:
    """ACCOUNTS accounts in 60 cohorts whose tokens are 0.5 … 59.5 days old, scheduled by the refresh policy."""
    cohort = ACCOUNTS // 60
    for day in range(60):
        count = cohort if day < 59 else ACCOUNTS - 59 * cohort
        await seed_accounts(database, vault, sandbox, count, first=day * cohort, age_seconds=(day + 0.5) * 86_400,
                            due=False)
    now = database.clock.now()
    async with database.transaction() as session:
        rows = (await session.execute(select(Token.account_id, Token.issued_at, Token.expires_at))).all()
        await session.execute(update(Token), [
            {"account_id": account_id, "next_refresh_at": POLICY.next_refresh_at(issued, expires, rng),
             "next_probe_at": now + rng.uniform(0, 1) * POLICY.probe_interval}
            for account_id, issued, expires in rows])


async def _simulate(sandbox, database_url: str, receiver, seed: int) -> dict:
    rng = random.Random(seed)
    database = Database(database_url)
    from filmroll.store import migrate

    await migrate.upgrade(database)
    vault = Vault(Keyring(parse_keys(generate_key())))
    http = http_session()
    instagram = instagram_for(sandbox, clock=database.clock, session=http)  # one clock, as open_runtime wires it
    webhook = Webhook(url=Secret(receiver.url), secret=Secret(SECRET), link_base="https://feeds.example.org")
    try:
        await _seed(database, vault, sandbox, rng)
        steps = int(timedelta(days=DAYS) / STEP)
        # Revoked before the last probe interval, so each one must have been noticed by the end.
        last = steps - int(POLICY.probe_interval / STEP)
        revoke_at = {index: rng.randrange(1, last) for index in rng.sample(range(ACCOUNTS), REVOCATIONS)}
        revoked_when: dict[int, object] = {}  # account row id -> simulated time of revocation
        revoked_ig_ids: set[str] = set()  # their refreshes fail with 190, which is not a refresh refused as early
        outcomes: Counter[str] = Counter()
        young_refreshes = expired = last_call = 0
        for step in range(1, steps + 1):
            sandbox.control.advance(STEP.total_seconds())
            database.clock.advance(STEP)
            now = database.clock.now()
            for index in [i for i, at in revoke_at.items() if at == step]:
                sandbox.control.revoke(index, "revoked")
                revoked_when[index + 1] = now
                revoked_ig_ids.add(sandbox.control.account(index)["ig_id"])
            owner = f"sim-{step}"
            args = (database, vault, instagram)
            jobs = [refresh_job(Refresher(*args, owner=owner, policy=POLICY)),
                    alert_job(Alerter(database, webhook, http, owner=owner)),
                    probe_job(Prober(*args, owner=owner, policy=POLICY, batch=WriteBatch(database)))]
            stats = await Worker(database, jobs, owner=owner, concurrency=64, idle_poll=0.05).run(
                asyncio.Event(), until_idle=True)
            outcomes.update(stats.outcomes)
            calls = sandbox.control.calls(endpoint="refresh", since_id=last_call, limit=100_000)
            if calls:
                last_call = calls[-1]["id"]
            refused = [c for c in calls if c["status"] != 200 and c["account"] not in revoked_ig_ids]
            if refused:
                print("refused refreshes", refused)
            young_refreshes += len(refused)
            async with database.read() as session:
                expired += (await session.execute(
                    select(func.count()).select_from(Token).join(Account, Account.id == Token.account_id)
                    .where(Account.status == "active", Token.expires_at <= now))).scalar_one()
        async with database.read() as session:
            accounts = {a.id: a for a in (await session.execute(select(Account))).scalars()}
            tokens = {t.account_id: t for t in (await session.execute(select(Token))).scalars()}
            noticed = {e.account_id: e.at for e in (await session.execute(
                select(Event).where(Event.kind == "account.needs_reauth"))).scalars()}
        dead_in_sandbox = 0
        for account_id, account in accounts.items():
            if account.status == "active":
                plain = vault.open(tokens[account_id].ciphertext, tokens[account_id].key_id, account_id).reveal()
                dead_in_sandbox += not sandbox.control.inspect(plain)["valid"]
        return {"outcomes": outcomes, "young_refreshes": young_refreshes, "expired": expired,
                "dead_in_sandbox": dead_in_sandbox, "accounts": accounts, "revoked_when": revoked_when,
                "noticed": noticed, "now": database.clock.now()}
    finally:
        await http.close()
        await database.dispose()


def test_120_days_of_refreshes_probes_and_alerts(sandbox, database_url):
    seed = int(os.environ.get("FILMROLL_SIM_SEED", random.randrange(1 << 30)))
    print(f"simulation seed {seed} (replay with FILMROLL_SIM_SEED={seed})")
    with webhook_receiver() as receiver:
        result = aio.run(_simulate(sandbox, database_url, receiver, seed))
    outcomes = result["outcomes"]
    print(f"{ACCOUNTS} accounts, {DAYS} days: {dict(outcomes)}; {len(receiver.deliveries)} webhooks")
    # Every token lived through the whole run: each was refreshed about every 30 days, none ever expired.
    assert result["expired"] == 0 and result["dead_in_sandbox"] == 0
    assert outcomes["refreshed"] >= ACCOUNTS * (DAYS // 30 - 1)
    assert outcomes["too_early"] == 0 and result["young_refreshes"] == 0
    assert outcomes["retry"] == 0 and outcomes["throttled"] == 0 and outcomes["stale_lease"] == 0
    # Every revoked account (and only those) needs re-authorisation, noticed within one probe interval.
    assert POLICY.probe_interval % STEP == timedelta(0)  # probes then run on step boundaries, as the bound assumes
    revoked_when, noticed, accounts = result["revoked_when"], result["noticed"], result["accounts"]
    assert {i for i, a in accounts.items() if a.status == "needs_reauth"} == set(revoked_when)
    delays = {i: noticed[i] - at for i, at in revoked_when.items()}
    print(f"revocation noticed after at most {max(delays.values())} (probe interval {POLICY.probe_interval})")
    assert {i: d for i, d in delays.items() if d > POLICY.probe_interval} == {}
    # ... and its webhook was delivered, once, signed; no token ever came near expiry, so no expiry alert.
    bodies = [d.json() for d in receiver.deliveries]
    assert all(d.signed_with(SECRET) for d in receiver.deliveries)
    assert sorted(b["account"]["id"] for b in bodies) == sorted(revoked_when)
    assert {b["type"] for b in bodies} == {"account.needs_reauth"}
