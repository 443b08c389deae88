"""Per-feed post decisions (``feed_posts``): which posts an operator hid, which are pinned first and in what order,
who decided and when. Nothing here commits.

The feed version rule, once: a decision that changes what a feed shows moves the feed's ``changed_at`` in the same
transaction (:func:`decide`), as every other write that changes a feed does (``store.feeds.touch``); the web tier
and the publisher render it again when it moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.tables import Feed, FeedPost
from filmroll.vocabulary import PostState


@dataclass(frozen=True)
class Decisions:
    """A feed's decisions as its documents apply them: Instagram ids hidden, pinned in order, and the moderation's
    approved and rejected ones."""

    hidden: tuple[str, ...] = ()
    pinned: tuple[str, ...] = ()
    approved: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()


async def of_feeds(session: AsyncSession, feed_ids: Sequence[int]) -> dict[int, Decisions]:
    """Each feed's decisions (none for a feed without any)."""
    rows: dict[int, list[FeedPost]] = {f: [] for f in feed_ids}
    if feed_ids:
        for row in (await session.execute(select(FeedPost).where(FeedPost.feed_id.in_(feed_ids))
                                          .order_by(FeedPost.decided_at, FeedPost.ig_media_id))).scalars():
            rows[row.feed_id].append(row)
    return {feed_id: decisions_of(found) for feed_id, found in rows.items()}


def decisions_of(rows: Sequence[FeedPost]) -> Decisions:
    pinned = sorted((r for r in rows if r.pinned_position is not None), key=lambda r: r.pinned_position or 0)
    return Decisions(tuple(r.ig_media_id for r in rows if r.state == PostState.HIDDEN),
                     tuple(r.ig_media_id for r in pinned),
                     frozenset(r.ig_media_id for r in rows if r.state == PostState.APPROVED),
                     frozenset(r.ig_media_id for r in rows if r.state == PostState.REJECTED))


async def decide(session: AsyncSession, feed_id: int, *, hidden: Sequence[str], pinned: Sequence[str],
                 by: str | None, now: datetime) -> bool:
    """Make the feed's hidden posts exactly ``hidden`` and its pinned ones ``pinned`` (in order); a post no longer
    hidden is approved (shown). Rows whose decision did not change keep who made it and when. Returns whether what
    the feed shows changed (its ``changed_at`` moved with it)."""
    current = {r.ig_media_id: r for r in (await session.execute(
        select(FeedPost).where(FeedPost.feed_id == feed_id).with_for_update())).scalars()}
    hide, rank = set(hidden), {ig_id: n for n, ig_id in enumerate(dict.fromkeys(pinned))}
    changed = False
    for ig_id in set(current) | hide | set(rank):
        row = current.get(ig_id)
        state = PostState.HIDDEN if ig_id in hide else (
            PostState.APPROVED if row is None or row.state == PostState.HIDDEN else PostState(row.state))
        position = rank.get(ig_id)
        if row is None:
            session.add(FeedPost(feed_id=feed_id, ig_media_id=ig_id, state=state, pinned_position=position,
                                 decided_by=by, decided_at=now))
            changed = True
        elif (row.state, row.pinned_position) != (state, position):
            row.state, row.pinned_position, row.decided_by, row.decided_at = state, position, by, now
            changed = True
    if changed:
        await session.flush()
        await session.execute(update(Feed).where(Feed.id == feed_id).values(changed_at=now))
    return changed


async def forget(session: AsyncSession, ig_media_ids: Sequence[str]) -> int:
    """Every feed's decisions on these posts (an owner's data deletion takes them with the posts)."""
    removed = 0
    for start in range(0, len(ig_media_ids), 500):
        chunk = list(ig_media_ids[start:start + 500])
        removed += rowcount(await session.execute(delete(FeedPost).where(FeedPost.ig_media_id.in_(chunk))
                                                  .execution_options(synchronize_session=False)))
    return removed


async def rows_of(session: AsyncSession, feed_id: int,
                  ig_media_ids: Sequence[str] | None = None) -> dict[str, FeedPost]:
    """The feed's decision rows (on these posts), by Instagram id."""
    query = select(FeedPost).where(FeedPost.feed_id == feed_id)
    if ig_media_ids is not None:
        query = query.where(FeedPost.ig_media_id.in_(list(ig_media_ids)))
    return {r.ig_media_id: r for r in (await session.execute(query)).scalars()}


async def moderate(session: AsyncSession, feed_id: int, ig_media_ids: Sequence[str], state: PostState, *,
                   by: str | None, now: datetime) -> int:
    """Approve or reject these posts in the feed (a pin stays); who decided and when are kept. Moves the feed's
    ``changed_at`` when a state changed; returns how many did."""
    current = await rows_of(session, feed_id, ig_media_ids)
    changed = 0
    for ig_id in dict.fromkeys(ig_media_ids):
        row = current.get(ig_id)
        if row is None:
            session.add(FeedPost(feed_id=feed_id, ig_media_id=ig_id, state=state, pinned_position=None,
                                 decided_by=by, decided_at=now))
            changed += 1
        elif row.state != state:
            row.state, row.decided_by, row.decided_at = state, by, now
            changed += 1
    if changed:
        await session.flush()
        await session.execute(update(Feed).where(Feed.id == feed_id).values(changed_at=now))
    return changed
