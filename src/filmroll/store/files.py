"""The mirror's rows: ``media_files`` (what is stored where) and each post's mirror state. Nothing here commits.

A file row is written only after its object is stored, and deleted before its object is: a crash in between
leaves an object without a row (found by the collector's listing), never a row without its object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import dialect_insert, rowcount
from filmroll.store.tables import Account, MediaChild, MediaFile, MediaItem, Source, UTCDateTime
from filmroll.vocabulary import FileRole


@dataclass(frozen=True)
class WantedFile:
    """One picture (or video) of a post to store: whose it is, what it is to the post, and where Instagram has it."""

    ig_media_id: str  # the post's, a child's, or "" for the profile picture
    role: FileRole
    url: str | None


@dataclass(frozen=True)
class PendingPost:
    media_id: int
    ig_media_id: str
    media_type: str | None
    media_url: str | None
    thumbnail_url: str | None
    mirror_attempts: int
    children: tuple[tuple[str, str | None, str | None, str | None], ...]  # (ig id, type, media_url, thumbnail_url)


async def pending(session: AsyncSession, source_id: int, *, limit: int, max_attempts: int) -> list[PendingPost]:
    """Live posts not mirrored yet (newest first) that have attempts left."""
    rows = (await session.execute(
        select(MediaItem.id, MediaItem.ig_media_id, MediaItem.media_type, MediaItem.media_url,
               MediaItem.thumbnail_url, MediaItem.mirror_attempts)
        .where(MediaItem.source_id == source_id, MediaItem.deleted_at.is_(None), MediaItem.mirrored_at.is_(None),
               MediaItem.mirror_attempts < max_attempts)
        .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(limit))).all()
    children: dict[int, list[tuple[str, str | None, str | None, str | None]]] = {}
    if rows:
        for media_id, ig_id, kind, url, thumb in await session.execute(
                select(MediaChild.media_id, MediaChild.ig_media_id, MediaChild.media_type, MediaChild.media_url,
                       MediaChild.thumbnail_url).where(MediaChild.media_id.in_([r[0] for r in rows]))
                .order_by(MediaChild.media_id, MediaChild.position)):
            children.setdefault(media_id, []).append((ig_id, kind, url, thumb))
    return [PendingPost(*row, children=tuple(children.get(row[0], ()))) for row in rows]


async def newest_ids(session: AsyncSession, source_id: int, count: int) -> set[int]:
    """The ``count`` newest live posts (their variants are made eagerly)."""
    rows = await session.execute(select(MediaItem.id).where(MediaItem.source_id == source_id,
                                                            MediaItem.deleted_at.is_(None))
                                 .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(count))
    return set(rows.scalars())


_FILE_COLUMNS = [c.name for c in MediaFile.__table__.columns if c.name != "id"]
_FILE_KEY = ["source_id", "ig_media_id", "role", "variant"]


async def record(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace file rows, keyed by (source, Instagram id, role, variant): one statement for them all."""
    if not rows:
        return
    statement = dialect_insert(session, MediaFile)
    statement = statement.on_conflict_do_update(
        index_elements=_FILE_KEY, set_={c: statement.excluded[c] for c in _FILE_COLUMNS if c not in _FILE_KEY})
    await session.execute(statement, [{"variant": "", **{c: None for c in _FILE_COLUMNS}, **row} for row in rows])


async def mark_mirrored(session: AsyncSession, media_id: int, now: datetime) -> None:
    await session.execute(update(MediaItem).where(MediaItem.id == media_id)
                          .values(mirrored_at=now, mirror_error=None))


async def elsewhere(session: AsyncSession, *, storage: str, source_id: int | None = None) -> list[int]:
    """Files another storage holds (FILMROLL_STORAGE__URL changed since they were written) are forgotten and
    their posts count as not mirrored, so the mirror stores them again where they are now looked for, instead of
    claiming files that are not there. Files from before filmroll recorded their storage are taken as this one's.
    Returns the sources that now have something to mirror."""
    scope = [MediaFile.source_id == source_id] if source_id is not None else []
    await session.execute(update(MediaFile).where(MediaFile.storage.is_(None), *scope).values(storage=storage)
                          .execution_options(synchronize_session=False))
    moved = (await session.execute(select(MediaFile.source_id, MediaFile.ig_media_id).where(
        MediaFile.storage != storage, *scope))).all()
    by_source: dict[int, set[str]] = {}
    for owner, ig_media_id in moved:
        by_source.setdefault(owner, set()).add(ig_media_id)
    for owner, ig_media_ids in by_source.items():
        await unmirror(session, owner, ig_media_ids)
    if by_source:
        await session.execute(delete(MediaFile).where(MediaFile.storage != storage, *scope)
                              .execution_options(synchronize_session=False))
    return sorted(by_source)


async def unmirror(session: AsyncSession, source_id: int, ig_media_ids: set[str]) -> None:
    """These posts' files are gone: they count as not mirrored (a post is keyed by its own id or a child's)."""
    children = select(MediaChild.media_id).where(MediaChild.ig_media_id.in_(ig_media_ids))
    await session.execute(update(MediaItem).where(
        MediaItem.source_id == source_id,
        or_(MediaItem.ig_media_id.in_(ig_media_ids), MediaItem.id.in_(children)))
        .values(mirrored_at=None, mirror_attempts=0, mirror_error=None))


async def give_attempts_back(session: AsyncSession, source_id: int, ig_media_ids: Sequence[str] | None = None
                             ) -> int:
    """Posts the mirror gave up on (the CDN failed, or their URLs expired while the owner had to sign in again) get
    their attempts back; a refusal stays final. ``ig_media_ids``: only these posts. Returns how many."""
    query = (update(MediaItem).where(MediaItem.source_id == source_id, MediaItem.mirrored_at.is_(None),
                                     MediaItem.mirror_attempts > 0,
                                     ~func.coalesce(MediaItem.mirror_error, "").like("refused:%"))
             .values(mirror_attempts=0).execution_options(synchronize_session=False))
    if ig_media_ids is not None:
        query = query.where(MediaItem.ig_media_id.in_(ig_media_ids))
    return rowcount(await session.execute(query))


WAITING = "waiting [{mark}]: "  # mirror_error of a post a setting refused, under the settings marked ``mark``


async def retry_waiting(session: AsyncSession, source_id: int | None, *, mark: str | None) -> int:
    """Posts a setting refused get their attempts back: those refused under other settings than ``mark`` (the
    setting changed), or every one (``mark`` None: the daily sweep); one source's, or (None) every source's.
    Returns how many."""
    query = update(MediaItem).where(MediaItem.mirrored_at.is_(None), MediaItem.mirror_error.like("waiting [%"))
    if source_id is not None:
        query = query.where(MediaItem.source_id == source_id)
    if mark is not None:
        query = query.where(~MediaItem.mirror_error.like(WAITING.format(mark=mark) + "%"))
    return rowcount(await session.execute(
        query.values(mirror_attempts=0).execution_options(synchronize_session=False)))


async def due_for_changed_settings(session: AsyncSession, *, mark: str, now: datetime) -> int:
    """Sources with posts a setting refused under other settings than ``mark``: due now (a worker started with
    the setting fixed takes them without a manual step). Returns how many."""
    changed = select(MediaItem.source_id).where(
        MediaItem.mirrored_at.is_(None), MediaItem.deleted_at.is_(None), MediaItem.mirror_error.like("waiting [%"),
        ~MediaItem.mirror_error.like(WAITING.format(mark=mark) + "%"))
    made_due = rowcount(await session.execute(
        update(Source).where(Source.id.in_(changed)).values(next_mirror_at=now)
        .execution_options(synchronize_session=False)))
    await retry_waiting(session, None, mark=mark)  # once here, not a write on every pass
    return made_due


async def waiting_on_settings(session: AsyncSession) -> tuple[int, str | None]:
    """How many live posts wait on a setting, and one of their errors (which setting, which host)."""
    query = select(func.count(), func.min(MediaItem.mirror_error)).where(
        MediaItem.mirrored_at.is_(None), MediaItem.deleted_at.is_(None), MediaItem.mirror_error.like("waiting [%"))
    count, example = (await session.execute(query)).one()
    return int(count), example


async def pending_count(session: AsyncSession, source_id: int) -> int:
    """Live posts not mirrored yet, whether or not they have attempts left."""
    return int((await session.execute(select(func.count()).select_from(MediaItem).where(
        MediaItem.source_id == source_id, MediaItem.deleted_at.is_(None),
        MediaItem.mirrored_at.is_(None)))).scalar_one())


async def file_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(MediaFile))).scalar_one())


async def mark_failed(session: AsyncSession, media_id: int, error: str, *, attempts: int) -> None:
    await session.execute(update(MediaItem).where(MediaItem.id == media_id)
                          .values(mirror_attempts=attempts, mirror_error=error[:500]))


async def of_source(session: AsyncSession, source_id: int, ig_media_ids: Sequence[str] | None = None
                     ) -> list[MediaFile]:
    query = select(MediaFile).where(MediaFile.source_id == source_id)
    if ig_media_ids is not None:
        query = query.where(MediaFile.ig_media_id.in_(ig_media_ids))
    return list((await session.execute(query.order_by(MediaFile.id))).scalars())


async def by_key(session: AsyncSession, storage_key: str) -> MediaFile | None:
    return (await session.execute(select(MediaFile).where(MediaFile.storage_key == storage_key))).scalars().first()


async def original_of(session: AsyncSession, prefix: str, sha256: str) -> MediaFile | None:
    """The original (or poster) under ``prefix`` (``storage/keys.py``) whose bytes have this hash: what a variant is
    made from."""
    return (await session.execute(select(MediaFile).where(
        MediaFile.sha256 == sha256, MediaFile.storage_key.startswith(prefix, autoescape=True),
        MediaFile.role.in_([FileRole.ORIGINAL, FileRole.POSTER])))).scalars().first()


async def collectable(session: AsyncSession, source_id: int, *, before: datetime, everything: bool
                      ) -> list[MediaFile]:
    """Files no longer referenced since before ``before``: those of posts deleted on Instagram; ``everything``: every
    file of the source (its account was disconnected or revoked before ``before``)."""
    if everything:
        return await of_source(session, source_id)
    deleted = select(MediaItem.ig_media_id).where(MediaItem.source_id == source_id,
                                                  MediaItem.deleted_at.is_not(None), MediaItem.deleted_at < before)
    children = (select(MediaChild.ig_media_id).join(MediaItem, MediaItem.id == MediaChild.media_id)
                .where(MediaItem.source_id == source_id, MediaItem.deleted_at.is_not(None),
                       MediaItem.deleted_at < before))
    rows = await session.execute(select(MediaFile).where(
        MediaFile.source_id == source_id, MediaFile.ig_media_id != "",
        or_(MediaFile.ig_media_id.in_(deleted), MediaFile.ig_media_id.in_(children))))
    return list(rows.scalars())


async def forget(session: AsyncSession, file_ids: Sequence[int]) -> None:
    if file_ids:
        await session.execute(delete(MediaFile).where(MediaFile.id.in_(file_ids)))


async def keys_of(session: AsyncSession, source_id: int) -> set[str]:
    return set((await session.execute(select(MediaFile.storage_key)
                                      .where(MediaFile.source_id == source_id))).scalars())


async def usage(session: AsyncSession, *, storage: str) -> list[tuple[int, str, int, int]]:
    """(source id, role, files, bytes) for every source and role, in ``storage`` (a Storage's description)."""
    rows = await session.execute(select(MediaFile.source_id, MediaFile.role, func.count(), func.sum(MediaFile.bytes))
                                 .where(or_(MediaFile.storage == storage, MediaFile.storage.is_(None)))
                                 .group_by(MediaFile.source_id, MediaFile.role)
                                 .order_by(MediaFile.source_id, MediaFile.role))
    return [(a, r, n, int(b or 0)) for a, r, n, b in rows]


async def variants_to_evict(session: AsyncSession, *, over_bytes: int) -> list[MediaFile]:
    """The least recently served variants whose bytes add up to at least ``over_bytes`` (originals are kept)."""
    found: list[MediaFile] = []
    total = 0
    rows = await session.execute(select(MediaFile).where(MediaFile.role == FileRole.VARIANT)
                                 .order_by(func.coalesce(MediaFile.served_at, MediaFile.created_at), MediaFile.id))
    for row in rows.scalars():
        if total >= over_bytes:
            break
        found.append(row)
        total += row.bytes
    return found


async def variant_bytes(session: AsyncSession) -> int:
    total = await session.execute(select(func.sum(MediaFile.bytes)).where(MediaFile.role == FileRole.VARIANT))
    return int(total.scalar_one() or 0)


async def served(session: AsyncSession, file_id: int, now: datetime) -> None:
    await session.execute(update(MediaFile).where(MediaFile.id == file_id).values(served_at=now))


async def set_profile_picture_url(session: AsyncSession, account_id: int, url: str) -> None:
    await session.execute(update(Account).where(Account.id == account_id).values(profile_picture_url=url))


def next_pass_at(source_id: int, *, now: datetime, otherwise: datetime, max_attempts: int) -> Any:
    """``now`` if the source has posts waiting (a sync may have stored some while the pass ran), else ``otherwise``:
    one SQL expression, decided in the UPDATE that records the pass, so a sync's "due now" is never overwritten."""
    waiting = select(MediaItem.id).where(MediaItem.source_id == source_id, MediaItem.deleted_at.is_(None),
                                         MediaItem.mirrored_at.is_(None), MediaItem.mirror_attempts < max_attempts)
    return case((exists(waiting), literal(now, UTCDateTime())), else_=literal(otherwise, UTCDateTime()))


async def mirror_due(session: AsyncSession, source_id: int, now: datetime) -> None:
    """The source has something new to mirror: due now, unless due sooner already."""
    await session.execute(update(Source).where(
        Source.id == source_id, or_(Source.next_mirror_at.is_(None), Source.next_mirror_at > now))
        .values(next_mirror_at=now))


def mirror_state(post: MediaItem) -> str:
    """How a post stands in the mirror, for people: mirrored · pending · waiting (on a setting) · failed (the error,
    on the row, says why)."""
    if post.mirrored_at is not None:
        return "mirrored"
    if post.mirror_error and post.mirror_error.startswith("waiting ["):
        return "waiting"
    return "failed" if post.mirror_error else "pending"


