"""Hashtag sources at scale: many tags, each with a full page of new posts in one poll, against the sandbox (its own
process) with the CDN at emulated network latency; and, in the same run, today's account sync as the baseline.

Run by hand (never in CI):  .venv/bin/python bench/hashtags.py [--tags 100] [--posts 50] [--latency-ms 80]

Reported:
1. The first poll of every tag (one Facebook Login account per 25 tags: the quota is 30 a week per account): wall
   time until every post is stored, and then until every original is mirrored (colours and placeholder made; a
   hashtag's variants wait for approval), worker CPU per post, peak RSS of this process and its rendering processes.
2. The baseline in the same run: the first sync of as many Instagram Login accounts with about as many posts, worker
   CPU per post.
3. An unchanged poll of every tag: Instagram calls, and worker CPU per tag.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from common import cpu, process_cpu, start_sandbox, status_mb
from sqlalchemy import func, select, update

from filmroll import eventloop
from filmroll.platform import Clients, FacebookLoginClient, InstagramLoginClient
from filmroll.platform.cdn import CdnClient
from filmroll.runtime import http_session, mirror_job, sync_job
from filmroll.secret import Secret
from filmroll.service.mirror import Mirror
from filmroll.service.policy import MirrorPolicy, SyncPolicy
from filmroll.service.renderer import Renderer
from filmroll.service.source_kinds import SourceKinds, SyncParts
from filmroll.storage import open_storage
from filmroll.store import migrate
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.store.tables import Account, MediaFile, MediaItem, Source, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.worker import Worker

TAGS_PER_ACCOUNT = 25
FACEBOOK_SCOPES = "instagram_basic,pages_show_list,pages_read_engagement,business_management"


def _control(base: str, method: str, path: str, body: dict | None = None) -> dict:
    answer = httpx.request(method, f"{base}/_sandbox{path}", json=body, timeout=60)
    answer.raise_for_status()
    return answer.json()


async def _seed(database: Database, vault: Vault, base: str, tags: int, baseline: int) -> tuple[list[int], int]:
    """Facebook Login accounts with their hashtag sources (due now), and Instagram Login accounts for the baseline
    (not due yet). Returns the hashtag sources' ids and the baseline's post count."""
    now = datetime.now(UTC)
    facebook = [_control(base, "POST", "/facebook/tokens", {"account": 1000 + n})
                for n in range(-(-tags // TAGS_PER_ACCOUNT))]
    minted = _control(base, "POST", "/tokens", {"first": 2000, "count": baseline,
                                                "permissions": ["instagram_business_basic"]})["tokens"]
    expected = 0
    source_ids = []
    async with database.transaction() as session:
        rows = [(t["ig_id"], "facebook", t["access_token"], FACEBOOK_SCOPES) for t in facebook] + \
            [(t["ig_id"], "instagram_login", t["access_token"], "instagram_business_basic") for t in minted]
        for n, (ig_id, provider, token, scopes) in enumerate(rows, start=1):
            session.add(Account(id=n, ig_user_id=ig_id, provider=provider, username=f"bench{n}", slug=f"bench{n}",
                                status="active", connected_at=now, created_at=now, updated_at=now))
            await session.flush()
            sealed = vault.seal(Secret(token), n)
            session.add(Token(account_id=n, ciphertext=sealed.ciphertext, key_id=sealed.key_id, kind="long",
                              provider=provider, permissions=scopes, version=1, refresh_failures=0, issued_at=now,
                              expires_at=now + timedelta(days=60)))
            session.add(Source(id=n, kind="account", account_id=n, query="", status="active", created_at=now,
                               next_sync_at=None, sync_failures=0, mirror_failures=0))
        for n in range(tags):
            source = Source(kind="hashtag", account_id=1 + n // TAGS_PER_ACCOUNT, query=f"benchtag{n}",
                            status="active", created_at=now, next_sync_at=now, sync_failures=0, mirror_failures=0)
            session.add(source)
            await session.flush()
            source_ids.append(source.id)
    for t in minted:
        expected += _control(base, "GET", f"/accounts/{t['account']}")["media_count"]
    return source_ids, expected


async def _count(database: Database, sources: list[int], *, mirrored: bool = False) -> int:
    async with database.read() as session:
        query = select(func.count()).select_from(MediaItem).where(MediaItem.source_id.in_(sources))
        if mirrored:
            query = query.where(MediaItem.mirrored_at.is_not(None))
        return int(await session.scalar(query) or 0)


def _children() -> list[int]:
    """This process's child processes (the rendering pool's; the sandbox's is not ours: started by Popen, it is)."""
    found: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _worker(database: Database, jobs: list, concurrency: int) -> Worker:
    return Worker(database, jobs, owner="bench", concurrency=concurrency, idle_poll=0.05)


async def main(args: argparse.Namespace) -> None:
    process, base = start_sandbox(args.seed)
    http = http_session()
    directory = Path(tempfile.mkdtemp(prefix="filmroll-bench-hashtags-"))
    database = Database(f"sqlite:///{directory / 'bench.db'}", create=True)
    renderer = Renderer(2)
    try:
        await migrate.upgrade(database)
        for n in range(args.tags):
            _control(base, "PATCH", f"/hashtags/benchtag{n}", {"posts_per_day": 0})
            _control(base, "POST", f"/hashtags/benchtag{n}/media", {"count": args.posts, "caption": "#benchtag"})
        _control(base, "POST", "/faults", {"kind": "latency", "endpoint": "cdn", "latency_ms": args.latency_ms})
        app = _control(base, "GET", "/facebook")
        summary = _control(base, "GET", "")
        key = generate_key()
        vault = Vault(Keyring(parse_keys(key)))
        tag_sources, baseline_posts = await _seed(database, vault, base, args.tags, args.baseline_accounts)
        clients = _clients({**summary, "base": base}, app)
        kinds = SourceKinds.builtin()
        parts = SyncParts(database, vault, clients, "bench", SyncPolicy(), WriteBatch(database))
        syncers = kinds.syncers(parts)  # one set for the run, as a long-running worker has
        mirror = Mirror(database, vault, clients, CdnClient(http, hosts=[base]), open_storage(f"file:{directory}/m"),
                        renderer, owner="bench", policy=MirrorPolicy(), per_host=args.per_host)

        # 1. The first poll of every tag, then the mirror of every post.
        started, spent = time.monotonic(), cpu()
        await _worker(database, [sync_job(syncers, kinds)], 32).run(asyncio.Event(), until_idle=True)
        stored_in, sync_cpu = time.monotonic() - started, cpu() - spent
        stored = await _count(database, tag_sources)
        renderers = [p for p in _children() if p != process.pid]
        spent, render_before = cpu(), sum(process_cpu(p) for p in renderers)
        sandbox_before = process_cpu(process.pid)
        if args.mirror:
            await _worker(database, [mirror_job(mirror, kinds)], 32).run(asyncio.Event(), until_idle=True)
        sandbox_cpu = process_cpu(process.pid) - sandbox_before
        mirrored_in = time.monotonic() - started
        renderers = [p for p in _children() if p != process.pid]
        mirror_cpu = cpu() - spent + sum(process_cpu(p) for p in renderers) - render_before
        mirrored = await _count(database, tag_sources, mirrored=True)
        async with database.read() as session:
            described = int(await session.scalar(select(func.count()).select_from(MediaFile).where(
                MediaFile.source_id.in_(tag_sources), MediaFile.role == "original", MediaFile.variant == "",
                MediaFile.color.is_not(None), MediaFile.placeholder.is_not(None))) or 0)
        worker_rss = status_mb("VmHWM")
        rss = worker_rss + sum(_peak_mb(p) for p in renderers)

        # 2. The baseline: Instagram Login accounts' first sync, same worker, same run.
        async with database.transaction() as session:
            await session.execute(update(Source).where(Source.kind == "account", Source.account_id > len(
                tag_sources) // TAGS_PER_ACCOUNT + 1).values(next_sync_at=datetime.now(UTC)))
        spent = cpu()
        await _worker(database, [sync_job(syncers, kinds)], 32).run(asyncio.Event(), until_idle=True)
        baseline_cpu = cpu() - spent
        async with database.read() as session:
            account_posts = int(await session.scalar(select(func.count()).select_from(MediaItem).join(
                Source, Source.id == MediaItem.source_id).where(Source.kind == "account")) or 0)

        # 3. An unchanged poll of every tag, in a worker process of its own (its CPU is the worker's, not this
        # process's, which holds every post it stored): after a restart (every tag's quota entry read once), then
        # as a long-running worker polls (the 15-minute pause shortened to past the connections' keep-alive).
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=unchanged_passes, args=(
            f"sqlite:///{directory / 'bench.db'}", key, base, summary, app, tag_sources, args.profile, results))
        child.start()
        passes, outcomes, calls, child_rss = results.get()
        child.join()
        unchanged_cpu = passes[-1]

        print(f"tags {args.tags} x {args.posts} new posts; CDN latency {args.latency_ms} ms; "
              f"{args.per_host} downloads per host")
        print(f"1. first poll: {stored} posts stored in {stored_in:.1f} s; {mirrored} mirrored ({described} originals "
              f"with colours and placeholder) {mirrored_in:.1f} s after the poll began")
        print(f"   worker CPU: sync {1000 * sync_cpu / max(stored, 1):.2f} ms per post; mirror (with rendering) "
              f"{1000 * mirror_cpu / max(mirrored, 1):.2f} ms per post; the sandbox's CDN drawing the pictures "
              f"{1000 * sandbox_cpu / max(mirrored, 1):.2f} ms per post (the same two cores)")
        print(f"   peak RSS: the worker {worker_rss:.0f} MB; with its rendering processes {rss:.0f} MB")
        print(f"2. baseline, account sync in the same run: {account_posts} posts (expected {baseline_posts}), "
              f"{1000 * baseline_cpu / max(account_posts, 1):.2f} ms worker CPU per post")
        print(f"3. unchanged poll of {args.tags} tags, twice: outcomes {dict(outcomes)}, calls {calls}; "
              f"{1000 * unchanged_cpu / args.tags:.2f} ms worker CPU per tag as a long-running worker polls "
              f"({1000 * passes[0] / args.tags:.2f} ms in its first pass after a start); the worker's peak RSS "
              f"{child_rss:.0f} MB")
        await clients_close(clients)
    finally:
        renderer.close()
        await http.close()
        await database.dispose()
        process.kill()


def _clients(summary: dict, app: dict) -> Clients:
    return Clients([
        InstagramLoginClient(app_id=summary["app_id"], app_secret=Secret(summary["app_secret"]),
                             redirect_uri=app["redirect_uris"][0], graph_url=summary["base"], max_connections=64),
        FacebookLoginClient(app_id=app["app_id"], app_secret=Secret(app["app_secret"]),
                            redirect_uri=app["redirect_uris"][0], dialog_url=app["dialog_url"],
                            graph_url=app["graph_url"], max_connections=64)])


def unchanged_passes(url: str, key: str, base: str, summary: dict, app: dict, tag_sources: list[int], profile: bool,
                     results: multiprocessing.Queue) -> None:
    """Two unchanged passes over every tag by one worker in a fresh process: the first after its start, the second
    as it goes on polling. A warm-up first: one read, one write, one call (the first connections, lazy imports)."""
    async def main() -> tuple[list[float], dict, dict, float]:
        database = Database(url)
        vault = Vault(Keyring(parse_keys(key)))
        clients = _clients({**summary, "base": base}, app)
        kinds = SourceKinds.builtin()
        syncers = kinds.syncers(SyncParts(database, vault, clients, "bench", SyncPolicy(), WriteBatch(database)))
        async with database.transaction() as session:
            await session.execute(update(Source).where(Source.id == -1).values(usage_percent=0))
        httpx.get(f"{base}/_sandbox/", timeout=30)
        passes: list[float] = []
        # One worker for both passes, as `filmroll worker` runs (its default idle_poll): a pass is the CPU from the
        # moment the tags fall due until the worker has polled every one, idle claims included.
        worker = Worker(database, [sync_job(syncers, kinds)], owner="bench", concurrency=32)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        for _ in range(2):
            httpx.delete(f"{base}/_sandbox/calls", timeout=30)
            await asyncio.sleep(6)  # past the sandbox's keep-alive: new connections, as after 15 minutes
            done = sum(worker.stats.outcomes.values())
            profiler = cProfile.Profile(time.thread_time) if profile and passes else None
            if profiler is not None:
                profiler.enable()
            spent = cpu()
            async with database.transaction() as session:
                await session.execute(update(Source).where(Source.id.in_(tag_sources))
                                      .values(next_sync_at=datetime.now(UTC)))
            while sum(worker.stats.outcomes.values()) < done + len(tag_sources):
                await asyncio.sleep(0.01)
            passes.append(cpu() - spent)
            if profiler is not None:
                profiler.disable()
                for order in ("tottime", "cumulative"):
                    pstats.Stats(profiler).sort_stats(order).print_stats(30)
        stop.set()
        await running
        outcomes = {str(k): v for k, v in worker.stats.outcomes.items()}
        calls = httpx.get(f"{base}/_sandbox/calls/summary", timeout=30).json()
        for client in clients:
            await client.aclose()
        await database.dispose()
        return passes, outcomes, calls, status_mb("VmHWM")

    results.put(eventloop.run(main()))


async def clients_close(clients: Clients) -> None:
    for client in clients:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--baseline-accounts", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mirror", dest="mirror", action="store_false", help="Skip the mirror (phase 1b)")
    parser.add_argument("--profile", action="store_true", help="Profile the unchanged poll (cProfile)")
    eventloop.run(main(parser.parse_args()))
