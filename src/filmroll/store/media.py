"""Media rows. Upserts are keyed on (source, Instagram id) with ON CONFLICT, so two workers, a crash and a retry
can all write the same post and it still exists exactly once. Posts come in as neutral rows (column name → value,
``children`` a list of rows), built by ``service/posts.py``; nothing here knows Instagram's models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import files
from filmroll.store.database import dialect_insert, rowcount
from filmroll.store.tables import InsightSnapshot, MediaChild, MediaItem

Row = Mapping[str, Any]


def _values(source_id: int, post: Row, now: datetime) -> dict[str, Any]:
    values = {k: v for k, v in post.items() if k != "children"}
    return {**values, "source_id": source_id, "children_count": len(post.get("children", ())),
            "first_seen_at": now, "updated_at": now, "deleted_at": None}


async def known(session: AsyncSession, source_id: int, ig_ids: Sequence[str],
                columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """These posts' stored ``columns`` and ``deleted_at``, by Instagram id (deleted ones included)."""
    if not ig_ids:
        return {}
    rows = await session.execute(select(MediaItem.ig_media_id, MediaItem.deleted_at,
                                        *(getattr(MediaItem, c) for c in columns))
                                 .where(MediaItem.source_id == source_id, MediaItem.ig_media_id.in_(ig_ids)))
    return {row[0]: {"deleted_at": row[1], **dict(zip(columns, row[2:], strict=True))} for row in rows}


async def upsert(session: AsyncSession, source_id: int, items: Sequence[Row], now: datetime) -> int:
    """Insert new posts and update changed ones (and their children); returns how many rows were written."""
    if not items:
        return 0
    statement = dialect_insert(session, MediaItem)
    # A re-seen post keeps the moment we first saw it, and its mirror state (its pictures do not change).
    keep = {"first_seen_at", "mirrored_at", "mirror_attempts", "mirror_error"}
    statement = statement.on_conflict_do_update(
        index_elements=["source_id", "ig_media_id"],
        set_={c.name: statement.excluded[c.name] for c in MediaItem.__table__.columns
              if c.name not in keep | {"id", "source_id", "ig_media_id"}})
    rows = await session.execute(statement.returning(MediaItem.id, MediaItem.ig_media_id),
                                 [_values(source_id, m, now) for m in items])
    ids = {ig_id: row_id for row_id, ig_id in rows}
    with_children = [m for m in items if m.get("children")]
    if with_children:
        parents = [ids[m["ig_media_id"]] for m in with_children]
        await session.execute(delete(MediaChild).where(MediaChild.media_id.in_(parents)))
        await session.execute(dialect_insert(session, MediaChild).on_conflict_do_nothing(), [
            {**child, "media_id": ids[m["ig_media_id"]], "position": n}
            for m in with_children for n, child in enumerate(m["children"])])
    return len(items)


async def update_columns(session: AsyncSession, source_id: int, items: Sequence[Row], now: datetime) -> int:
    """Posts already stored, some of whose columns changed (likes, comments, an edited caption): only the columns
    each row carries, keyed by its ``ig_media_id`` (see ``service/sync.py``). All rows carry the same columns."""
    if not items:
        return 0
    table: Table = MediaItem.__table__  # type: ignore[assignment]
    columns = [c for c in items[0] if c != "ig_media_id"]
    # Bound names are prefixed: SQLAlchemy reserves a column's own name for its SET value.
    statement = (update(table)
                 .where(table.c.source_id == bindparam("b_source"), table.c.ig_media_id == bindparam("b_ig_id"))
                 .values(updated_at=bindparam("b_now"), **{c: bindparam(f"b_{c}") for c in columns}))
    await session.execute(statement, [{"b_source": source_id, "b_ig_id": m["ig_media_id"], "b_now": now,
                                       **{f"b_{c}": m[c] for c in columns}} for m in items])
    return len(items)


async def update_urls(session: AsyncSession, source_id: int, items: Sequence[Row]) -> int:
    """Instagram's freshly signed URLs for posts already stored, and for their children (rows as
    ``service/posts.urls`` makes them): every read that returns URLs keeps the stored ones current. Returns how many
    posts the mirror had given up on get their attempts back."""
    if not items:
        return 0
    table: Table = MediaItem.__table__  # type: ignore[assignment]
    await session.execute(
        update(table).where(table.c.source_id == bindparam("b_source"), table.c.ig_media_id == bindparam("b_ig_id"))
        .values(media_url=bindparam("b_url"), thumbnail_url=bindparam("b_thumb")),
        [{"b_source": source_id, "b_ig_id": m["ig_media_id"], "b_url": m["media_url"],
          "b_thumb": m["thumbnail_url"]} for m in items])
    # Fresh URLs are a fresh chance for a post the mirror gave up on.
    retried = await files.give_attempts_back(session, source_id, [m["ig_media_id"] for m in items])
    children = [(m["ig_media_id"], c) for m in items for c in m["children"]]
    if children:
        rows = await session.execute(select(MediaItem.ig_media_id, MediaItem.id).where(
            MediaItem.source_id == source_id, MediaItem.ig_media_id.in_([p for p, _ in children])))
        parents = {ig_id: media_id for ig_id, media_id in rows}
        child_table: Table = MediaChild.__table__  # type: ignore[assignment]
        await session.execute(
            update(child_table).where(child_table.c.media_id == bindparam("b_parent"),
                                      child_table.c.ig_media_id == bindparam("b_ig_id"))
            .values(media_url=bindparam("b_url"), thumbnail_url=bindparam("b_thumb")),
            [{"b_parent": parents[p], "b_ig_id": c["ig_media_id"], "b_url": c["media_url"],
              "b_thumb": c["thumbnail_url"]} for p, c in children if p in parents])
    return retried


async def live_ids(session: AsyncSession, source_id: int) -> list[str]:
    """The Instagram ids of the source's posts not marked deleted, newest first."""
    rows = await session.execute(select(MediaItem.ig_media_id).where(MediaItem.source_id == source_id,
                                                                     MediaItem.deleted_at.is_(None))
                                 .order_by(MediaItem.timestamp.desc()))
    return list(rows.scalars())


async def mark_deleted(session: AsyncSession, source_id: int, ig_media_ids: Sequence[str], now: datetime) -> int:
    """Posts gone from Instagram: marked deleted, never erased."""
    if not ig_media_ids:
        return 0
    result = await session.execute(
        update(MediaItem).where(MediaItem.source_id == source_id, MediaItem.ig_media_id.in_(ig_media_ids),
                                MediaItem.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now).execution_options(synchronize_session=False))
    return rowcount(result)


async def count(session: AsyncSession, source_id: int, *, live: bool = True) -> int:
    query = select(func.count()).select_from(MediaItem).where(MediaItem.source_id == source_id)
    if live:
        query = query.where(MediaItem.deleted_at.is_(None))
    return (await session.execute(query)).scalar_one()


async def live_counts(session: AsyncSession, source_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Live posts per source, for every source at once (or for ``source_ids``)."""
    query = select(MediaItem.source_id, func.count()).where(MediaItem.deleted_at.is_(None))
    if source_ids is not None:
        query = query.where(MediaItem.source_id.in_(source_ids))
    rows = await session.execute(query.group_by(MediaItem.source_id))
    return {source_id: live for source_id, live in rows}


async def record_insights(session: AsyncSession, account_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert insight values keyed by (account, media, metric, period, day): a re-take the same day replaces."""
    if not rows:
        return 0
    statement = dialect_insert(session, InsightSnapshot)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "ig_media_id", "metric", "period", "day"],
        set_={"value": statement.excluded.value, "taken_at": statement.excluded.taken_at})
    await session.execute(statement, [{"account_id": account_id, **row} for row in rows])
    return len(rows)
