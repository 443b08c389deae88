"""Sync throughput: filmroll's worker against the sandbox with emulated network latency, and in the same run a
naive collector written the way seed 003 would (one account after another, a plain blocking HTTP client).

Run by hand (never in CI):  .venv/bin/python bench/sync.py --accounts 2000 --latency-ms 100
(``--postgres postgresql://postgres@127.0.0.1:5432/postgres`` for PostgreSQL instead of SQLite; ``--help`` for more)

Reported: account-syncs per second, worker CPU per account-sync, Instagram calls per unchanged account, peak RSS.
The sandbox runs in its own process; the first sync and the naive loop in this one; each measured unchanged pass
in a worker process of its own, once per event loop (uvloop, filmroll's, and asyncio's as the baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing
import os
import pstats
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
from common import cpu, process_cpu, start_sandbox, status_mb, thread_cpu
from sqlalchemy import select, update

from filmroll import eventloop
from filmroll.platform import InstagramLoginClient
from filmroll.runtime import sync_job
from filmroll.secret import Secret
from filmroll.service import posts
from filmroll.service.sync import Syncer
from filmroll.store import migrate
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.store.tables import Account, Source, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.worker import Worker


def _instagram(app: dict, base: str, connections: int) -> InstagramLoginClient:
    return InstagramLoginClient(app_id=app["app_id"], app_secret=Secret(app["app_secret"]),
                                redirect_uri=app["redirect_uris"][0], graph_url=base, max_connections=connections)


async def seed(database: Database, vault: Vault, tokens: list[dict]) -> None:
    for start in range(0, len(tokens), 5000):  # in chunks, so seeding does not set the peak RSS
        await _seed(database, vault, tokens[start:start + 5000], start)


async def _seed(database: Database, vault: Vault, tokens: list[dict], first: int) -> None:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        session.add_all([Account(id=i + 1, ig_user_id=t["ig_id"], app_scoped_id=t["user_id"], username=f"a{i}",
                                 slug=f"a{i}", status="active", connected_at=now, created_at=now, updated_at=now)
                         for i, t in enumerate(tokens, start=first)])
        await session.flush()
        # Each account's own source, due now (the sync's schedule is the source's).
        session.add_all([Source(id=i + 1, kind="account", account_id=i + 1, query="", status="active", created_at=now,
                                next_sync_at=now, sync_failures=0, mirror_failures=0)
                         for i, _ in enumerate(tokens, start=first)])
        for i, t in enumerate(tokens, start=first):
            sealed = vault.seal(Secret(t["access_token"]), i + 1)
            session.add(Token(account_id=i + 1, ciphertext=sealed.ciphertext, key_id=sealed.key_id, kind="long",
                              permissions="instagram_business_basic", version=1, refresh_failures=0,
                              issued_at=now, expires_at=now + timedelta(days=60),
                              next_refresh_at=now + timedelta(days=30)))


async def run_worker(database: Database, vault: Vault, base: str, app: dict, concurrency: int) -> tuple[int, float]:
    async with _instagram(app, base, concurrency) as instagram:
        syncer = Syncer(database, vault, instagram, owner="bench", batch=WriteBatch(database))
        worker = Worker(database, [sync_job(syncer)], owner="bench", concurrency=concurrency, batch=concurrency,
                        idle_poll=0.05)
        started = time.monotonic()
        stats = await worker.run(asyncio.Event(), until_idle=True)
        return sum(stats.outcomes.values()), time.monotonic() - started


async def prime(database: Database, vault: Vault, base: str, app: dict, concurrency: int) -> tuple[int, float]:
    """Instead of a first full sync (hours at 100 000 accounts), record each account's newest-page fingerprint as a
    finished sync would; the unchanged pass then does exactly what it does in steady state (media rows are never
    read on that path, so their absence changes nothing it does)."""
    async with _instagram(app, base, concurrency) as instagram:
        async with database.read() as session:
            rows = (await session.execute(select(Token.account_id, Token.ciphertext, Token.key_id))).all()
        queue, found = list(rows), []
        started = time.monotonic()

        async def puller() -> None:
            while queue:
                account_id, ciphertext, key_id = queue.pop()
                _, page = await instagram.profile_and_media(vault.open(ciphertext, key_id, account_id))
                found.append((account_id, posts.fingerprint(page)))

        await asyncio.gather(*(puller() for _ in range(concurrency)))
        now = datetime.now(UTC)
        async with database.transaction() as session:
            await session.execute(update(Source), [{"id": i, "media_fingerprint": f, "full_synced_at": now}
                                                   for i, f in found])  # each account's source has its id
        return len(found), time.monotonic() - started


def unchanged_pass(url: str, key: str, base: str, app: dict, concurrency: int, profile: bool, loop: str,
                   results: multiprocessing.Queue) -> None:
    """The measured pass, in a fresh process: a worker started on a database of N accounts, as in production, so
    its CPU and RSS are the worker's own and not the benchmark's (which holds every token and the seeding)."""
    async def main() -> dict:
        database = Database(url)
        vault = Vault(Keyring(parse_keys(key)))
        rss: list[float] = []
        sampler = asyncio.create_task(sample_rss(rss))
        warm_cpu = cpu()
        await warm_up(database, vault, base, app)
        warm_cpu = cpu() - warm_cpu
        cpu_before, threads_before = cpu(), thread_cpu()
        profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU, not waiting
        if profiler:
            profiler.enable()
        count, elapsed = await run_worker(database, vault, base, app, concurrency)
        if profiler:
            profiler.disable()
            profiler.dump_stats("bench/sync.prof")  # for pstats' callers/callees views
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
        worker_cpu = cpu() - cpu_before
        threads = {name: seconds - threads_before.get(name, 0.0) for name, seconds in thread_cpu().items()}
        sampler.cancel()
        await database.dispose()
        return {"count": count, "elapsed": elapsed, "cpu": worker_cpu, "threads": threads, "rss": rss,
                "peak_rss": status_mb("VmHWM"), "warm_cpu": warm_cpu}

    results.put(eventloop.run(main(), prefer_uvloop=loop == "uvloop"))


async def warm_up(database: Database, vault: Vault, base: str, app: dict) -> None:
    """What a long-running worker pays once, not per sync: the first connections (database, sandbox), lazily
    imported modules, first statements. One extra sandbox call, taken back out of the call log."""
    async with database.read() as session:
        account_id, ciphertext, key_id = (await session.execute(
            select(Token.account_id, Token.ciphertext, Token.key_id).limit(1))).one()
    async with database.transaction() as session:
        await session.execute(update(Source).where(Source.id == -1).values(usage_percent=0))
    async with _instagram(app, base, 1) as instagram:
        _, page = await instagram.profile_and_media(vault.open(ciphertext, key_id, account_id))
        posts.fingerprint(page)
    httpx.delete(base + "/_sandbox/calls")


def run_in_child(url: str, key: str, base: str, app: dict, concurrency: int, profile: bool, loop: str) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=unchanged_pass, args=(url, key, base, app, concurrency, profile, loop, results))
    child.start()
    outcome = results.get()
    child.join()
    return outcome


async def sample_rss(into: list[float]) -> None:
    while True:
        into.append(status_mb("VmRSS"))
        await asyncio.sleep(0.2)


async def make_due(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(update(Source).values(next_sync_at=datetime.now(UTC) - timedelta(seconds=1)))


@contextlib.contextmanager
def bench_database(postgres: str | None) -> Iterator[str]:
    """A SQLite file in a temporary directory, or with ``--postgres ADMIN_URL`` a fresh PostgreSQL database made
    through that server's admin database and dropped afterwards."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    import asyncpg

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(postgres)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    name = f"filmroll_bench_{os.getpid()}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def naive(base: str, tokens: list[dict], count: int) -> tuple[float, float]:
    """Seed 003's collector: for each account in turn, fetch the profile, then the recent media."""
    started, cpu_before = time.monotonic(), cpu()
    with httpx.Client(timeout=30) as client:
        for token in tokens[:count]:
            client.get(f"{base}/me", params={"fields": "id,username,media_count",
                                             "access_token": token["access_token"]}).raise_for_status()
            client.get(f"{base}/me/media", params={"fields": "id,caption,media_type,media_url,permalink,timestamp",
                                                   "access_token": token["access_token"]}).raise_for_status()
    return count / (time.monotonic() - started), 1000 * (cpu() - cpu_before) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--naive-accounts", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile the unchanged-accounts pass")
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="run on a fresh PostgreSQL database made through this admin URL instead of SQLite, "
                             "e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--loops", default="uvloop,asyncio",
                        help="event loops to run the unchanged pass on, one pass each (uvloop is filmroll's)")
    parser.add_argument("--prime", action="store_true",
                        help="record first-page fingerprints instead of a first full sync (for 100 000 accounts)")
    args = parser.parse_args()
    sandbox, base = start_sandbox(seed=3)
    try:
        control = httpx.Client(base_url=base + "/_sandbox", timeout=300)
        control.patch("/rate-limits", json={"account_calls": 10**9, "app_calls_per_user": 10**9})
        app = control.get("/").json()
        tokens = control.post("/tokens", json={"first": 0, "count": args.accounts, "kind": "long"}).json()["tokens"]
        control.patch("/switches", json={"latency_ms": args.latency_ms})
        with bench_database(args.postgres) as url:
            key = generate_key()
            database = Database(url)
            vault = Vault(Keyring(parse_keys(key)))

            async def first_pass() -> tuple[int, float, int]:
                await migrate.upgrade(database)
                await seed(database, vault, tokens)
                run_first = prime if args.prime else run_worker
                first_count, first_time = await run_first(database, vault, base, app, args.concurrency)
                first_calls = len(control.get("/calls", params={"limit": 10**6}).json()["data"])
                await database.dispose()  # each measured pass runs in a process of its own (see unchanged_pass)
                return first_count, first_time, first_calls

            async def due() -> None:
                await make_due(database)
                await database.dispose()

            first_count, first_time, first_calls = asyncio.run(first_pass())
            passes = {}
            for loop in args.loops.split(","):
                asyncio.run(due())
                control.delete("/calls")
                sandbox_before = process_cpu(sandbox.pid)
                outcome = run_in_child(url, key, base, app, args.concurrency, args.profile, loop)
                outcome["sandbox_cpu"] = process_cpu(sandbox.pid) - sandbox_before
                outcome["calls"] = len(control.get("/calls", params={"limit": 10**6}).json()["data"])
                print(f"  {loop}: worker start-up before the pass (first connections, first call): "
                      f"{1000 * outcome['warm_cpu']:.0f} ms CPU, not counted per sync")
                for name, spent in sorted(outcome["threads"].items(), key=lambda kv: -kv[1]):
                    if spent > 0.01:
                        print(f"  {loop}: worker thread {name!r}: {1000 * spent / outcome['count']:.2f} ms CPU "
                              f"per sync")
                passes[loop] = outcome
        naive_rate, naive_cpu = naive(base, tokens, args.naive_accounts)
    finally:
        sandbox.terminate()
        sandbox.wait()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"accounts {args.accounts}, latency {args.latency_ms} ms, worker concurrency {args.concurrency}, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'scenario':<44} {'syncs/s':>9} {'CPU ms/sync':>12} {'calls/account':>14}")
    first_label = "priming fingerprints (1 call each)" if args.prime else "first sync (full pass, all media)"
    print(f"{first_label:<44} {first_count / first_time:>9.0f} {'':>12} "
          f"{first_calls / first_count:>14.2f}")
    for loop, outcome in passes.items():
        count = outcome["count"]
        print(f"{'filmroll worker, unchanged accounts, ' + loop:<44} {count / outcome['elapsed']:>9.0f} "
              f"{1000 * outcome['cpu'] / count:>12.2f} {outcome['calls'] / count:>14.2f}")
    print(f"{'naive sequential collector (seed 003)':<44} {naive_rate:>9.1f} {naive_cpu:>12.2f} {2:>14.2f}")
    for loop, outcome in passes.items():
        print(f"{loop}: sandbox CPU per unchanged sync {1000 * outcome['sandbox_cpu'] / outcome['count']:.2f} ms "
              f"(the other side of the loopback); worker RSS {outcome['rss'][0]:.0f} MB at its start, "
              f"{max(outcome['rss']):.0f} MB at most; its peak RSS {outcome['peak_rss']:.0f} MB")
    print(f"peak RSS of the benchmark's own process (tokens, seeding, priming): {rss:.0f} MB")


if __name__ == "__main__":
    main()
