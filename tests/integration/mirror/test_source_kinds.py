"""The sources seam, proved from outside: a kind of source filmroll has never heard of, written here in the test tree
alone (a syncer class and one registration, nothing under ``src/``), is claimed, synced and mirrored by the worker's
own jobs, and a feed shows its posts with their pictures served from filmroll's storage.

The kind, a "wall": a list of pictures some other service publishes as JSON at a URL (the source's query). Its
posts belong to no connected account and are read with no token."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from filmroll.runtime import mirror_job, sync_job
from filmroll.service import feed_documents
from filmroll.service import feeds as feed_service
from filmroll.service.feed_documents import DocumentSettings
from filmroll.service.source_kinds import KindSpec, SourceKinds, SyncParts
from filmroll.store import files as file_store
from filmroll.store import media as media_store
from filmroll.store import sources
from filmroll.store.sources import SyncClaim
from filmroll.store.tables import MediaFile, MediaItem, Source
from filmroll.vocabulary import Outcome
from filmroll.worker import Worker
from tests.integration.mirror.test_refusals import cdn_serving
from tests.seeding import index_with

pytestmark = pytest.mark.anyio
WALL = "wall"
SETTINGS = DocumentSettings(widths=(320, 640), formats=("webp",), dead_account_days=90, max_posts=100)


class WallSyncer:
    """Syncs a wall: every post it lists is stored (or updated) under the source, and mirrored next."""

    def __init__(self, parts: SyncParts, http: Any) -> None:
        self.parts = parts
        self.http = http

    async def run(self, claim: SyncClaim, *, full: bool = False) -> Outcome:
        async with self.http.get(claim.query) as answer:
            listed = await answer.json()
        now = self.parts.database.clock.now()
        rows = [{"ig_media_id": p["id"], "media_type": "IMAGE", "caption": p["caption"], "media_url": p["url"],
                 "timestamp": datetime.fromisoformat(p["at"]), "children": []} for p in listed]
        async with self.parts.database.transaction() as session:
            await media_store.upsert(session, claim.source_id, rows, now)
            await file_store.mirror_due(session, claim.source_id, now)
            if not await sources.synced(session, owner=self.parts.owner, source_id=claim.source_id, values={
                    "last_synced_at": now, "next_sync_at": now + timedelta(hours=1), "sync_failures": 0}):
                return Outcome.STALE_LEASE
        return Outcome.SYNCED


def _sandbox_pictures(sandbox, count: int) -> list[dict[str, str]]:
    """Pictures on the sandbox's CDN (the hosts the mirror may fetch from), as the wall lists them."""
    index = index_with(sandbox, count, 40)
    token = sandbox.control.mint_token(index)["access_token"]
    media = httpx.get(f"{sandbox.base_url}/me/media", timeout=30, params={
        "fields": "id,media_type,media_url", "limit": 50, "access_token": token}).json()["data"]
    images = [m for m in media if m["media_type"] == "IMAGE"][:count]
    assert len(images) == count
    return [{"id": f"wall-{n}", "caption": f"on the wall #{n}", "url": m["media_url"],
             "at": (datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat()}
            for n, m in enumerate(images)]


@pytest.mark.parametrize("storage", ["local"], indirect=True)  # the storages are the mirror tests'
async def test_a_kind_registered_from_outside_is_claimed_synced_mirrored_and_shown(rig, harness, sandbox):
    listed = _sandbox_pictures(sandbox, 3)

    async def wall(request: web.Request) -> web.Response:
        return web.json_response(listed)

    async with cdn_serving(wall) as base:  # any loopback server of the test's own
        now = harness.database.clock.now()
        async with harness.database.transaction() as session:
            source = await sources.add(session, kind=WALL, account_id=None, query=f"{base}/wall.json",
                                       now=now - timedelta(seconds=1))
        kinds = SourceKinds.builtin().with_kind(KindSpec(WALL, lambda parts: WallSyncer(parts, harness.http)))
        parts = SyncParts(harness.database, harness.vault, harness.instagram, "worker-a", harness.syncer().policy)

        # A worker that does not know the kind leaves its source alone.
        plain = Worker(harness.database, [sync_job(SourceKinds.builtin().syncers(parts)),
                                          mirror_job(rig.mirror("worker-b"))], owner="worker-b", idle_poll=0.05)
        assert (await plain.run(asyncio.Event(), until_idle=True)).outcomes == {}

        jobs = [sync_job(kinds.syncers(parts), kinds), mirror_job(rig.mirror("worker-a"), kinds)]
        worker = Worker(harness.database, jobs, owner="worker-a", idle_poll=0.05)
        outcomes = (await worker.run(asyncio.Event(), until_idle=True)).outcomes
    assert outcomes == {"synced": 1, "mirrored": 1}, outcomes

    async with harness.database.read() as session:
        stored = await session.get(Source, source.id)
        posts = list((await session.execute(MediaItem.__table__.select().where(
            MediaItem.source_id == source.id))).all())
        files = list((await session.execute(MediaFile.__table__.select().where(
            MediaFile.source_id == source.id))).all())
    assert stored.last_synced_at is not None and stored.sync_lease_owner is None and stored.mirror_error is None
    assert sorted(p.ig_media_id for p in posts) == ["wall-0", "wall-1", "wall-2"]
    assert all(p.mirrored_at is not None for p in posts)
    originals = [f for f in files if f.role == "original"]
    assert len(originals) == 3 and all(f.storage_key.startswith(f"sources/{source.id}/") for f in files)
    assert {f.storage_key for f in files} <= await rig.keys()

    info = await feed_service.create(harness.database, feed_service.FeedSpec("The wall", "the-wall", (),
                                                                             sources=(source.id,)))
    assert info.sources == [f"{WALL} {base}/wall.json"] and info.source_ids == [source.id] and info.accounts == []
    documents = feed_documents.render(await feed_documents.gather(harness.database, "the-wall", SETTINGS), SETTINGS)
    page = json.loads(documents.pages[None])
    assert [p["id"] for p in page["posts"]] == ["wall-2", "wall-1", "wall-0"]  # newest first
    assert [p["source"] for p in page["posts"]] == [{"kind": WALL, "name": f"{base}/wall.json"}] * 3
    assert all(p["username"] is None for p in page["posts"])
    assert all(p["account"] is None for p in page["posts"]) and page["accounts"] == []
    for post in page["posts"]:
        assert post["fallback"]["url"].startswith(f"/media/sources/{source.id}/")
        assert all(size["webp"].startswith(f"/media/sources/{source.id}/") for size in post["sizes"])
    # An edit of the feed keeps the wall (the CLI and the admin name only its accounts).
    edited = await feed_service.edit(harness.database, "the-wall", {"title": "Our wall"})
    assert edited.source_ids == [source.id]
