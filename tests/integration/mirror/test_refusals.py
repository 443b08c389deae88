"""Safe downloads: a URL outside the CDN hosts, a redirect to another origin (127.0.0.1 elsewhere), a 50 MB body and a
decompression bomb are each refused with a clear event, and nothing is stored. A hostile "CDN" on loopback serves
them; the mirror is told to trust only its origin."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy import select, update

from filmroll import errors
from filmroll.platform.cdn import CdnClient
from filmroll.runtime import mirror_job
from filmroll.service.mirror import Mirror
from filmroll.service.policy import MirrorPolicy
from filmroll.store import files as file_store
from filmroll.store.tables import Event, MediaChild, MediaFile, MediaItem, Source
from filmroll.worker import Worker
from tests.integration.mirror.conftest import MirrorRig
from tests.seeding import index_with

pytestmark = pytest.mark.anyio


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")
    return out.getvalue()


@asynccontextmanager
async def cdn_serving(handle) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A "CDN" of the test's own on loopback, answering every /NAME with ``handle``; its origin."""
    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.fixture
async def hostile() -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        elsewhere = sock.getsockname()[1]  # nothing listens there: a fetch would be refused by the OS, not by us
    bomb = _bomb()
    calls: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        if request.path == "/redirect.jpg":
            raise web.HTTPFound(f"http://127.0.0.1:{elsewhere}/internal")
        if request.path == "/huge.jpg":
            response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})  # no length announced
            await response.prepare(request)
            for _ in range(50):
                await response.write(b"\xff" * 1_000_000)
            return response
        if request.path == "/bomb.png":
            return web.Response(body=bomb, content_type="image/png")
        return web.Response(body=b"<html>not a picture</html>", content_type="image/jpeg")

    async with cdn_serving(handle) as origin:
        yield origin


async def test_the_cdn_client_refuses_what_is_not_instagrams(hostile, harness):
    cdn = CdnClient(harness.http, hosts=[hostile, "*.cdninstagram.com"], max_bytes=30_000_000)
    for url, why in ((f"{hostile}/redirect.jpg", "not an https URL on Instagram's CDN"),
                     (f"{hostile}/huge.jpg", "more than the 30000000-byte cap"),
                     ("http://scontent.cdninstagram.com/x.jpg", "not an https URL"),
                     ("https://scontent.cdninstagram.com:8443/x.jpg", "not an https URL"),
                     ("https://cdninstagram.com.evil.example/x.jpg", "not an https URL"),
                     ("https://user:pw@scontent.cdninstagram.com/x.jpg", "not an https URL"),
                     ("file:///etc/passwd", "not an https URL")):
        with pytest.raises(errors.DownloadRefusedError, match=why) as caught:
            await cdn.fetch(url)
        assert "pw" not in caught.value.message and "?" not in caught.value.message
    assert cdn.allowed("https://scontent-fra5-1.cdninstagram.com/v/t51/x.jpg?oe=1")


async def test_hostile_urls_are_refused_with_an_event_and_nothing_is_stored(hostile, harness, sandbox, local_storage,
                                                                           renderer):
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    source_id = (await harness.source(account_id)).id
    await harness.sync()
    rig = MirrorRig(harness, local_storage, renderer, [sandbox.base_url, hostile])
    targets = {"https://evil.example/a.jpg": "not an https URL on Instagram's CDN hosts",
               f"{hostile}/redirect.jpg": "not an https URL on Instagram's CDN hosts",
               f"{hostile}/huge.jpg": "byte cap", f"{hostile}/bomb.png": "decompression bomb",
               f"{hostile}/page.jpg": "neither a picture nor a video"}
    async with harness.database.transaction() as session:
        posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id)
                                            .order_by(MediaItem.id))).scalars())
        for post, url in zip(posts, targets, strict=False):
            await session.execute(update(MediaItem).where(MediaItem.id == post.id)
                                  .values(media_url=url, thumbnail_url=url, media_type="IMAGE"))
            await session.execute(MediaChild.__table__.delete().where(MediaChild.media_id == post.id))
    assert await rig.run(owner="mirror-a", max_image_bytes=30_000_000, posts_per_pass=50) == {"mirrored": 1}
    async with harness.database.read() as session:
        refused = list((await session.execute(select(Event).where(Event.kind == "media.refused")
                                              .order_by(Event.id))).scalars())
        stored = {m.ig_media_id: m for m in (await session.execute(select(MediaItem))).scalars()}
    # The URL outside the CDN hosts and the body over the byte cap are refusals a setting caused: they wait for it
    # (never fetched or stored meanwhile); the rest are the bytes' own doing, final, each with its event.
    by_setting = {"https://evil.example/a.jpg", f"{hostile}/huge.jpg"}
    assert len(refused) == len(targets) - len(by_setting)
    for post, (url, why) in zip(posts, targets.items(), strict=False):
        row = stored[post.ig_media_id]
        assert row.mirrored_at is None and why in row.mirror_error
        if url in by_setting:
            assert row.mirror_error.startswith("waiting [")
        else:
            assert row.mirror_error.startswith("refused: ")
            assert any(post.ig_media_id in e.message and why in e.message for e in refused)
    refused_ids = [p.ig_media_id for p in posts[:len(targets)]]
    async with harness.database.read() as session:
        rows = list((await session.execute(select(MediaFile).where(MediaFile.ig_media_id.in_(refused_ids)))).scalars())
        every_key = set((await session.execute(select(MediaFile.storage_key))).scalars())
    assert rows == []  # nothing recorded for a refused post
    assert await rig.keys() == every_key  # and no object stored beyond what the other posts recorded


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((1080, 1080), 40 + seed).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


async def test_a_truncated_corrupt_or_slow_picture_is_the_posts_failure_counted_and_given_up(harness, sandbox,
                                                                                            local_storage, renderer):
    """Pillow says "image file is truncated" with a bare OSError, which the worker once read as a database outage:
    it handed the lease back and fetched the picture again at once, ~11 times a second, for ever (/readyz 503, no
    attempt counted). Each bad picture now costs one fetch per attempt, is counted, and is given up with an event."""
    whole = _jpeg(1)
    corrupt = bytearray(_jpeg(2))
    scan = corrupt.index(b"\xff\xda")  # the start-of-scan segment's length made nonsense: the header still reads
    corrupt[scan + 2:scan + 4] = b"\x00\x99"
    bodies = {"/truncated.jpg": whole[:len(whole) // 2], "/corrupt.jpg": bytes(corrupt)}
    calls: dict[str, int] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        calls[request.path] = calls.get(request.path, 0) + 1
        if request.path == "/slow.jpg":
            await asyncio.sleep(5)  # past the CDN client's timeout
        return web.Response(body=bodies.get(request.path, whole), content_type="image/jpeg")

    async with cdn_serving(handle) as cdn_origin:
        (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
        source_id = (await harness.source(account_id)).id
        await harness.sync()
        async with harness.database.transaction() as session:
            posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id)
                                                .order_by(MediaItem.id))).scalars())
            for post, name in zip(posts, ("truncated", "corrupt", "slow"), strict=False):
                await session.execute(update(MediaItem).where(MediaItem.id == post.id).values(
                    media_url=f"{cdn_origin}/{name}.jpg", thumbnail_url=None, media_type="IMAGE"))
                await session.execute(MediaChild.__table__.delete().where(MediaChild.media_id == post.id))
        rig = MirrorRig(harness, local_storage, renderer, [sandbox.base_url, cdn_origin])
        cdn = CdnClient(harness.http, hosts=rig.hosts, timeout=1)
        attempts = 3
        for _ in range(attempts + 2):  # more passes than attempts: the last ones must not fetch them again
            mirror = Mirror(harness.database, harness.vault, harness.instagram, cdn, local_storage, renderer,
                            owner="mirror-a", policy=MirrorPolicy(eager_posts=4, max_attempts=attempts))
            worker = Worker(harness.database, [mirror_job(mirror)], owner="mirror-a", idle_poll=0.05)
            await worker.run(asyncio.Event(), until_idle=True)
            assert worker.health.outages == 0 and worker.health.down_since is None  # never an outage (/readyz)
            async with harness.database.transaction() as session:  # the backoff is waited out: due again now
                await session.execute(update(Source).where(Source.id == source_id)
                                      .values(next_mirror_at=harness.database.clock.now()))
        assert calls == {"/truncated.jpg": attempts, "/corrupt.jpg": attempts, "/slow.jpg": attempts}, calls
        async with harness.database.read() as session:
            stored = {m.media_url.rsplit("/", 1)[-1]: m for m in (await session.execute(
                select(MediaItem).where(MediaItem.source_id == source_id))).scalars()
                if m.media_url and m.media_url.startswith(cdn_origin)}
            failed = list((await session.execute(select(Event).where(Event.kind == "media.failed"))).scalars())
        assert {name: (m.mirror_attempts, m.mirrored_at) for name, m in stored.items()} == {
            "truncated.jpg": (attempts, None), "corrupt.jpg": (attempts, None), "slow.jpg": (attempts, None)}
        assert "does not decode" in stored["truncated.jpg"].mirror_error
        assert "does not decode" in stored["corrupt.jpg"].mirror_error
        assert len(failed) == 3 and all(f"after {attempts} attempts" in e.message for e in failed)


async def test_a_refusal_a_setting_caused_heals_once_the_setting_is_fixed(harness, sandbox, local_storage, renderer):
    """With FILMROLL_MIRROR__CDN_HOSTS not covering the CDN every post was refused for good ("50 refused for good")
    and stayed refused after the setting was fixed, until Instagram's URLs expired. They now wait, saying which
    setting, and a worker started with the setting fixed mirrors them with no manual step."""
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    source_id = (await harness.source(account_id)).id
    await harness.sync()
    wrong = MirrorRig(harness, local_storage, renderer, ["*.cdninstagram.com"])  # not the sandbox's CDN
    calls = len(sandbox.control.calls(endpoint="cdn", limit=100_000))
    assert await wrong.run() == {"mirrored": 1}  # waiting is not a failure of the account: no backoff
    assert len(sandbox.control.calls(endpoint="cdn", limit=100_000)) == calls  # nothing fetched
    async with harness.database.read() as session:
        posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id))).scalars())
        account = await session.get(Source, source_id)
        refused = list((await session.execute(select(Event).where(Event.kind == "media.refused"))).scalars())
    assert posts and all(p.mirrored_at is None and file_store.mirror_state(p) == "waiting" for p in posts)
    assert all("FILMROLL_MIRROR__CDN_HOSTS" in p.mirror_error for p in posts) and refused == []
    assert account.mirror_failures == 0 and account.mirror_error is None
    assert await wrong.run() == {}  # nothing due: the same settings are not retried every pass
    right = MirrorRig(harness, local_storage, renderer, [sandbox.base_url])
    assert await right.mirror().due_for_changed_settings() == 1  # as a worker with the fixed setting starts
    assert await right.run() == {"mirrored": 1}
    async with harness.database.read() as session:
        again = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id))).scalars())
    assert all(p.mirrored_at is not None and p.mirror_error is None for p in again)


async def test_a_changed_storage_is_mirrored_again_instead_of_claimed(harness, sandbox, renderer, tmp_path):
    """After FILMROLL_STORAGE__URL changed, `mirror` once said "every post is in storage" and `storage usage`
    counted 74.9 MB in an empty bucket: the rows said mirrored, wherever the files were."""
    from filmroll.service import media as media_service
    from filmroll.storage import open_storage

    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])

    source_id = (await harness.source(account_id)).id
    await harness.sync()
    first, second = open_storage(f"file:{tmp_path / 'first'}"), open_storage(f"file:{tmp_path / 'second'}")
    assert await MirrorRig(harness, first, renderer, [sandbox.base_url]).run() == {"mirrored": 1}
    stored = {o.key async for o in first.list("sources/")}
    assert stored and await media_service.usage(harness.database, second.description) == []  # none there yet
    moved = MirrorRig(harness, second, renderer, [sandbox.base_url])
    assert await moved.mirror().due_for_changed_settings() == 1  # as a worker with the new storage starts
    assert await moved.run() == {"mirrored": 1}
    assert {o.key async for o in second.list("sources/")} == stored  # the same content, now where it is read
    (usage,) = await media_service.usage(harness.database, second.description)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "second").rglob("*") if p.is_file() and ".incoming" not in
                  p.parts and ".filmroll-probe" not in p.parts)
    assert sum(usage.bytes.values()) == on_disk
    async with harness.database.read() as session:
        rows = list((await session.execute(select(MediaFile.storage))).scalars())
        posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id))).scalars())
    assert set(rows) == {second.description} and all(p.mirrored_at is not None for p in posts)
