"""Moderation: whether a feed shows other people's posts, and who decided.

A feed with a hashtag source is ``approve`` by default: a post from a hashtag or another profile shows only once an
operator approves it; ``open`` shows them on arrival. Either way a feed's block words reject a post on arrival (any
case, any accents: "Cafe" blocks "CAFÉ"), and an operator's explicit decision wins over both. A rejected post never
appears in the feed's JSON, HTML, widget or published files; every decision moves the feed's ``changed_at``, so the
web tier renders it again and the worker republishes it.

    state(feed, decisions, post, other)     pending | approved | rejected, as the documents apply it
    queue(database, slug, status)           the feed's posts of other people, newest first, with their states
    decide(database, slug, ids, state, by)  approve or reject posts by Instagram id (unknown ids: nothing changed)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from filmroll import errors
from filmroll.store import feed_posts
from filmroll.store import feeds as feed_store
from filmroll.store.database import Database
from filmroll.store.tables import Feed, MediaFile, MediaItem
from filmroll.vocabulary import FileRole, Moderation, PostState, SourceKind

MAX_WORDS = 200
MAX_WORD = 100


def folded(text: str) -> str:
    """Lower case without accents: what block words are compared on."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def check_words(words: Sequence[str]) -> tuple[str, ...]:
    """Block words as stored (folded, unique), or InputError: empty, too long, too many."""
    cleaned = [" ".join(folded(w).split()) for w in words]
    if any(not w for w in cleaned):
        raise errors.FeedSettingError("a block word is empty")
    if any(len(w) > MAX_WORD for w in cleaned):
        raise errors.FeedSettingError(f"a block word is longer than {MAX_WORD} characters")
    if len(set(cleaned)) > MAX_WORDS:
        raise errors.FeedSettingError(f"a feed takes at most {MAX_WORDS} block words")
    return tuple(dict.fromkeys(cleaned))


def blocked_by(feed: Feed, caption: str | None) -> str | None:
    """The feed's first block word the caption contains as a word (or words), if any."""
    if not feed.block_words or not caption:
        return None
    text = folded(caption)
    return next((w for w in feed.block_words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text)), None)


def state(feed: Feed, decisions: feed_posts.Decisions, post: MediaItem, other: bool) -> PostState:
    """Whether the feed shows ``post`` (``other``: it came from a hashtag or another profile)."""
    if post.ig_media_id in decisions.rejected:
        return PostState.REJECTED
    if post.ig_media_id in decisions.approved:
        return PostState.APPROVED
    if blocked_by(feed, post.caption) is not None:
        return PostState.REJECTED
    if other and feed.moderation == Moderation.APPROVE:
        return PostState.PENDING
    return PostState.APPROVED


@dataclass(frozen=True)
class QueueItem:
    ig_media_id: str
    source: str  # "#bread", "@otherbrand"
    username: str | None
    caption: str | None
    media_type: str | None
    timestamp: datetime | None
    permalink: str | None
    state: PostState
    decided_by: str | None  # an admin's name, "cli", or "block word X"
    decided_at: datetime | None
    picture_key: str | None  # the stored original or poster (None while not mirrored)


async def queue(database: Database, slug: str, status: PostState | None = None, *,
                limit: int = 500) -> list[QueueItem]:
    """The feed's posts from other people (hashtags, profiles), newest first, with their states."""
    async with database.read() as session:
        feed = await feed_store.by_slug(session, slug)
        if feed is None:
            raise errors.FeedNotFoundError(f"there is no feed {slug!r}; `filmroll feeds list` shows them")
        rows = (await feed_store.sources(session, [feed.id]))[feed.id]
        others = {r.source.id: r.label for r in rows if r.source.kind != SourceKind.ACCOUNT}
        if not others:
            return []
        posts = list((await session.execute(
            select(MediaItem).where(MediaItem.source_id.in_(list(others)), MediaItem.deleted_at.is_(None))
            .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(limit))).scalars())
        decided = await feed_posts.rows_of(session, feed.id, [p.ig_media_id for p in posts])
        files = {(f.source_id, f.ig_media_id): f.storage_key for f in (await session.execute(
            select(MediaFile).where(MediaFile.source_id.in_(list(others)), MediaFile.variant == "",
                                    MediaFile.role.in_([FileRole.ORIGINAL, FileRole.POSTER])))).scalars()}
        children = await feed_store.children(session, [p.id for p in posts])
    decisions = feed_posts.decisions_of(list(decided.values()))
    found: list[QueueItem] = []
    for post in posts:
        now_state = state(feed, decisions, post, True)
        if status is not None and now_state != status:
            continue
        row = decided.get(post.ig_media_id)
        word = blocked_by(feed, post.caption) if row is None else None
        first = children[post.id][0].ig_media_id if children.get(post.id) else post.ig_media_id
        found.append(QueueItem(post.ig_media_id, others[post.source_id], post.username, post.caption,
                               post.media_type, post.timestamp, post.permalink, now_state,
                               row.decided_by if row else (f"block word {word}" if word else None),
                               row.decided_at if row else None, files.get((post.source_id, first))))
    return found


async def decide(database: Database, slug: str, ig_media_ids: Sequence[str], decision: PostState, *,
                 by: str) -> int:
    """Approve or reject posts of the feed's other people; an id the feed does not hold changes nothing."""
    if decision not in (PostState.APPROVED, PostState.REJECTED):
        raise errors.InputError("a post is approved or rejected")
    wanted = list(dict.fromkeys(i.strip() for i in ig_media_ids))
    if not wanted or any(not i.isascii() or not i.isdigit() or len(i) > 32 for i in wanted):
        raise errors.InputError("give posts by their id in the feed's JSON (Instagram's media id: digits)")
    held = {item.ig_media_id for item in await queue(database, slug, limit=100_000)}
    unknown = [i for i in wanted if i not in held]
    if unknown:
        raise errors.InputError(f"the feed {slug!r} holds no post {', '.join(unknown[:5])} from a hashtag or another "
                                "profile; nothing was changed (`filmroll moderation list` shows them)")
    async with database.transaction() as session:
        feed = await feed_store.by_slug(session, slug, for_update=True)
        assert feed is not None
        return await feed_posts.moderate(session, feed.id, wanted, decision, by=by, now=database.clock.now())
