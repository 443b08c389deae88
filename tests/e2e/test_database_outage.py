"""The database goes away under running filmroll processes and comes back: nobody exits, nobody needs a restart,
no refresh overlaps another, every due account is refreshed exactly once, and work resumes within a poll.

PostgreSQL outages run on a throwaway server of the test's own (``tests/pgcluster.py``), never the shared one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from filmroll.store import migrate
from filmroll.store.database import Database
from filmroll.store.tables import Account, Source, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from tests import aio
from tests.e2e.test_workers import _env, _kill_leftovers, _outcomes, _worker
from tests.pgcluster import Cluster, throwaway_cluster
from tests.pgproxy import proxy_for
from tests.seeding import seed_accounts
from tests.webapp import free_port

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 10
POLL_SECONDS = 2.0  # the worker's idle poll


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster


def _prepare(sandbox, url: str, count: int, *, due: bool = True) -> str:
    key = generate_key()

    async def build() -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
            await seed_accounts(database, Vault(Keyring(parse_keys(key))), sandbox, count, due=due)
        finally:
            await database.dispose()

    aio.run(build())
    return key


def _read(url: str, query):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        database = Database(url)
        try:
            async with database.read() as session:
                return (await session.execute(query)).all()
        finally:
            await database.dispose()

    return aio.run(read())


def _write(url: str, *statements) -> None:  # type: ignore[no-untyped-def]
    async def write() -> None:
        database = Database(url)
        try:
            async with database.transaction() as session:
                for statement in statements:
                    await session.execute(statement)
        finally:
            await database.dispose()

    aio.run(write())


def _refresh_calls_per_account(sandbox) -> Counter[str]:
    calls = sandbox.control.calls(endpoint="refresh", limit=100_000)
    assert all(c["outcome"] == "ok" for c in calls), [c for c in calls if c["outcome"] != "ok"][:3]
    return Counter(c["account"] for c in calls)


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@contextlib.contextmanager
def _serving(env: dict[str, str], log: Path, *args: str,
             scheme: str = "http") -> Iterator[tuple[subprocess.Popen, httpx.Client]]:
    """``filmroll serve ARGS`` on a port of its own, and a client of it (``https``: its certificate not checked)."""
    port = free_port()
    env = {**env, "FILMROLL_WEB__PORT": str(port),
           "FILMROLL_INSTAGRAM__REDIRECT_URI": f"{scheme}://127.0.0.1:{port}/callback"}
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen([sys.executable, "-m", "filmroll", "serve", *args], stdout=output, stderr=output,
                                   text=True, env=env)
    client = httpx.Client(base_url=f"{scheme}://127.0.0.1:{port}", timeout=10, verify=False)
    try:
        _wait_for(lambda: _answers(client), 60, "filmroll serve to start")
        yield process, client
    finally:
        client.close()
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (the process drains), then SIGKILL if it has not ended within a minute."""
    process.terminate()
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_serve_rides_out_a_database_outage(sandbox, cluster, tmp_path):
    url = cluster.create_database("filmroll")
    key = _prepare(sandbox, url, 20, due=False)
    env = _env(sandbox, url, key)
    log = tmp_path / "serve.log"
    with _serving(env, log) as (process, client):
        assert client.get("/readyz").json()["status"] == "ready"
        # Due while the database is down: a refresh and a sync of every account.
        soon = datetime.now(UTC) + timedelta(seconds=3)
        _write(url, update(Token).values(next_refresh_at=soon), update(Source).values(next_sync_at=soon))
        cluster.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"]["database"]["ok"] is False
        assert client.get("/healthz").status_code == 200  # alive, only not ready
        time.sleep(OUTAGE_SECONDS)
        assert process.poll() is None
        cluster.start()
        back = datetime.now(UTC)
        _wait_for(lambda: client.get("/readyz").status_code == 200, 30, "/readyz to recover")
        synced = lambda: _read(url, select(Source.last_synced_at))  # noqa: E731
        _wait_for(lambda: all(row[0] is not None for row in synced()), 60, "every account to sync")
        first = min(row[0] for row in synced())
        # Work resumes within one poll of the database answering again (plus a reconnect and a sandbox call).
        assert first - back < timedelta(seconds=POLL_SECONDS + 3), (first, back)
        _wait_for(lambda: len(_refresh_calls_per_account(sandbox)) == 20, 60, "every refresh")
        assert process.poll() is None
        body = client.get("/readyz").json()
        assert body["status"] == "ready" and body["checks"]["worker"]["ok"], body
    assert set(_refresh_calls_per_account(sandbox).values()) == {1}
    assert sandbox.control.overlaps("refresh") == []
    stderr = log.read_text()
    assert stderr.count("the database is unreachable") >= 1 and "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.parametrize("fault", ["server stopped", "backends terminated"])
def test_four_workers_ride_out_a_database_outage(sandbox, cluster, fault):
    count = 1000
    url = cluster.create_database("filmroll")
    key = _prepare(sandbox, url, count)
    sandbox.control.add_fault("latency", endpoint="refresh", latency_ms=400)
    sandbox.control.clear_calls()
    env = _env(sandbox, url, key)
    workers = [_worker(env, "--until-idle", "--concurrency", "32", "--no-sync") for _ in range(4)]
    try:
        _wait_for(lambda: len(sandbox.control.calls(endpoint="refresh", limit=100_000)) >= 100, 60,
                  "the first refreshes")
        if fault == "server stopped":
            cluster.stop()
            time.sleep(OUTAGE_SECONDS)
            assert all(w.poll() is None for w in workers)
            cluster.start()
        else:
            for _ in range(6):
                cluster.terminate_backends("filmroll")
                time.sleep(0.5)
        results = [_outcomes(w, timeout=300) for w in workers]
    finally:
        _kill_leftovers(workers)
    per_account = _refresh_calls_per_account(sandbox)
    left = _read(url, select(Token.account_id, Token.lease_owner, Token.lease_until, Token.refresh_started_at)
                 .where(Token.version == 1))
    assert len(per_account) == count and set(per_account.values()) == {1}, \
        (Counter(per_account.values()), left[:10], [(r["owner"], r["crashed"], r["stderr"][-1500:]) for r in results])
    assert sandbox.control.overlaps("refresh") == []
    assert sum(r["outcomes"].get("refreshed", 0) for r in results) == count, [r["outcomes"] for r in results]
    assert all(r["crashed"] == 0 and "Traceback" not in r["stderr"] for r in results), \
        [r["stderr"][-2000:] for r in results]
    if fault == "server stopped":
        # The outage was met: by a claim or renewal (counted as an outage), or by a refreshed token's write, which
        # waits in memory (a worker whose slots were all busy at Instagram claims and renews nothing for a while).
        assert any(r["database_outages"] or "held in memory" in r["stderr"] for r in results), \
            [r["stderr"][-1000:] for r in results]
    rows = _read(url, select(Account.status, Token.version, Token.lease_until).join(Token))
    assert {(status, version) for status, version, _ in rows} == {("active", 2)}
    # A lease an outage kept a worker from giving back just runs out (60 s), like a crashed worker's.
    latest = datetime.now(UTC) + timedelta(seconds=61)
    assert all(until is None or until < latest for _, _, until in rows)


def test_a_claim_whose_commit_answer_is_lost_is_given_back_at_once(sandbox, postgres_url):
    """The server commits a claim of 32 leases and the connection drops before the worker hears it: the worker
    cannot know it holds them, yet finds them by the expiry it would have written and refreshes them in this run,
    instead of letting them sit out a 60 s lease with nothing running on them (an --until-idle run ends first)."""
    count = 40
    key = _prepare(sandbox, postgres_url, count)
    sandbox.control.clear_calls()
    with proxy_for(postgres_url) as proxy:
        proxy.lose_next_claim_commit()
        worker = _worker(_env(sandbox, proxy.url_for(postgres_url), key), "--until-idle", "--no-sync")
        try:
            result = _outcomes(worker, timeout=120)
        finally:
            _kill_leftovers([worker])
        assert proxy.lost_commits == 1
    assert result["database_outages"] == 1 and result["crashed"] == 0, result
    assert result["outcomes"] == {"refreshed": count}, (result["outcomes"], result["stderr"][-4000:])
    assert set(_refresh_calls_per_account(sandbox).values()) == {1}
    assert len(_refresh_calls_per_account(sandbox)) == count
    rows = _read(postgres_url, select(Token.version, Token.lease_owner))
    assert rows and all(version == 2 and owner is None for version, owner in rows), rows


def test_a_worker_waits_out_the_sqlite_write_lock_held_past_its_lease_and_busy_timeout(sandbox, tmp_path):
    """Another process holds SQLite's write lock for 12 s, past the 5 s lease and a 3 s busy_timeout: the worker's
    writes fail with "database is locked" meanwhile, and it carries on once the lock is free."""
    url = f"sqlite:///{tmp_path / 'filmroll.db'}?timeout=3"
    count = 120
    key = _prepare(sandbox, url, count)
    sandbox.control.add_fault("latency", endpoint="refresh", latency_ms=1000)
    sandbox.control.clear_calls()
    env = _env(sandbox, url, key)
    # The lock holder starts first and takes the lock when told: on a loaded machine a Python started only then took
    # long enough for the worker to be done before the lock was there to be felt.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(tmp_path / 'filmroll.db')!r}, timeout=60, isolation_level=None)\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(12); c.execute('ROLLBACK')\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        assert holder.stdin is not None and holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        worker = _worker(env, "--until-idle", "--concurrency", "8", "--lease-seconds", "5", "--no-sync")
        _wait_for(lambda: len(sandbox.control.calls(endpoint="refresh")) >= 8, 60, "the first refreshes")
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        holder.communicate(timeout=60)
        result = _outcomes(worker, timeout=300)
    finally:
        _kill_leftovers([worker, holder])
    # Jobs whose leases ran out under the lock were abandoned (another worker could have taken them over); the
    # refreshed tokens they held were still written once the lock was free. A job the lock interrupted before its
    # call to Instagram gave its lease back and was claimed again: every account ends refreshed, each once.
    outcomes = result["outcomes"]
    assert outcomes.get("refreshed", 0) == count and set(outcomes) <= {"refreshed", "interrupted"}, result
    assert result["crashed"] == 0, result
    # The lock was felt: a write failed with "database is locked" and was retried (a claim or renewal: the worker's
    # outage warning; a refreshed token's write: the refresher's), or leases ran out unrenewed behind it and their
    # jobs were abandoned, whichever the queue for the one write connection made of it on a loaded machine.
    felt = ("the database is unreachable" in result["stderr"] or "held in memory" in result["stderr"]
            or result["abandoned"] > 0)
    assert felt, result
    rows = _read(url, select(Account.status, Token.version).join(Token))
    assert set(rows) == {("active", 2)} and len(rows) == count
    per_account = _refresh_calls_per_account(sandbox)
    assert len(per_account) == count and set(per_account.values()) == {1}
    assert sandbox.control.overlaps("refresh") == []
    with sqlite3.connect(tmp_path / "filmroll.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_a_standalone_worker_rides_out_a_database_outage(sandbox, cluster, tmp_path):
    """`filmroll worker` as many-machine deployments run it (no --until-idle, sync and mirror on): PostgreSQL
    stopped for 10 s under it once ended it with exit 9, while `serve`'s embedded worker rode the same outage."""
    url = cluster.create_database("filmroll")
    key = _prepare(sandbox, url, 10, due=False)
    env = _env(sandbox, url, key)
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen([sys.executable, "-m", "filmroll", "worker"], stdout=output, stderr=output,
                                  text=True, env=env)
    try:
        time.sleep(3)  # started and idle: nothing is due yet
        assert worker.poll() is None, log.read_text()
        # Due while the database is down: a refresh, a sync and a mirror pass of every account.
        soon = datetime.now(UTC) + timedelta(seconds=2)
        _write(url, update(Token).values(next_refresh_at=soon), update(Source).values(next_sync_at=soon))
        sandbox.control.add_fault("latency", latency_ms=4000, times=20)  # calls in flight as the server stops
        # Under it, not before it: on a loaded machine the worker may still be starting (migrating, opening the
        # vault) seconds later, and a worker that cannot reach its database as it starts says so and exits 9.
        held = lambda: _read(url, select(Source.id).where(Source.sync_lease_owner.is_not(None)))  # noqa: E731
        _wait_for(lambda: bool(held()), 90, "the worker to claim the due syncs")
        cluster.stop()
        time.sleep(OUTAGE_SECONDS)
        assert worker.poll() is None, log.read_text()[-3000:]  # alive through the outage
        cluster.start()
        synced = lambda: _read(url, select(Source.last_synced_at))  # noqa: E731
        _wait_for(lambda: all(row[0] is not None for row in synced()), 90, "every account to sync after the outage")
        assert worker.poll() is None
    finally:
        _stop(worker)
    said = log.read_text()
    assert worker.returncode == 0, said[-3000:]
    assert said.count("the database is unreachable") >= 1 and "Traceback" not in said, said[-3000:]
