"""The admin UI's accounts page at 100 000 accounts, on SQLite and PostgreSQL: every request through the whole app
(signed in, its middleware, the template), in process over ASGI, timed at the client.

Run by hand (never in CI):  .venv/bin/python bench/accounts_page.py [--accounts 100000] [--rounds 60]
                                [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Pages asked, each ``--rounds`` times, in turn: the first page (those whose owner must sign in again first), a page
deep in the active accounts (a cursor half way), the needs_reauth filter, a search by part of a username that many
match, and one that matches none (the whole table read). The baseline in the same run: the list as it was built
before this page (every account and its token, one query per account), timed once, and ``/healthz`` (the app's
floor). And ``/metrics`` with its database gauges read on every request (``FILMROLL_METRICS__CACHE_SECONDS=0``;
the default reads them at most every 10 s), what one scrape costs at this size.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync import bench_database

from filmroll.service import accounts as account_service
from filmroll.service import admins
from filmroll.service.accounts import AccountView
from filmroll.settings import MetricsSettings, Settings, VaultSettings, WebSettings
from filmroll.store import media, migrate, sources, tokens
from filmroll.store.database import Database
from filmroll.store.tables import Account, Source, Token
from filmroll.vault import generate_key, key_id, parse_keys
from filmroll.web.app import create_app

WORDS = ("cedar", "harbour", "stone", "northern", "kiln", "bakery", "studio", "surf", "field", "lantern")


async def seed(url: str, count: int, key: str) -> None:
    database = Database(url, create=True)
    sealed_with = key_id(parse_keys(key)[0])  # the keyring must hold the key the rows name (no token is opened)
    try:
        await migrate.upgrade(database)
        now = datetime.now(UTC)
        for start in range(0, count, 5_000):
            ids = range(start + 1, min(count, start + 5_000) + 1)
            status = {n: "needs_reauth" if n % 37 == 0 else "disconnected" if n % 101 == 0 else "active" for n in ids}
            async with database.transaction() as session:
                await session.execute(insert(Account), [{
                    "id": n, "ig_user_id": str(17_841_400_000_000_000 + n), "provider": "instagram_login",
                    "username": f"{WORDS[n % 10]}_{WORDS[(n // 10) % 10]}{n}", "slug": f"account-{n}",
                    "status": status[n], "connected_at": now, "created_at": now, "updated_at": now,
                    "followers_count": n % 5_000, "media_count": n % 300} for n in ids])
                await session.execute(insert(Token), [{
                    "account_id": n, "ciphertext": b"x" * 60, "key_id": sealed_with, "kind": "long", "permissions": "",
                    "issued_at": now, "expires_at": now + timedelta(days=60 - n % 60), "version": 1,
                    "refresh_failures": 0} for n in ids])
                await session.execute(insert(Source), [{
                    "id": n, "kind": "account", "account_id": n, "query": "", "status": "active", "created_at": now,
                    "last_synced_at": now, "sync_failures": 0, "mirror_failures": 0} for n in ids])
            print(f"  seeded {ids[-1]:,}", end="\r", flush=True)
        await admins.create(database, "bench", "a long enough password")
    finally:
        await database.dispose()


async def before_this_page(database: Database) -> list[AccountView]:
    """The accounts page's read as it was before this change (e120110: service/accounts.listing)."""
    async with database.read() as session:
        posts = await media.live_counts(session)
        own = await sources.own(session)
        return [account_service.view(a, await tokens.get(session, a.id), own.get(a.id),
                                     posts.get(own[a.id].id, 0) if a.id in own else 0)
                for a in (await session.execute(select(Account).order_by(Account.id))).scalars()]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(url: str, rounds: int, key: str) -> dict[str, tuple[float, float, float]]:
    settings = Settings(database_url=url, vault=VaultSettings(keys=key,
                                                              keys_file=Path("/nonexistent/filmroll.keys")),
                        web=WebSettings(public_url="http://bench.test", password_check_priority="normal"),  # noqa: S106
                        metrics=MetricsSettings(cache_seconds=0))  # every /metrics below reads the database
    app = create_app(settings, upgrade=False)
    results: dict[str, tuple[float, float, float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            form = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
            signed = await client.post("/login", data={"csrf_token": token, "username": "bench",
                                                       "password": "a long enough password"})
            assert signed.status_code == 303, signed.text
            middle = (await client.get("/accounts?status=active")).text
            pages = {"/healthz (floor)": "/healthz", "first page": "/accounts",
                     "deep page (after active:50000)": "/accounts?after=active:50000",
                     "needs_reauth filter": "/accounts?status=needs_reauth",
                     "search 'kiln_st' (many match)": "/accounts?q=kiln_st",
                     "search 'zzz' (none match)": "/accounts?q=zzz",
                     "/metrics (the database's gauges read afresh)": "/metrics"}
            assert "next-page" in middle
            for name, path in pages.items():
                timings = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    answer = await client.get(path)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                results[name] = (statistics.median(timings), percentile(timings, 0.99), max(timings))
                print(f"  {name:34} p50 {results[name][0]:7.1f} ms   p99 {results[name][1]:7.1f} ms   "
                      f"max {results[name][2]:7.1f} ms", flush=True)
    database = Database(url)
    try:
        started = time.perf_counter()
        listed = await before_this_page(database)
        before = (time.perf_counter() - started) * 1000
        print(f"  before this page: every account and its token, one query each: {len(listed):,} accounts in "
              f"{before:,.0f} ms (no HTML made)", flush=True)
        results["before: the whole list"] = (before, before, before)
    finally:
        await database.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql"):
        if args.only and kind != args.only:
            continue
        with bench_database(None if kind == "sqlite" else args.postgres) as url:
            print(f"{kind}: seeding {args.accounts:,} accounts", flush=True)
            key = generate_key()
            asyncio.run(seed(url, args.accounts, key))
            print(f"\n{kind}: {args.rounds} requests each", flush=True)
            asyncio.run(measure(url, args.rounds, key))


if __name__ == "__main__":
    main()
