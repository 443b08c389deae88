"""Several `filmroll worker` processes sharing one database: one refresh per account, never two at once, and a
worker frozen past its lease writes nothing when it wakes up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import pytest

from filmroll.store.database import Database
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from tests import aio
from tests.seeding import seed_accounts

pytestmark = pytest.mark.slow


def _env(sandbox, database_url: str, key: str) -> dict[str, str]:
    return {**os.environ, "FILMROLL_DATABASE_URL": database_url, "FILMROLL_VAULT__KEYS": key,
            "FILMROLL_INSTAGRAM__APP_ID": sandbox.app_id, "FILMROLL_INSTAGRAM__APP_SECRET": sandbox.app_secret,
            "FILMROLL_INSTAGRAM__AUTHORIZE_URL": sandbox.base_url + "/oauth/authorize",
            "FILMROLL_INSTAGRAM__TOKEN_URL": sandbox.base_url + "/oauth/access_token",
            "FILMROLL_INSTAGRAM__GRAPH_URL": sandbox.base_url,
            # The mirror fetches from the sandbox's CDN (else it refuses every picture), with one rendering process,
            # into a directory of the test's own.
            "FILMROLL_MIRROR__CDN_HOSTS": f'["{sandbox.base_url}"]', "FILMROLL_MIRROR__PROCESSES": "1",
            "FILMROLL_STORAGE__URL": f"file:{tempfile.mkdtemp(prefix='filmroll-media-')}"}


def _seed(sandbox, database_url: str, count: int) -> str:
    key = generate_key()

    async def seed() -> None:
        database = Database(database_url)
        try:
            await seed_accounts(database, Vault(Keyring(parse_keys(key))), sandbox, count)
        finally:
            await database.dispose()

    aio.run(seed())
    return key


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "filmroll", "worker", "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _kill_leftovers(processes: list[subprocess.Popen | None]) -> None:
    """Never leave a worker running into the next test (it would call the sandbox meanwhile)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()


def kill_at_random(workers: list[subprocess.Popen], env: dict[str, str], args: tuple[str, ...], rng, *,
                   pause: tuple[float, float], within: float, kills: int = 8) -> int:
    """SIGKILL a random one of ``workers`` every ``pause`` seconds and start another in its place (one that ended on
    its own is replaced too), until ``kills`` kills or ``within`` seconds; returns how many were killed."""
    done = 0
    deadline = time.monotonic() + within
    while done < kills and time.monotonic() < deadline:
        time.sleep(rng.uniform(*pause))
        victim = rng.randrange(len(workers))
        if workers[victim].poll() is None:
            workers[victim].kill()
            done += 1
        workers[victim].communicate()
        workers[victim] = _worker(env, *args)
    return done


def _outcomes(process: subprocess.Popen, timeout: float = 180) -> dict[str, object]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    result["stderr"] = err
    return result


def _assert_no_silent_loss(sandbox, database_url: str, key: str, mode: str, *, context: object,
                           lost_only_at: str | None = None, expected: int | None = None) -> None:
    """Every active account has a token Instagram accepts; any other is needs_reauth and says why (never silent)."""

    async def states() -> list[tuple[str, str | None, str]]:
        from sqlalchemy import select

        from filmroll.store.tables import Account, Token

        database = Database(database_url)
        vault = Vault(Keyring(parse_keys(key)))
        try:
            async with database.read() as session:
                rows = (await session.execute(select(Account, Token).join(Token))).all()
            return [(a.status, a.status_reason, vault.open(t.ciphertext, t.key_id, t.account_id).reveal())
                    for a, t in rows]
        finally:
            await database.dispose()

    results = aio.run(states())
    if expected is not None:
        assert len(results) == expected
    for status, reason, token in results:
        if status == "active":
            assert sandbox.control.inspect(token)["valid"], context
        else:
            assert status == "needs_reauth" and "refresh_lost_in_crash" in reason, (context, reason)
            assert mode == "revoked", context  # with the old token still valid, a crash loses nothing at all
            if lost_only_at is not None:
                assert lost_only_at == "after_response_before_commit", context


def test_four_workers_refresh_each_of_1000_accounts_exactly_once(sandbox, database_url):
    key = _seed(sandbox, database_url, 1000)
    sandbox.control.add_fault("latency", endpoint="refresh", latency_ms=200)
    sandbox.control.clear_calls()
    env = _env(sandbox, database_url, key)
    workers = [_worker(env, "--until-idle", "--concurrency", "32") for _ in range(4)]
    try:
        results = [_outcomes(w) for w in workers]
    finally:
        _kill_leftovers(workers)
    refreshed = sum(r["outcomes"].get("refreshed", 0) for r in results)
    assert refreshed == 1000, [r["stderr"][-3000:] for r in results if r["crashed"]]
    assert sum(1 for r in results if r["outcomes"].get("refreshed")) >= 2  # the work really was shared
    calls = sandbox.control.calls(endpoint="refresh")
    per_account = Counter(c["account"] for c in calls)
    assert len(per_account) == 1000 and set(per_account.values()) == {1}
    assert all(c["outcome"] == "ok" for c in calls)
    assert sandbox.control.overlaps("refresh") == []


def _holds_a_write_lock(database_url: str) -> bool:
    """Whether a stopped worker would stall every other writer: it is inside a write transaction (SQLite's single
    write lock, or a PostgreSQL transaction holding row locks)."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0.1, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()

    async def check() -> bool:
        from sqlalchemy import text

        database = Database(database_url)
        try:
            async with database.read() as session:
                busy = await session.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"))
                return busy.scalar_one() > 0
        finally:
            await database.dispose()

    return aio.run(check())


def _freeze(process: subprocess.Popen, database_url: str) -> None:
    """SIGSTOP the worker at a moment it holds no database lock. (Stopped inside one of its brief claim or renew
    transactions, it would stall every writer until resumed; on SQLite that is inherent to the single writer.)"""
    for _ in range(200):
        process.send_signal(signal.SIGSTOP)
        if not _holds_a_write_lock(database_url):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker was always inside a transaction")


def test_a_worker_frozen_past_its_lease_writes_nothing(sandbox, database_url):
    sandbox.control.switches(refresh_token_string="new")
    key = _seed(sandbox, database_url, 1)
    env = _env(sandbox, database_url, key)
    hang = sandbox.control.add_fault("hang", endpoint="refresh", times=1)
    frozen = _worker(env, "--until-idle", "--lease-seconds", "5")
    deadline = time.monotonic() + 30
    while sandbox.control.faults()[0]["hits"] == 0:  # its refresh is in flight, held by the sandbox
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _freeze(frozen, database_url)
    try:
        time.sleep(6)  # past the 5 s lease
        taker = _outcomes(_worker(env, "--until-idle"))
        assert taker["outcomes"] == {"refreshed": 1}
        sandbox.control.release(hang["id"])
    except BaseException:
        frozen.kill()  # never leave it to call the sandbox during the next test
        frozen.wait()
        raise
    finally:
        frozen.send_signal(signal.SIGCONT)
    woken = _outcomes(frozen)
    assert woken["outcomes"] == {"stale_lease": 1}
    assert len(sandbox.control.calls(endpoint="refresh")) == 2

    async def stored() -> tuple[int, str | None]:
        from filmroll.store.tables import Token

        database = Database(database_url)
        try:
            async with database.read() as session:
                token = await session.get(Token, 1)
                return token.version, token.lease_owner
        finally:
            await database.dispose()

    assert aio.run(stored()) == (2, None)  # the taker's token, and no lease left behind


@pytest.mark.parametrize("step", ["before_refresh_call", "after_response_before_commit",
                                  "after_commit_before_release"])
@pytest.mark.parametrize("mode", ["valid", "revoked"])
def test_sigkill_at_each_step_loses_no_token_silently(sandbox, database_url, step, mode):
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh=mode)
    key = _seed(sandbox, database_url, 5)
    env = _env(sandbox, database_url, key)
    # One job at a time, so the kill lands at exactly the named step of exactly one account's refresh.
    crashed = subprocess.run([sys.executable, "-m", "filmroll", "worker", "--until-idle", "--lease-seconds", "5",
                              "--concurrency", "1"],
                             env={**env, "FILMROLL_FAULT_POINTS": step}, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL
    time.sleep(5.5)  # the dead worker's leases expire
    _outcomes(_worker(env, "--until-idle"))

    _assert_no_silent_loss(sandbox, database_url, key, mode, context=(step, mode), lost_only_at=step)


@pytest.mark.parametrize("mode", ["valid", "revoked"])
def test_random_kills_across_three_workers(sandbox, database_url, mode):
    import random

    seed = int(os.environ.get("FILMROLL_KILL_SEED", str(int(time.time()))))
    print(f"random-kill seed: {seed} (set FILMROLL_KILL_SEED to replay)")
    rng = random.Random(seed)
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh=mode)
    key = _seed(sandbox, database_url, 200)
    sandbox.control.add_fault("latency", endpoint="refresh", latency_ms=150)
    env = _env(sandbox, database_url, key)
    args = ("--until-idle", "--lease-seconds", "5", "--concurrency", "8")
    workers = [_worker(env, *args) for _ in range(3)]
    try:
        kills = kill_at_random(workers, env, args, rng, pause=(0.2, 0.6), within=60)
        for process in workers:
            process.communicate(timeout=180)
    finally:
        _kill_leftovers(workers)
    time.sleep(5.5)  # leases of the killed workers expire
    _outcomes(_worker(env, "--until-idle"))

    assert kills >= 1
    _assert_no_silent_loss(sandbox, database_url, key, mode, context=seed, expected=200)
    # A killed worker's lease keeps everyone else off its accounts until its in-flight calls are long over.
    assert sandbox.control.overlaps("refresh") == [], seed
    if database_url.startswith("sqlite"):  # processes killed mid-write leave SQLite's file whole (WAL, FULL sync)
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], seed


def test_cli_refreshes_racing_four_workers_go_through_the_one_leased_path(sandbox, postgres_url):
    """`filmroll token refresh` takes the token's lease like a worker: with Instagram revoking the old token on
    refresh, CLI refreshes fired at accounts four workers are refreshing never overlap one, and no account ends
    without a working token."""
    import threading

    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh="revoked")
    count = 24
    key = _seed(sandbox, postgres_url, count)
    sandbox.control.add_fault("latency", endpoint="refresh", latency_ms=1500)
    # The first account's refresh is held at Instagram until the CLI has met it, whoever started it: the race is
    # certain to happen once however the machine's load spaces the processes out; the rest race as it comes.
    held = sandbox.control.add_fault("hang", endpoint="refresh", account=sandbox.control.account(0)["ig_id"])
    sandbox.control.clear_calls()
    env = _env(sandbox, postgres_url, key)
    workers = [_worker(env, "--until-idle", "--concurrency", "1") for _ in range(4)]
    exits: Counter[int] = Counter()
    lock = threading.Lock()

    def refreshing_now() -> list[int]:
        """Accounts being refreshed at this moment (leased, refresh started, not yet stored)."""
        async def read() -> list[int]:
            from sqlalchemy import select

            from filmroll.store.tables import Token

            database = Database(postgres_url)
            try:
                async with database.read() as session:
                    return list((await session.execute(select(Token.account_id).where(
                        Token.lease_owner.is_not(None), Token.refresh_started_at.is_not(None),
                        Token.version == 1))).scalars())
            finally:
                await database.dispose()

        deadline = time.monotonic() + 60
        while not (found := aio.run(read())):
            assert time.monotonic() < deadline, "no worker started refreshing"
            time.sleep(0.05)
        return found

    def refresh(account_id: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "filmroll", "token", "refresh", str(account_id)], env=env,
                              capture_output=True, text=True, timeout=120)

    def cli(ids: list[int]) -> None:
        for account_id in ids:
            done = refresh(account_id)
            with lock:
                exits[done.returncode] += 1
                if done.returncode == 1:  # refused without a call: the token was refreshed moments ago
                    assert "under 24 hours old" in done.stderr, done.stderr
                if done.returncode == 7:
                    assert "a worker is refreshing or probing" in done.stderr, done.stderr

    threads = [threading.Thread(target=cli, args=(list(range(1 + n, count + 1, 3)),)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while 1 not in refreshing_now():
            assert time.monotonic() < deadline, "nobody started refreshing the first account"
            time.sleep(0.05)
        busy = refresh(1)
        sandbox.control.release(held["id"])
        assert busy.returncode == 7 and "a worker is refreshing or probing" in busy.stderr, busy.stderr
        with lock:
            exits[busy.returncode] += 1
        for thread in threads:
            thread.join()
        results = [_outcomes(w) for w in workers]
    finally:
        _kill_leftovers(workers)
    assert sandbox.control.overlaps("refresh") == []
    assert set(exits) <= {0, 11, 7}, exits  # refreshed, refused as too young (11, no call), or busy (a worker holds it)
    assert exits[7] >= 1, exits  # the race happened (certainly on the first account)
    calls = sandbox.control.calls(endpoint="refresh")
    per_account = Counter(c["account"] for c in calls)
    assert len(per_account) == count and set(per_account.values()) == {1}, per_account
    assert all(c["outcome"] == "ok" for c in calls)
    assert sum(r["outcomes"].get("refreshed", 0) for r in results) + exits[0] == count
    _assert_no_silent_loss(sandbox, postgres_url, key, "revoked", context=exits, expected=count)
