"""An owner's deletion, with everything a real account leaves behind: two accounts synced (posts, children,
insights), mirrored (originals and variants, on a local directory and on a real S3 server), in feeds, published
(pictures and documents), named by a webhook delivery and by events. After the worker's deletion job (and the
republish it makes due) no row of any table, no stored file and no published file holds anything of the deleted
account, while the other account's rows and files are byte for byte what they were."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from filmroll.runtime import deletion_job, publish_job
from filmroll.secret import Secret
from filmroll.service import feeds as feed_service
from filmroll.service.deletion import Deleter, request_deletion
from filmroll.service.feed_documents import DocumentSettings
from filmroll.service.publish import Publisher, publish
from filmroll.storage import open_storage
from filmroll.store import events, webhooks
from filmroll.store.tables import Account, Base, MediaChild, MediaFile, MediaItem
from filmroll.worker import Worker
from tests.harness import SCOPES
from tests.s3server import ACCESS_KEY, SECRET_KEY
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
SETTINGS = DocumentSettings(widths=(320,), formats=("webp",), dead_account_days=90, max_posts=100)


def _two_small_accounts(sandbox: Any) -> list[int]:
    """Two sandbox accounts with a handful of posts whose usernames are not part of each other."""
    found = [a for a in sandbox.control.accounts(limit=60)["data"] if 3 <= a["media_count"] <= 8]
    for a in found:
        for b in found:
            if a is not b and a["username"] not in b["username"] and b["username"] not in a["username"]:
                return [a["index"], b["index"]]
    raise AssertionError("the sandbox seed has no two small accounts")


def _published_target(rig: Any, tmp_path: Any) -> Any:
    if not hasattr(rig.storage, "server"):
        return open_storage(f"file:{tmp_path / 'site'}")
    bucket = f"site-{secrets.token_hex(4)}"
    rig.storage.server.create_bucket(bucket)
    return open_storage(f"s3://{bucket}/www", endpoint=rig.storage.server.endpoint, access_key_id=ACCESS_KEY,
                        secret_access_key=Secret(SECRET_KEY))


async def _rows(harness: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table filmroll has."""
    found = {}
    async with harness.database.read() as session:
        for table in Base.metadata.sorted_tables:
            found[table.name] = [dict(row._mapping) for row in await session.execute(select(table))]
    return found


async def _marks(harness: Any, account_id: int) -> set[str]:
    """What identifies an account anywhere: its ids, username, posts' and children's ids, its files' hashes."""
    source_id = (await harness.source(account_id)).id
    async with harness.database.read() as session:
        account = await session.get(Account, account_id)
        assert account is not None and account.username and account.app_scoped_id
        posts = list((await session.execute(select(MediaItem.id, MediaItem.ig_media_id)
                                            .where(MediaItem.source_id == source_id))).all())
        children = (await session.execute(select(MediaChild.ig_media_id).where(
            MediaChild.media_id.in_([p.id for p in posts])))).scalars()
        hashes = (await session.execute(select(MediaFile.sha256).where(MediaFile.source_id == source_id))).scalars()
        return {account.username, account.ig_user_id, account.app_scoped_id, *(p.ig_media_id for p in posts),
                *children, *hashes}


def _sources_of(rows: dict[str, list[dict[str, Any]]], account_id: int) -> set[int]:
    return {r["id"] for r in rows["sources"] if r["account_id"] == account_id}


def _traces(rows: dict[str, list[dict[str, Any]]], account_id: int, marks: set[str],
            source_ids: set[int]) -> list[str]:
    """Where in these rows the account still shows: its id in an account column, one of its sources' ids in a
    source column, or one of its marks in any value."""
    traces = []
    for table, items in rows.items():
        for item in items:
            for column, value in item.items():
                names_account = column == "account_id" or (table == "accounts" and column == "id")
                names_source = column == "source_id" or (table == "sources" and column == "id")
                if (names_account and value == account_id) or (names_source and value in source_ids):
                    traces.append(f"{table}.{column}")
                elif isinstance(value, str) and any(mark in value for mark in marks):
                    traces.append(f"{table}.{column}: {value[:80]!r}")
    return traces


def _owned_by(rows: dict[str, list[dict[str, Any]]], account_id: int) -> dict[str, list[dict[str, Any]]]:
    own = _sources_of(rows, account_id)
    return {table: [r for r in items if r.get("account_id", r.get("id") if table == "accounts" else None)
                    == account_id or r.get("source_id") in own] for table, items in rows.items()}


async def _files(storage: Any) -> dict[str, bytes]:
    return {o.key: await storage.get(o.key) async for o in storage.list("")}


async def test_a_deletion_leaves_nothing_of_the_account_anywhere_and_the_other_untouched(
        rig, harness, sandbox, tmp_path):
    ids = []
    for index in _two_small_accounts(sandbox):
        ids += await seed_accounts(harness.database, harness.vault, sandbox, 1, first=index, due=False,
                                   permissions=SCOPES)
    gone, kept = ids
    await harness.due(ids)
    assert await harness.sync() == {"synced_full": 2}
    assert await rig.run(eager_posts=100) == {"mirrored": 2}
    await feed_service.create(harness.database, feed_service.FeedSpec("Both", "both", (str(gone), str(kept))))
    await feed_service.create(harness.database, feed_service.FeedSpec("Alone", "alone", (str(gone),)))
    target = _published_target(rig, tmp_path)
    first = await publish(rig.mirror(), target, SETTINGS)
    assert sorted(first.feeds) == ["alone", "both"] and first.media_written and not first.missing
    marks = await _marks(harness, gone)
    async with harness.database.transaction() as session:  # a delivery naming the account, as Meta sends one
        account = await session.get(Account, gone)
        assert account is not None
        body = {"object": "instagram", "entry": [{"id": account.ig_user_id, "time": 1, "changes": [
            {"field": "comments", "value": {"text": "lovely", "media": {"id": next(iter(marks - {account.username}))}}}
        ]}]}
        await webhooks.store(session, json.dumps(body).encode(), datetime.now(UTC))
        for account_id in ids:
            named = await session.get(Account, account_id)
            assert named is not None
            await events.record(session, "account.connected", f"connected @{named.username}", at=datetime.now(UTC),
                                account_id=account_id, actor="admin")

    before = await _rows(harness)
    gone_sources = _sources_of(before, gone)
    (gone_prefix,) = [f"sources/{s}/" for s in gone_sources]
    (kept_prefix,) = [f"sources/{s}/" for s in _sources_of(before, kept)]
    stored_before, published_before = await _files(rig.storage), await _files(target)
    # The scan finds the account everywhere it was put, so it can find a leftover:
    tables_before = {t.split(".")[0].split(":")[0] for t in _traces(before, gone, marks, gone_sources)}
    assert {"accounts", "sources", "tokens", "media", "media_children", "media_files", "insight_snapshots",
            "feed_sources", "events", "webhook_deliveries"} <= tables_before, tables_before
    assert any(k.startswith(gone_prefix) for k in stored_before)
    assert any(k.startswith(f"media/{gone_prefix}") for k in published_before)
    assert any(m in body.decode() for body in published_before.values() for m in marks)

    await request_deletion(harness.database, account_id=gone)
    mirror = rig.mirror("deleter")
    jobs = [deletion_job(Deleter(harness.database, rig.storage, owner="deleter", published=target)),
            publish_job(Publisher(mirror, target, SETTINGS, base_url="", owner="deleter"))]
    outcomes = (await Worker(harness.database, jobs, owner="deleter", idle_poll=0.05).run(
        asyncio.Event(), until_idle=True)).outcomes
    # Each feed once or twice: the publish job may also run before the deletion, or during it (then it misses the
    # pictures the deletion took first, and is tried again at once since the feed changed).
    assert outcomes["deleted"] == 1 and outcomes["published"] >= 2, outcomes
    assert set(outcomes) <= {"deleted", "published", "publish_retry"}, outcomes

    after = await _rows(harness)
    assert _traces(after, gone, marks, gone_sources) == []
    assert _owned_by(after, kept) == _owned_by(before, kept)  # the other account's rows, every column
    stored_after, published_after = await _files(rig.storage), await _files(target)
    assert [k for k in stored_after if k.startswith(gone_prefix)] == []
    assert {k: v for k, v in stored_after.items() if k.startswith(kept_prefix)} == \
        {k: v for k, v in stored_before.items() if k.startswith(kept_prefix)}
    assert [k for k in published_after if k.startswith(f"media/{gone_prefix}")] == []
    leftovers = [(key, mark) for key, data in published_after.items() for mark in marks if mark in key
                 or mark.encode() in data]
    assert leftovers == []
    kept_media = {k: v for k, v in published_before.items() if k.startswith(f"media/{kept_prefix}")}
    assert kept_media and {k: v for k, v in published_after.items() if k in kept_media} == kept_media
    assert sorted((f["slug"], f["publish_failures"], f["publish_error"]) for f in after["feeds"]) == \
        [("alone", 0, None), ("both", 0, None)]
    alone = json.loads(published_after["feeds/alone.json"])
    assert alone["posts"] == [] and alone["accounts"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("storage", ["local"], indirect=True)
async def test_publishing_elsewhere_than_the_worker_knows_removes_a_deleted_accounts_pictures(
        rig, harness, sandbox, tmp_path):
    """`filmroll publish DIR` to a place the deletion did not know: its next run takes the pictures out too."""
    gone, kept = await harness.seed(_two_small_accounts(sandbox))
    assert await harness.sync() == {"synced_full": 2}
    assert await rig.run(eager_posts=100) == {"mirrored": 2}
    await feed_service.create(harness.database, feed_service.FeedSpec("Both", "both", (str(gone), str(kept))))
    target = open_storage(f"file:{tmp_path / 'elsewhere'}")
    await publish(rig.mirror(), target, SETTINGS)
    gone_prefix, kept_prefix = [f"media/sources/{(await harness.source(a)).id}/" for a in (gone, kept)]
    await request_deletion(harness.database, account_id=gone)
    outcomes = (await Worker(harness.database, [deletion_job(Deleter(harness.database, rig.storage, owner="d"))],
                             owner="d", idle_poll=0.05).run(asyncio.Event(), until_idle=True)).outcomes
    assert outcomes == {"deleted": 1}
    left = [k for k in await _files(target) if k.startswith(gone_prefix)]
    assert left  # the deletion could not know this place

    again = await publish(rig.mirror(), target, SETTINGS, slugs=["no-such-feed"])  # whatever is published
    assert again.removed == len(left)
    files = await _files(target)
    assert [k for k in files if k.startswith(gone_prefix)] == []
    assert any(k.startswith(kept_prefix) for k in files)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("storage", ["local"], indirect=True)
async def test_publishing_writes_each_feeds_json_last_and_later_pages_before_the_first(rig, harness, sandbox,
                                                                                       tmp_path):
    """A site or CDN that sees a new feeds/{slug}.json finds its pages, fragment and embed already in place."""
    from filmroll.storage.local import LocalStorage

    class Noted(LocalStorage):  # the real directory store; it also notes the order of its writes
        def __init__(self, root: Any) -> None:
            super().__init__(root)
            self.written: list[str] = []

        async def put(self, key: str, data: bytes, content_type: str) -> None:
            await super().put(key, data, content_type)
            self.written.append(key)

    ids = await harness.seed(_two_small_accounts(sandbox))
    assert await harness.sync() == {"synced_full": 2}
    assert await rig.run(eager_posts=100) == {"mirrored": 2}
    for slug, account in (("one", ids[0]), ("two", ids[1])):
        await feed_service.create(harness.database, feed_service.FeedSpec(slug, slug, (str(account),), post_limit=2))
    target = Noted(tmp_path / "site")
    await publish(rig.mirror(), target, SETTINGS)
    documents = [k for k in target.written if k.startswith("feeds/") and k != "feeds/feed.css"]
    for slug in ("one", "two"):
        own = [k for k in documents if k == f"feeds/{slug}.json" or k.startswith((f"feeds/{slug}/", f"feeds/{slug}."))]
        assert len(own) > 4 and own[-1] == f"feeds/{slug}.json", own  # pages after the first exist: the test bites
        first_page = min(own.index(k) for k in own if "/after-" not in k)
        assert all(own.index(k) < first_page for k in own if "/after-" in k), own
