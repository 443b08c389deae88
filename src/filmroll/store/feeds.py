"""Feed queries: the ``feeds`` rows, their sources, and the posts and files a feed shows. Nothing here commits.

:func:`touch` is called in the transaction of every write that changes what a feed shows (a source's status or
failing syncs, a mirror pass that stored pictures, the feed's settings); the web tier polls :func:`versions` and
renders a feed again only when its version moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.lease import Claim, Claimable, Lease, made
from filmroll.store.sources import describe
from filmroll.store.tables import Account, Feed, FeedSource, MediaChild, MediaFile, MediaItem, Source
from filmroll.vocabulary import SourceKind

PUBLISH = Lease("publish", Feed.__table__, "id", "publish_lease_owner", "publish_lease_until")  # type: ignore[arg-type]


async def create(session: AsyncSession, *, values: dict[str, Any], source_ids: Sequence[int], now: datetime) -> Feed:
    feed = Feed(**values, changed_at=now, created_at=now, updated_at=now)
    session.add(feed)
    await session.flush()
    await set_sources(session, feed.id, source_ids)
    return feed


async def set_sources(session: AsyncSession, feed_id: int, source_ids: Sequence[int]) -> None:
    await session.execute(delete(FeedSource).where(FeedSource.feed_id == feed_id))
    session.add_all(FeedSource(feed_id=feed_id, source_id=s, position=n) for n, s in enumerate(source_ids))
    await session.flush()


async def by_slug(session: AsyncSession, slug: str, *, for_update: bool = False) -> Feed | None:
    query = select(Feed).where(Feed.slug == slug)
    return (await session.execute(query.with_for_update() if for_update else query)).scalar_one_or_none()


async def all_feeds(session: AsyncSession) -> list[Feed]:
    return list((await session.execute(select(Feed).order_by(Feed.slug))).scalars())


@dataclass(frozen=True)
class FeedSourceRow:
    """One source of a feed, with the account it belongs to or reads through (None: it needs none)."""

    source: Source
    account: Account | None

    @property
    def own_account(self) -> Account | None:
        """The account whose own posts these are (an account source's), else None."""
        return self.account if self.source.kind == SourceKind.ACCOUNT else None

    @property
    def label(self) -> str:
        return describe(self.source.kind, self.source.query, self.account.username if self.account else None,
                        self.source.account_id)


async def sources(session: AsyncSession, feed_ids: Sequence[int]) -> dict[int, list[FeedSourceRow]]:
    """Each feed's sources, in the order they were given."""
    found: dict[int, list[FeedSourceRow]] = {f: [] for f in feed_ids}
    if feed_ids:
        for feed_id, source, account in await session.execute(
                select(FeedSource.feed_id, Source, Account).join(Source, Source.id == FeedSource.source_id)
                .outerjoin(Account, Account.id == Source.account_id)
                .where(FeedSource.feed_id.in_(feed_ids)).order_by(FeedSource.feed_id, FeedSource.position)):
            found[feed_id].append(FeedSourceRow(source, account))
    return found


async def sources_of(session: AsyncSession, source_ids: Sequence[int]) -> list[FeedSourceRow]:
    """These sources, in the order given (a draft feed's)."""
    rows = await session.execute(select(Source, Account).outerjoin(Account, Account.id == Source.account_id)
                                 .where(Source.id.in_(list(source_ids))))
    found = {source.id: FeedSourceRow(source, account) for source, account in rows}
    return [found[s] for s in source_ids if s in found]


async def update_feed(session: AsyncSession, feed_id: int, values: dict[str, Any], now: datetime) -> None:
    await session.execute(update(Feed).where(Feed.id == feed_id).values(**values, updated_at=now, changed_at=now))


async def remove(session: AsyncSession, feed_id: int) -> None:
    await session.execute(delete(Feed).where(Feed.id == feed_id))


async def touch(session: AsyncSession, source_ids: Sequence[int], now: datetime, *,
                retry_publish: bool = False) -> None:
    """What the feeds of these sources show has changed: each renders again (one UPDATE; none if in no feed).
    ``retry_publish``: and is published again at once, even if a publish is backing off (a deletion: the publish
    that failed on the pictures it took first is out of date)."""
    if source_ids:
        values: dict[str, object] = {"changed_at": now}
        if retry_publish:
            values |= {"next_publish_at": None, "publish_error": None}
        await session.execute(update(Feed).where(Feed.id.in_(
            select(FeedSource.feed_id).where(FeedSource.source_id.in_(list(source_ids))))).values(**values))


async def touch_accounts(session: AsyncSession, account_ids: Sequence[int], now: datetime, *,
                         retry_publish: bool = False) -> None:
    """:func:`touch` of every source of these accounts (their status changed)."""
    if account_ids:
        owned = select(Source.id).where(Source.account_id.in_(list(account_ids)))
        await touch(session, list((await session.execute(owned)).scalars()), now, retry_publish=retry_publish)


async def versions(session: AsyncSession) -> dict[str, tuple[datetime, datetime | None]]:
    """slug -> (changed_at, its sources' newest last_synced_at) of every feed: what the web tier polls. A routine
    sync moves only the second (the feed says when its sources were last synced), every other change the first."""
    rows = await session.execute(
        select(Feed.slug, Feed.changed_at, func.max(Source.last_synced_at))
        .outerjoin(FeedSource, FeedSource.feed_id == Feed.id).outerjoin(Source, Source.id == FeedSource.source_id)
        .group_by(Feed.id, Feed.slug, Feed.changed_at))
    return {slug: (changed, synced) for slug, changed, synced in rows}


async def live_posts(session: AsyncSession, source_ids: Sequence[int], *, limit: int) -> list[MediaItem]:
    """The mirrored, live posts of these sources, newest first (the feed's filters are the service's)."""
    if not source_ids:
        return []
    return list((await session.execute(
        select(MediaItem).where(MediaItem.source_id.in_(source_ids), MediaItem.deleted_at.is_(None),
                                MediaItem.mirrored_at.is_not(None))
        .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(limit))).scalars())


async def children(session: AsyncSession, media_ids: Sequence[int]) -> dict[int, list[MediaChild]]:
    found: dict[int, list[MediaChild]] = {}
    if media_ids:
        for child in (await session.execute(select(MediaChild).where(MediaChild.media_id.in_(media_ids))
                                            .order_by(MediaChild.media_id, MediaChild.position))).scalars():
            found.setdefault(child.media_id, []).append(child)
    return found


async def originals(session: AsyncSession, source_ids: Sequence[int],
                    ig_media_ids: Sequence[str]) -> dict[tuple[int, str], list[MediaFile]]:
    """(source id, Instagram id) -> its stored originals, posters, videos and upright JPEGs (the other variants are
    named by rule, made or not)."""
    found: dict[tuple[int, str], list[MediaFile]] = {}
    if source_ids and ig_media_ids:
        for row in (await session.execute(select(MediaFile).where(
                MediaFile.source_id.in_(source_ids), MediaFile.ig_media_id.in_(ig_media_ids),
                or_(MediaFile.variant == "", MediaFile.variant.like("%.jpg"))))).scalars():
            found.setdefault((row.source_id, row.ig_media_id), []).append(row)
    return found


async def published(session: AsyncSession, slugs: Sequence[str], now: datetime) -> None:
    if slugs:
        await session.execute(update(Feed).where(Feed.slug.in_(slugs)).values(published_at=now))


# ----- publish: a feed's files, written again after it changed (the worker's claims) ------------------------------

@dataclass(frozen=True)
class PublishClaim(Claim):
    feed_id: int
    slug: str
    publish_failures: int
    KEY = "feed_id"

    @property
    def label(self) -> str:
        return f"feed {self.slug}"


def feed_version() -> Any:
    """A feed's version in SQL: the later of its ``changed_at`` and its sources' newest ``last_synced_at`` (what
    :func:`versions` reads for the web tier, as one value)."""
    newest = (select(func.max(Source.last_synced_at)).join(FeedSource, FeedSource.source_id == Source.id)
              .where(FeedSource.feed_id == Feed.id).scalar_subquery())
    return case((newest > Feed.changed_at, newest), else_=Feed.changed_at)


# Feeds whose version moved past the one last published (and not backing off).
PUBLISHES: Claimable[PublishClaim] = Claimable(
    PUBLISH, lambda now: select(Feed.id),
    lambda now: (or_(Feed.published_version.is_(None), Feed.published_version < feed_version()),
                 or_(Feed.next_publish_at.is_(None), Feed.next_publish_at <= now)),
    Feed.id, ("id", "slug", "publish_failures"),
    lambda session, rows, until: made(PublishClaim, ("feed_id", "slug", "publish_failures"), rows))


async def publish_finished(session: AsyncSession, *, owner: str, feed_id: int, values: dict[str, object]) -> bool:
    """Record a publish's outcome on the feed and give its lease back, if we still hold it."""
    return await PUBLISH.finish(session, feed_id, owner=owner, values=values)


async def version_of(session: AsyncSession, feed_id: int) -> datetime | None:
    found: datetime | None = (await session.execute(
        select(feed_version().label("version")).where(Feed.id == feed_id))).scalar_one_or_none()
    return found
