"""Per-feed post decisions: the feeds' JSON arrays of hidden and pinned posts move into ``feed_posts`` with nothing
lost (and back on a downgrade); a decision moves the feed's version once, records who made it, and keeps who made
the ones it did not change; an owner's deletion takes the decisions on their posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from filmroll.service import feeds as feed_service
from filmroll.store import feed_posts, migrate
from filmroll.store.database import Database
from filmroll.store.tables import Feed, FeedPost
from filmroll.vocabulary import PostState

pytestmark = pytest.mark.anyio

_FEED = text("INSERT INTO feeds (slug, title, post_limit, media_types, reels, include_hashtags, exclude_hashtags, "
             "hidden, pinned, allowed_origins, changed_at, created_at, updated_at, publish_failures) VALUES "
             "(:slug, :slug, 12, '[\"IMAGE\"]', true, '[]', '[]', :hidden, :pinned, '[\"*\"]', :now, :now, :now, 0)")


async def test_hidden_and_pinned_posts_move_into_feed_posts_and_back(database_url):
    database = Database(database_url)
    edited = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    feeds = {"bakery": (["333", "111"], ["111", "222", "444"]), "cafe": ([], []), "shop": (["9"], [])}
    try:
        assert await migrate.downgrade(database, "0015") == "0015"
        async with database.transaction() as session:
            for slug, (hidden, pinned) in feeds.items():
                await session.execute(_FEED, {"slug": slug, "hidden": json.dumps(hidden),
                                              "pinned": json.dumps(pinned), "now": edited})
        assert await migrate.upgrade(database) == migrate.head()
        async with database.read() as session:
            rows = {(r.ig_media_id, r.state, r.pinned_position, r.decided_by, r.decided_at)
                    for r in (await session.execute(select(FeedPost).join(Feed).where(Feed.slug == "bakery")))
                    .scalars()}
        # "111" is both hidden and pinned: it stays both (a pin of a hidden post waits for it to be shown again).
        assert rows == {("333", "hidden", None, None, edited), ("111", "hidden", 0, None, edited),
                        ("222", "approved", 1, None, edited), ("444", "approved", 2, None, edited)}
        shown = {info.slug: (sorted(info.hidden), info.pinned) for info in await feed_service.list_feeds(database)}
        assert shown == {"bakery": (["111", "333"], ["111", "222", "444"]), "cafe": ([], []), "shop": (["9"], [])}
        assert await migrate.downgrade(database, "0015") == "0015"
        async with database.read() as session:
            back = {slug: (sorted(json.loads(h) if isinstance(h, str) else h), json.loads(p) if isinstance(p, str)
                           else p) for slug, h, p in await session.execute(text("SELECT slug, hidden, pinned FROM "
                                                                               "feeds"))}
        assert back == {slug: (sorted(hidden), pinned) for slug, (hidden, pinned) in feeds.items()}
        assert await migrate.upgrade(database) == migrate.head()
    finally:
        await database.dispose()


async def test_a_decision_moves_the_feed_once_and_says_who_made_it(database_url):
    database = Database(database_url)
    first, later = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    try:
        async with database.transaction() as session:
            feed = Feed(slug="f", title="F", post_limit=9, media_types=["IMAGE"], reels=True, include_hashtags=[],
                        exclude_hashtags=[], allowed_origins=["*"], changed_at=first - timedelta(days=9),
                        created_at=first, updated_at=first)
            session.add(feed)
            await session.flush()
            assert await feed_posts.decide(session, feed.id, hidden=["1"], pinned=["2", "3"], by="admin:ana",
                                           now=first)
        async with database.transaction() as session:
            # The same decisions again: nothing changes, the feed does not move.
            assert not await feed_posts.decide(session, feed.id, hidden=["1"], pinned=["2", "3"], by="cli", now=later)
            assert (await session.get(Feed, feed.id)).changed_at == first  # type: ignore[union-attr]
            # "1" shown again, "3" unpinned: only those two change hands.
            assert await feed_posts.decide(session, feed.id, hidden=[], pinned=["2"], by="cli", now=later)
        async with database.read() as session:
            rows = {r.ig_media_id: (r.state, r.pinned_position, r.decided_by, r.decided_at)
                    for r in (await session.execute(select(FeedPost))).scalars()}
            assert (await session.get(Feed, feed.id)).changed_at == later  # type: ignore[union-attr]
            decisions = (await feed_posts.of_feeds(session, [feed.id]))[feed.id]
        assert rows == {"1": (PostState.APPROVED, None, "cli", later), "2": (PostState.APPROVED, 0, "admin:ana", first),
                        "3": (PostState.APPROVED, None, "cli", later)}
        assert decisions == feed_posts.Decisions(hidden=(), pinned=("2",), approved=frozenset({"1", "2", "3"}))
        async with database.transaction() as session:
            assert await feed_posts.forget(session, ["2", "3", "never-decided"]) == 2
    finally:
        await database.dispose()
