"""The media mirror against the sandbox's CDN over HTTP, on SQLite and PostgreSQL, on a local directory and on a
real S3 server: every picture stored byte for byte, displayed from storage after Instagram's URLs expire, expired
URLs read afresh by id, deleted posts' files collected after the retention period."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from filmroll.storage import parse
from filmroll.store.tables import Account, MediaChild, MediaFile, MediaItem, Source
from tests.seeding import index_with

pytestmark = pytest.mark.anyio
DAYS = 86_400


async def _files(harness, account_id: int) -> list[MediaFile]:
    """The files of the account's own source."""
    source_id = (await harness.source(account_id)).id
    async with harness.database.read() as session:
        return list((await session.execute(select(MediaFile).where(MediaFile.source_id == source_id))).scalars())


async def _sources(harness, account_id: int) -> dict[tuple[str, str], str]:
    """Every picture a post needs, (Instagram id, role) → its stored CDN URL: an album's children, a video's poster."""
    source_id = (await harness.source(account_id)).id
    async with harness.database.read() as session:
        posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id,
                                                                    MediaItem.deleted_at.is_(None)))).scalars())
        children = list((await session.execute(select(MediaChild))).scalars())
    by_parent: dict[int, list[MediaChild]] = {}
    for child in children:
        by_parent.setdefault(child.media_id, []).append(child)
    found = {}
    for post in posts:
        for ig_id, kind, url, thumb in ([(c.ig_media_id, c.media_type, c.media_url, c.thumbnail_url)
                                         for c in by_parent.get(post.id, [])]
                                        or [(post.ig_media_id, post.media_type, post.media_url, post.thumbnail_url)]):
            found[(ig_id, "poster" if kind == "VIDEO" else "original")] = thumb if kind == "VIDEO" else url
    return found


async def test_every_picture_is_stored_byte_for_byte_and_outlives_instagrams_urls(rig, harness, sandbox):
    (account_id,) = await harness.seed([index_with(sandbox, 8, 14)])
    assert await harness.sync() == {"synced_full": 1}
    wanted = await _sources(harness, account_id)
    cdn = {key: httpx.get(url, timeout=30).content for key, url in wanted.items()}  # what Instagram serves now
    assert await rig.run() == {"mirrored": 1}

    files = await _files(harness, account_id)
    originals = {(f.ig_media_id, f.role): f for f in files if f.role in ("original", "poster") and f.ig_media_id}
    assert set(originals) == set(wanted)
    for key, row in originals.items():
        stored = await rig.storage.get(row.storage_key)
        assert stored is not None and hashlib.sha256(stored).hexdigest() == row.sha256
        assert row.sha256 == hashlib.sha256(cdn[key]).hexdigest() and row.bytes == len(cdn[key])
        assert row.content_type == "image/jpeg" and row.color and row.placeholder and "vibrantDark" in row.palette
    assert all(m.mirrored_at is not None for m in await harness.media(account_id))
    # The profile picture too, and the newest posts' variants at once (the rest are made on first request).
    assert any(f.ig_media_id == "" and f.role == "original" for f in files)
    variants = [f for f in files if f.role == "variant" and f.ig_media_id]
    assert variants and {f.variant.split(".")[1] for f in variants} == {"webp", "avif"}
    # Every row's object exists, and every object under the account has its row.
    assert {f.storage_key for f in files} == await rig.keys()
    if hasattr(rig.storage, "bucket"):  # S3: the bucket's own listing, read past the client under test
        listed = set(rig.storage.server.keys(rig.storage.bucket))
        assert listed == {f"media/{f.storage_key}" for f in files}

    # Four days on, Instagram's URLs are dead; every picture is still there, and a full sync signs them afresh.
    sandbox.control.advance(4 * DAYS)
    dead = next(iter(wanted.values()))
    assert httpx.get(dead, timeout=30).status_code == 403
    for row in originals.values():
        assert await rig.storage.get(row.storage_key) is not None
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"synced_full": 1}
    fresh = await _sources(harness, account_id)
    assert set(fresh) == set(wanted) and all(fresh[k] != wanted[k] for k in wanted)
    for url in list(fresh.values())[:5]:
        assert httpx.get(url, timeout=30).status_code == 200


async def test_an_expired_url_is_read_afresh_by_id_and_then_stored(local_rig, harness, sandbox):
    """The stored URLs expired before the mirror got to them (filmroll was down for days): the CDN answers 403, the
    mirror reads the post again by id, stores the fresh URLs and mirrors from them."""
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    before = await _sources(harness, account_id)
    sandbox.control.advance(4 * DAYS)
    since = max((c["id"] for c in sandbox.control.calls()), default=0)
    assert await local_rig.run() == {"mirrored": 1}
    posts = await harness.media(account_id)
    assert all(m.mirrored_at is not None for m in posts)
    by_id = [c for c in sandbox.control.calls(since_id=since) if c["endpoint"] == "media"]  # GET /{media-id}
    assert len(by_id) == len(posts)  # one read by id per post, none more
    after = await _sources(harness, account_id)
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    assert all(httpx.get(u, timeout=30).status_code == 200 for u in list(after.values())[:3])


@pytest.mark.parametrize(("fault", "spec", "said"), [("status", {"status": 503}, "HTTP 503"),
                                                     ("truncate", {}, "did not deliver")],
                         ids=["503", "body cut short"])
async def test_a_failing_cdn_is_retried_with_backoff_and_nothing_half_stored(local_rig, harness, sandbox, fault,
                                                                            spec, said):
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    sandbox.control.add_fault(fault, endpoint="cdn", **spec)
    assert await local_rig.run() == {"mirror_retry": 1}
    assert await local_rig.keys() == set() and await _files(harness, account_id) == []
    account = await harness.source(account_id)
    assert account.mirror_failures == 1 and said in account.mirror_error, account.mirror_error
    assert account.next_mirror_at > harness.database.clock.now() + timedelta(seconds=29)
    sandbox.control.clear_faults()
    async with harness.database.transaction() as session:
        await session.execute(update(Source).values(
            next_mirror_at=harness.database.clock.now() - timedelta(seconds=1)))
    assert await local_rig.run() == {"mirrored": 1}
    assert all(m.mirrored_at is not None for m in await harness.media(account_id))


async def _a_day_later(harness) -> None:
    """The collector runs once a sweep interval (a day): move filmroll's clock on by one and make the pass due."""
    harness.database.clock.advance(timedelta(days=1))
    async with harness.database.transaction() as session:
        await session.execute(update(Source).values(
            next_mirror_at=harness.database.clock.now() - timedelta(seconds=1)))


async def test_deleted_posts_files_are_collected_after_the_retention_period(local_rig, harness, sandbox):
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    await local_rig.run()
    victim = (await harness.media(account_id))[-1]
    async with harness.database.read() as session:
        parts = {victim.ig_media_id, *(await session.execute(select(MediaChild.ig_media_id).where(
            MediaChild.media_id == victim.id))).scalars()}
    before = await _files(harness, account_id)
    theirs = {f.id for f in before if f.ig_media_id in parts}
    assert theirs
    now = harness.database.clock.now()
    async with harness.database.transaction() as session:
        await session.execute(update(MediaItem).where(MediaItem.id == victim.id)
                              .values(deleted_at=now - timedelta(days=10)))
    await _a_day_later(harness)
    await local_rig.run()  # eleven days is within the 30-day retention: kept
    assert theirs <= {f.id for f in await _files(harness, account_id)}
    async with harness.database.transaction() as session:
        await session.execute(update(MediaItem).where(MediaItem.id == victim.id)
                              .values(deleted_at=now - timedelta(days=31)))
    await _a_day_later(harness)
    await local_rig.run()
    files = await _files(harness, account_id)
    assert {f.id for f in files} == {f.id for f in before} - theirs  # the victim's go, every other file stays
    assert {f.storage_key for f in files} == await local_rig.keys()  # its objects are gone from the listing


async def test_a_disconnected_accounts_files_go_after_the_retention_period(local_rig, harness, sandbox):
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    await local_rig.run()
    assert await local_rig.keys()
    now = harness.database.clock.now()
    async with harness.database.transaction() as session:
        # Due a second ago, as _a_day_later makes it: on PostgreSQL the claim compares with the server's now(),
        # and this process's reading of it (its clock corrected towards the server's from a midpoint estimate) may
        # run a few milliseconds ahead of the claim's own.
        await session.execute(update(Account).values(status="disconnected", updated_at=now - timedelta(days=31)))
        await session.execute(update(Source).values(next_mirror_at=now - timedelta(seconds=1)))
    assert await local_rig.run() == {"mirrored": 1}
    assert await local_rig.keys() == set() and await _files(harness, account_id) == []
    assert (await harness.source(account_id)).next_mirror_at is None  # nothing left to come back for


async def test_videos_keep_their_poster_and_by_setting_the_file(local_rig, harness, sandbox):
    """A video's poster is always stored; the video itself only with ``videos`` on, identified from its bytes."""
    index = next(a["index"] for a in sandbox.control.accounts(limit=60)["data"]
                 if 5 <= a["media_count"] <= 40 and any(
                     m["media_type"] == "VIDEO" for m in _graph_media(sandbox, a["index"])))
    (account_id,) = await harness.seed([index])
    await harness.sync()
    wanted = await _sources(harness, account_id)
    posters = {ig_id for ig_id, role in wanted if role == "poster"}
    assert posters
    assert await local_rig.run(videos=True) == {"mirrored": 1}
    files = await _files(harness, account_id)
    videos = {f.ig_media_id: f for f in files if f.role == "video"}
    async with harness.database.read() as session:  # a video Instagram gives no file URL for (licensed audio)
        silent = set((await session.execute(select(MediaItem.ig_media_id).where(
            MediaItem.media_type == "VIDEO", MediaItem.media_url.is_(None)))).scalars())
    assert set(videos) == posters - silent and all(f.content_type == "video/mp4" for f in videos.values())
    assert {f.ig_media_id for f in files if f.role == "poster"} == posters
    assert all(f.content_type == "image/jpeg" for f in files if f.role == "poster")


def _graph_media(sandbox, index: int) -> list[dict]:
    token = sandbox.control.mint_token(index)["access_token"]
    return httpx.get(f"{sandbox.base_url}/me/media", params={"fields": "media_type", "limit": 100,
                                                             "access_token": token}, timeout=30).json()["data"]


async def test_over_the_byte_budget_the_least_recently_served_variants_go_and_come_back_on_request(
        local_rig, harness, sandbox):
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    await local_rig.run()
    everything = await _files(harness, account_id)
    variants = [f for f in everything if f.role == "variant"]
    assert variants
    served = variants[0]
    now = harness.database.clock.now()
    async with harness.database.transaction() as session:
        # One variant was served just now; the budget leaves room for about that one only.
        await session.execute(update(MediaFile).where(MediaFile.id == served.id).values(served_at=now))
    await _a_day_later(harness)
    budget = served.bytes + 1
    await local_rig.run(variant_budget_bytes=budget)
    left = await _files(harness, account_id)
    kept = [f for f in left if f.role == "variant"]
    assert sum(f.bytes for f in kept) <= budget and [f.id for f in kept] in ([served.id], [])
    assert {f.id for f in left if f.role != "variant"} == {f.id for f in everything if f.role != "variant"}
    assert {f.storage_key for f in left} == await local_rig.keys()
    # An evicted variant is made again when it is next asked for.
    gone = next(f for f in variants if f.id != served.id)
    made = await local_rig.mirror().variant(parse(gone.storage_key).prefix, gone.sha256, gone.variant, now)
    assert made is not None and made[1] == gone.content_type
    assert any(f.variant == gone.variant and f.sha256 == gone.sha256 for f in await _files(harness, account_id))


async def test_posts_a_sync_stores_while_a_pass_runs_are_not_left_for_a_day(local_rig, harness, sandbox):
    """The pass records "next sweep in a day" in one UPDATE that first looks for posts still waiting: a sync that
    stored new ones while the pass ran (and made the account due) is not overwritten by it."""
    import asyncio

    from filmroll.store import sources
    from filmroll.store.lease import claim_one

    index = index_with(sandbox, 5, 9)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    await local_rig.run()  # everything stored, the profile picture too
    sandbox.control.add_media(index, caption="posted before the pass")
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    held = sandbox.control.add_fault("hang", endpoint="cdn", times=1)  # the pass's first download waits
    async with harness.database.transaction() as session:
        claim = await claim_one(session, sources.MIRRORS, (await harness.source(account_id)).id, owner="mirror-a",
                                now=await harness.database.now(),
                                          lease=timedelta(minutes=5))
    passing = asyncio.create_task(local_rig.mirror().run(claim))
    while not any(f["id"] == held["id"] and f["hits"] for f in sandbox.control.faults()):
        await asyncio.sleep(0.05)
    sandbox.control.add_media(index, caption="posted while the pass ran")
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    sandbox.control.release(held["id"])
    assert await passing == "mirrored"
    assert (await harness.source(account_id)).next_mirror_at <= harness.database.clock.now()  # again at once
    assert await local_rig.run() == {"mirrored": 1}
    assert all(m.mirrored_at is not None for m in await harness.media(account_id))


async def test_a_post_given_up_on_gets_a_fresh_chance_with_fresh_urls(local_rig, harness, sandbox):
    """While the owner must sign in again, the mirror calls Instagram with no dead token; posts whose stored URLs
    expired meanwhile are given up after their attempts. The next full sync's fresh URLs give them their attempts
    back and make the account due; a refusal stays final."""
    (account_id,) = await harness.seed([index_with(sandbox, 5, 9)])
    await harness.sync()
    sandbox.control.advance(4 * DAYS)  # every stored URL expired
    async with harness.database.transaction() as session:
        await session.execute(update(Account).values(status="needs_reauth"))
    since = max((c["id"] for c in sandbox.control.calls()), default=0)
    for _ in range(5):
        async with harness.database.transaction() as session:
            # A second back: on PostgreSQL the claim compares with the server's clock, which this machine's
            # corrected clock can lead by a fraction of a round trip.
            await session.execute(update(Source).values(
                next_mirror_at=harness.database.clock.now() - timedelta(seconds=1)))
        assert await local_rig.run() == {"mirror_retry": 1}
    assert [c for c in sandbox.control.calls(since_id=since) if c["endpoint"] != "cdn"] == []  # no Graph call
    posts = await harness.media(account_id)
    assert all(m.mirrored_at is None and m.mirror_attempts == 5 for m in posts)
    refused = posts[0]
    async with harness.database.transaction() as session:
        await session.execute(update(MediaItem).where(MediaItem.id == refused.id)
                              .values(mirror_error="refused: not a picture"))
        await session.execute(update(Account).values(status="active"))
        await session.execute(update(Source).values(next_mirror_at=None))
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"synced_full": 1}
    assert (await harness.source(account_id)).next_mirror_at <= harness.database.clock.now()
    assert await local_rig.run() == {"mirrored": 1}
    after = {m.id: m for m in await harness.media(account_id)}
    assert after[refused.id].mirrored_at is None  # a refusal stays final
    assert all(m.mirrored_at is not None for i, m in after.items() if i != refused.id)


async def test_the_collector_lists_storage_once_a_day_and_removes_objects_without_a_row(local_rig, harness, sandbox):
    """An object no row refers to (a put whose row a crash lost) goes once it is an hour old, at the daily collection;
    a pass that a new post brings does not list the account's storage."""
    import os

    index = index_with(sandbox, 5, 9)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    await local_rig.run()
    # Under the source's prefix, and under the account's, where its files were stored before sources (0017).
    strays = [f"sources/{(await harness.source(account_id)).id}/sha256/00/00/{'0' * 64}.jpg",
              f"accounts/{account_id}/sha256/00/00/{'1' * 64}.jpg"]
    hours_ago = time.time() - 2 * 3600
    for stray in strays:
        await local_rig.storage.put(stray, b"left by a crash", "image/jpeg")
        os.utime(local_rig.storage.path(stray), (hours_ago, hours_ago))
    sandbox.control.add_media(index, caption="a new post")
    await harness.due([account_id])
    await harness.sync()
    assert await local_rig.run() == {"mirrored": 1}  # the new post's pass: no collection
    assert set(strays) <= await local_rig.keys()
    await _a_day_later(harness)
    assert await local_rig.run() == {"mirrored": 1}
    assert not set(strays) & await local_rig.keys()
    assert {f.storage_key for f in await _files(harness, account_id)} == await local_rig.keys()
