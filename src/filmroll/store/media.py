"""Media rows. Upserts are keyed on (account, Instagram id) with ON CONFLICT, so two workers, a crash and a retry
can all write the same post and it still exists exactly once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.platform.models import Media, MediaPage
from filmroll.store.tables import MediaChild, MediaItem

# What makes a post "changed". Signed URLs are not in here: Instagram re-signs them on every read (§2.6).
COMPARED = ("caption", "like_count", "comments_count", "alt_text", "media_type", "media_product_type", "permalink")
_FINGERPRINTED = ("id", *COMPARED)


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _values(account_id: int, media: Media, now: datetime) -> dict[str, Any]:
    return {"account_id": account_id, "ig_media_id": media.id, "media_type": media.media_type,
            "media_product_type": media.media_product_type, "caption": media.caption, "permalink": media.permalink,
            "shortcode": media.shortcode, "media_url": media.media_url, "thumbnail_url": media.thumbnail_url,
            "alt_text": media.alt_text, "timestamp": media.timestamp, "like_count": media.like_count,
            "comments_count": media.comments_count, "children_count": len(media.children), "first_seen_at": now,
            "updated_at": now, "deleted_at": None}


async def known(session: AsyncSession, account_id: int, ig_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored comparable fields of these posts (deleted ones included)."""
    if not ig_ids:
        return {}
    rows = await session.execute(select(MediaItem.ig_media_id, MediaItem.deleted_at,
                                        *(getattr(MediaItem, c) for c in COMPARED))
                                 .where(MediaItem.account_id == account_id, MediaItem.ig_media_id.in_(ig_ids)))
    return {row[0]: {"deleted_at": row[1], **dict(zip(COMPARED, row[2:], strict=True))} for row in rows}


def fingerprint(page: MediaPage) -> str:
    """What :func:`changed` compares, for a whole page, read straight from Instagram's JSON (no parsing): equal
    fingerprints, nothing on the page to write. (One ``repr`` of the page, not one per post: half the cost.)"""
    rows = [tuple(map(item.get, _FINGERPRINTED)) if isinstance(item, dict) else None for item in page.raw]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def changed(stored: dict[str, Any] | None, media: Media) -> bool:
    if stored is None or stored["deleted_at"] is not None:
        return True
    return any(stored[c] != getattr(media, c) for c in COMPARED)


async def upsert(session: AsyncSession, account_id: int, items: Sequence[Media], now: datetime) -> int:
    """Insert new posts and update changed ones (and their children); returns how many rows were written."""
    if not items:
        return 0
    statement = _insert(session, MediaItem)
    keep = {"first_seen_at"}  # a re-seen post keeps the moment we first saw it
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "ig_media_id"],
        set_={c.name: statement.excluded[c.name] for c in MediaItem.__table__.columns
              if c.name not in keep | {"id", "account_id", "ig_media_id"}})
    rows = await session.execute(statement.returning(MediaItem.id, MediaItem.ig_media_id),
                                 [_values(account_id, m, now) for m in items])
    ids = {ig_id: row_id for row_id, ig_id in rows}
    with_children = [m for m in items if m.children]
    if with_children:
        await session.execute(delete(MediaChild).where(MediaChild.media_id.in_([ids[m.id] for m in with_children])))
        await session.execute(_insert(session, MediaChild).on_conflict_do_nothing(), [
            {"media_id": ids[m.id], "ig_media_id": c.id, "position": n, "media_type": c.media_type,
             "media_url": c.media_url, "thumbnail_url": c.thumbnail_url}
            for m in with_children for n, c in enumerate(m.children)])
    return len(items)


async def update_compared(session: AsyncSession, account_id: int, items: Sequence[Media], now: datetime) -> int:
    """Posts already stored whose compared fields changed (likes, comments, an edited caption): those columns only,
    from a page that carried nothing else (see ``service/sync.py``)."""
    if not items:
        return 0
    table = MediaItem.__table__
    # Bound names are prefixed: SQLAlchemy reserves a column's own name for its SET value.
    statement = (update(table)
                 .where(table.c.account_id == bindparam("b_account"), table.c.ig_media_id == bindparam("b_ig_id"))
                 .values(updated_at=bindparam("b_now"), **{c: bindparam(f"b_{c}") for c in COMPARED}))
    await session.execute(statement, [{"b_account": account_id, "b_ig_id": m.id, "b_now": now,
                                       **{f"b_{c}": getattr(m, c) for c in COMPARED}} for m in items])
    return len(items)


async def mark_deleted_except(session: AsyncSession, account_id: int, present: set[str], now: datetime) -> int:
    """After a full pass: every live post Instagram no longer lists is marked deleted (never erased)."""
    live = await session.execute(select(MediaItem.ig_media_id).where(MediaItem.account_id == account_id,
                                                                     MediaItem.deleted_at.is_(None)))
    gone = [row[0] for row in live if row[0] not in present]
    if gone:
        await session.execute(update(MediaItem).where(MediaItem.account_id == account_id,
                                                      MediaItem.ig_media_id.in_(gone))
                              .values(deleted_at=now, updated_at=now).execution_options(synchronize_session=False))
    return len(gone)


async def count(session: AsyncSession, account_id: int, *, live: bool = True) -> int:
    query = select(func.count()).select_from(MediaItem).where(MediaItem.account_id == account_id)
    if live:
        query = query.where(MediaItem.deleted_at.is_(None))
    return (await session.execute(query)).scalar_one()


async def live_counts(session: AsyncSession) -> dict[int, int]:
    """Live posts per account, for every account at once."""
    rows = await session.execute(select(MediaItem.account_id, func.count()).where(MediaItem.deleted_at.is_(None))
                                 .group_by(MediaItem.account_id))
    return {account_id: live for account_id, live in rows}


async def record_insights(session: AsyncSession, account_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert insight values keyed by (account, media, metric, period, day): a re-take the same day replaces."""
    if not rows:
        return 0
    from filmroll.store.tables import InsightSnapshot

    statement = _insert(session, InsightSnapshot)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "ig_media_id", "metric", "period", "day"],
        set_={"value": statement.excluded.value, "taken_at": statement.excluded.taken_at})
    await session.execute(statement, [{"account_id": account_id, **row} for row in rows])
    return len(rows)
