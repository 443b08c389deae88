"""An account's posts as people look at them, and the mirror run by hand: ``filmroll media``, ``filmroll mirror``,
``filmroll storage usage|gc`` and the admin UI's account page. The mirror runs here exactly as in a worker
(``Mirror.run`` under the account source's mirror lease, renewed while it runs; refused while a worker holds it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.service.accounts import EDGE_LEASE, find, under_lease
from filmroll.service.mirror import Mirror
from filmroll.store import feeds as feed_store
from filmroll.store import files as file_store
from filmroll.store import sources as source_store
from filmroll.store.database import Database
from filmroll.store.lease import claim_one
from filmroll.store.tables import Account, MediaChild, MediaFile, MediaItem, Source
from filmroll.vocabulary import FileRole, Outcome


@dataclass(frozen=True)
class PostView:
    """One post and where its pictures stand: what ``filmroll media --json`` prints and the account page shows."""

    ig_media_id: str
    media_type: str | None
    is_reel: bool
    caption: str | None
    timestamp: datetime | None
    permalink: str | None
    mirror_state: str  # mirrored · pending · failed
    mirror_error: str | None
    files: int
    bytes: int
    picture_key: str | None  # the stored file a page shows (the smallest WebP variant, else the original)
    picture_width: int | None  # that file's size
    picture_height: int | None
    width: int | None  # the original's (or a video's poster's) size
    height: int | None
    color: str | None
    like_count: int | None  # as Instagram last said (None: not given, e.g. hidden likes)
    comments_count: int | None
    children: int = 0
    variants: list[str] = field(default_factory=list)


async def posts(database: Database, ref: str, *, limit: int = 1000, offset: int = 0,
                ids: Sequence[str] | None = None) -> tuple[Account, list[PostView]]:
    """The account's live posts, newest first (``offset`` of them skipped; only ``ids``, if given), with their
    mirror state. Only the files of the posts asked for are read."""
    account = await find(database, ref)
    async with database.read() as session:
        source_id = await _own_source(session, account)
        query = select(MediaItem).where(MediaItem.source_id == source_id, MediaItem.deleted_at.is_(None))
        if ids is not None:
            query = query.where(MediaItem.ig_media_id.in_(ids))
        rows = list((await session.execute(query.order_by(MediaItem.timestamp.desc(), MediaItem.id.desc())
                                           .offset(offset).limit(limit))).scalars())
        children: dict[int, list[str]] = {}
        if rows:
            for media_id, ig_id in await session.execute(
                    select(MediaChild.media_id, MediaChild.ig_media_id)
                    .where(MediaChild.media_id.in_([r.id for r in rows])).order_by(MediaChild.position)):
                children.setdefault(media_id, []).append(ig_id)
        owners = [r.ig_media_id for r in rows] + [ig_id for parts in children.values() for ig_id in parts]
        stored = await file_store.of_source(session, source_id, owners) if owners else []
    by_owner: dict[str, list[MediaFile]] = {}
    for f in stored:
        by_owner.setdefault(f.ig_media_id, []).append(f)
    views = []
    for row in rows:
        parts = children.get(row.id) or [row.ig_media_id]  # an album's pictures are its children's
        own = [f for ig_id in {row.ig_media_id, *parts} for f in by_owner.get(ig_id, [])]
        first = by_owner.get(parts[0], [])
        original = next((f for f in first if f.role in (FileRole.ORIGINAL, FileRole.POSTER)), None)
        shown = _shown(first, original)
        views.append(PostView(
            row.ig_media_id, row.media_type, row.media_product_type == "REELS", row.caption, row.timestamp,
            row.permalink, file_store.mirror_state(row), row.mirror_error, len(own), sum(f.bytes for f in own),
            shown.storage_key if shown else None, shown.width if shown else None, shown.height if shown else None,
            original.width if original else None, original.height if original else None,
            original.color if original else None, row.like_count, row.comments_count, len(children.get(row.id, ())),
            sorted(f.variant for f in own if f.role == FileRole.VARIANT)))
    return account, views


async def post_counts(database: Database, account: Account) -> tuple[int, int]:
    """(the account's live posts, how many of them are mirrored)."""
    async with database.read() as session:
        source_id = await _own_source(session, account)
        live = (MediaItem.source_id == source_id) & MediaItem.deleted_at.is_(None)
        total, mirrored = (await session.execute(select(
            func.count(), func.count(MediaItem.mirrored_at)).where(live))).one()
    return int(total), int(mirrored)


async def profile_picture(database: Database, account_id: int) -> tuple[str | None, str | None]:
    """(the storage key of the account's mirrored profile picture, if there is one; why its last mirror pass
    failed, if it did)."""
    async with database.read() as session:
        source = await source_store.of_account(session, account_id)
        files = await file_store.of_source(session, source.id, [""]) if source is not None else []
    picture = next((f.storage_key for f in files if f.role == FileRole.ORIGINAL), None)
    return picture, source.mirror_error if source is not None else None


def _shown(files: list[MediaFile], original: MediaFile | None) -> MediaFile | None:
    """The picture a page shows: its smallest WebP variant, else its original (or poster)."""
    webp = sorted((f for f in files if f.variant.endswith(".webp")), key=lambda f: f.width or 0)
    return webp[0] if webp else original


@dataclass(frozen=True)
class MirrorReport:
    outcome: Outcome
    mirrored: int  # posts mirrored by this run
    pending: int  # posts still waiting (failed ones included)
    error: str | None


async def mirror_now(mirror: Mirror, ref: str, *, progress: Callable[[int, int], None] | None = None,
                     lease: timedelta = EDGE_LEASE) -> MirrorReport:
    """Mirror one account now, pass after pass until nothing is pending; failed posts get their attempts back."""
    database = mirror.database
    account = await find(database, ref)
    async with database.transaction() as session:
        source_id = await _own_source(session, account)
        await file_store.elsewhere(session, storage=mirror.storage.description, source_id=source_id)
        await file_store.give_attempts_back(session, source_id)
    total = await _pending(database, source_id)
    done = 0
    outcome = Outcome.MIRRORED
    while True:
        async with database.transaction() as session:
            claim = await claim_one(session, source_store.MIRRORS, source_id, owner=mirror.owner,
                                    now=await database.now(), lease=lease)
        if claim is None:
            raise errors.AccountStateError(f"@{account.username} is being mirrored by a worker right now; try again "
                                           "in a minute", status="busy")
        before = await _pending(database, source_id)
        outcome = await under_lease(database, source_store.MIRROR, source_id, owner=mirror.owner, duration=lease,
                                     work=mirror.run(claim))
        after = await _pending(database, source_id)
        done += before - after
        if progress:
            progress(done, total)
        if after == 0 or after == before or outcome is not Outcome.MIRRORED:
            break
    async with database.read() as session:
        fresh = await session.get(Source, source_id)
    return MirrorReport(outcome, done, await _pending(database, source_id), fresh.mirror_error if fresh else None)


async def _own_source(session: AsyncSession, account: Account) -> int:
    source = await source_store.of_account(session, account.id)
    if source is None:
        raise errors.AccountStateError(f"@{account.username} has no posts stored: connect it again",
                                       status=account.status)
    return source.id


async def _pending(database: Database, source_id: int) -> int:
    async with database.read() as session:
        return await file_store.pending_count(session, source_id)


@dataclass(frozen=True)
class Usage:
    account_id: int | None  # the account the source belongs to or reads through
    username: str | None
    files: dict[str, int]  # role -> count
    bytes: dict[str, int]  # role -> bytes
    source_id: int = 0
    source: str = ""  # as people name it: @bakery, #bread


async def usage(database: Database, storage: str) -> list[Usage]:
    """Files and bytes per source and role in ``storage`` (the one in use: a description, as Storage gives it)."""
    async with database.read() as session:
        rows = await file_store.usage(session, storage=storage)
        named = {r.source.id: r for r in await feed_store.sources_of(session, sorted({row[0] for row in rows}))}
    found: dict[int, Usage] = {}
    for source_id, role, count, size in rows:
        row = named.get(source_id)
        account = row.account if row is not None else None
        entry = found.setdefault(source_id, Usage(
            account.id if account else None, account.username if account else None, {}, {}, source_id,
            row.label if row else f"source {source_id}"))
        entry.files[role] = count
        entry.bytes[role] = size
    return list(found.values())


async def collect(mirror: Mirror) -> tuple[int, int]:
    """The collector over every source now (each under its mirror lease; one a worker holds is skipped); returns
    (file rows before, after)."""
    database = mirror.database
    async with database.read() as session:
        ids = await source_store.ids(session)
        before = await file_store.file_count(session)
    for source_id in ids:
        async with database.transaction() as session:
            claim = await claim_one(session, source_store.mirrors(None), source_id, owner=mirror.owner,
                                    now=await database.now(), lease=EDGE_LEASE)
        if claim is None:
            continue
        try:
            await mirror.collect(claim, database.clock.now())
        finally:
            async with database.transaction() as session:
                await source_store.MIRROR.release(session, [source_id], owner=mirror.owner)
    async with database.read() as session:
        after = await file_store.file_count(session)
    return before, after

