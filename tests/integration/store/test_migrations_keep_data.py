"""A database full of what filmroll keeps (accounts synced from the sandbox, their tokens, posts, children, insights,
files, feeds with hidden and pinned posts, events) goes down to the schema of before this redesign and back up with
every row of every table unchanged (sources, 0017, included: read through them, every row has its old shape). On
SQLite a migration that rebuilt ``accounts`` once deleted every token with
it (the rebuild's DROP, with foreign keys on, cascades); this is the test that would have said so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from filmroll.service import accounts as account_service
from filmroll.service import feeds as feed_service
from filmroll.service.feeds import FeedSpec
from filmroll.store import events, migrate
from filmroll.store.tables import MediaFile, MediaItem
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
BEFORE = "0014"  # the last schema before sources, providers and feed_posts
CHANGED = {"feeds": {"hidden", "pinned", "moderation", "block_words"},
           "oauth_states": {"provider", "connect_link_id"}, "tokens": {"data_access_expires_at"},
           "media": {"username"}, "accounts": {"custom_id"}}  # columns that move or are new
LEFT_OUT = {"alembic_version", "feed_posts", "sources", "hashtags", "hashtag_searches", "api_keys",
            "connect_links"}  # new tables
# Since 0017 the sync and mirror columns are the account source's, and posts, files and feeds' sources point at
# sources: read at the head through them, each row has the shape it had before.
MOVED = ("sync_interval_minutes", "next_sync_at", "last_synced_at", "stale_since", "sync_lease_owner",
         "sync_lease_until", "full_synced_at", "sync_failures", "sync_error", "sync_failure_kind", "usage_percent",
         "insights_at", "media_fingerprint", "next_mirror_at", "mirror_lease_owner", "mirror_lease_until",
         "mirror_failures", "mirror_error", "mirror_collected_at")
_OWN = "s.kind = 'account'"


def _through_sources(name: str, columns: list[str]) -> str | None:
    own = [c for c in columns if c != "source_id"]
    if name == "accounts":
        return (f"SELECT {', '.join(f'a.{c}' for c in own)}, {', '.join(f's.{c}' for c in MOVED)} FROM accounts a "  # noqa: S608
                f"LEFT JOIN sources s ON s.account_id = a.id AND {_OWN}")
    if name in ("media", "media_files", "feed_sources"):
        return (f"SELECT {', '.join(f't.{c}' for c in own)}, s.account_id FROM {name} t "  # noqa: S608
                f"JOIN sources s ON s.id = t.source_id AND {_OWN}")
    return None


async def _everything(harness) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    """Every row of every table in the shape of the schema before the redesign (column, value) pairs, whichever
    schema the database is at."""
    async with harness.database.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        found = {}
        for name in sorted(set(names) - LEFT_OUT):
            columns = await connection.run_sync(lambda sync, n=name: [c["name"] for c in inspect(sync).get_columns(n)])
            kept = sorted(set(columns) - CHANGED.get(name, set()))
            # Names read from the database's own catalogue, never from input.
            query = (_through_sources(name, kept) if "sources" in names else None) or \
                f"SELECT {', '.join(kept)} FROM {name}"  # noqa: S608
            rows = await connection.execute(text(query))
            found[name] = sorted((tuple(sorted((k, str(v)) for k, v in row._mapping.items())) for row in rows),
                                 key=repr)
    return found


async def _sources(harness) -> list[tuple]:  # type: ignore[no-untyped-def]
    """The sources, without their ids (a migration up numbers them anew)."""
    async with harness.database.read() as session:
        rows = await session.execute(text("SELECT * FROM sources"))
        return sorted((tuple(sorted((k, str(v)) for k, v in row._mapping.items() if k != "id")) for row in rows),
                      key=repr)


async def test_a_full_database_goes_down_and_up_again_with_nothing_lost(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 3)
    for account_id in ids:
        assert (await account_service.sync_now(harness.syncer("cli"), str(account_id))).outcome == "synced_full"
    async with harness.database.transaction() as session:
        posts = list(await session.execute(text("SELECT id, source_id, ig_media_id FROM media ORDER BY id")))
        now = datetime.now(UTC)
        for media_id, source_id, ig_media_id in posts[:5]:  # files as the mirror records them
            session.add(MediaFile(source_id=source_id, ig_media_id=ig_media_id, role="original", variant="",
                                  sha256=f"{media_id:064x}", storage_key=f"sources/{source_id}/x/{media_id}.jpg",
                                  content_type="image/jpeg", bytes=1000 + media_id, width=1080, height=1080,
                                  created_at=now, storage="file:/srv/filmroll-media"))
    assert posts, "the sandbox's accounts have posts"
    own = (await harness.source(ids[0])).id
    first = [p[2] for p in posts if p[1] == own]
    await feed_service.create(harness.database, FeedSpec("Bakery", "bakery", (str(ids[0]), str(ids[1])),
                                                         hidden=(first[0], "111"), pinned=(first[-1], first[1])))
    await feed_service.create(harness.database, FeedSpec("Cafe", "cafe", (str(ids[2]),)))
    await harness.connector.begin(flow="cli", session_id=None)  # a sign-in under way
    async with harness.database.transaction() as session:
        await events.record(session, "account.connected", "connected @sandbox0", at=now, account_id=ids[0],
                            actor="cli")
    before = await _everything(harness)
    sources = await _sources(harness)
    kept = ("accounts", "tokens", "media", "media_children", "media_files", "feeds", "feed_sources", "events",
            "oauth_states")
    assert [t for t in kept if not before[t]] == []
    decisions = {f.slug: (sorted(f.hidden), f.pinned) for f in await feed_service.list_feeds(harness.database)}

    assert await migrate.downgrade(harness.database, BEFORE) == BEFORE
    at_before = await _everything(harness)
    assert at_before == before  # the rows of the old schema, every one (the moved columns aside)
    async with harness.database.read() as session:
        hidden, pinned = (await session.execute(text("SELECT hidden, pinned FROM feeds WHERE slug = 'bakery'"))).one()
    assert "111" in str(hidden) and first[-1] in str(pinned)

    assert await migrate.upgrade(harness.database) == migrate.head()
    assert await _everything(harness) == before
    assert await _sources(harness) == sources  # schedules, leases, failures: each account's, as it was
    assert {f.slug: (sorted(f.hidden), f.pinned) for f in await feed_service.list_feeds(harness.database)} \
        == decisions == {"bakery": (sorted([first[0], "111"]), [first[-1], first[1]]), "cafe": ([], [])}
    async with harness.database.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM media"))).scalar() == len(posts)
        assert await session.get(MediaItem, posts[0][0]) is not None
