"""An account's posts as people look at them, and the mirror run by hand: ``filmroll media``, ``filmroll mirror``,
``filmroll storage usage|gc`` and the admin UI's account page. The mirror runs here exactly as in a worker
(``Mirror.run`` under the account's mirror lease, renewed while it runs; refused while a worker holds it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from filmroll import errors
from filmroll.service.accounts import EDGE_LEASE, find, under_lease
from filmroll.service.mirror import Mirror
from filmroll.store import accounts as account_store
from filmroll.store import files as file_store
from filmroll.store.database import Database
from filmroll.store.lease import claim_one
from filmroll.store.tables import Account, MediaChild, MediaFile, MediaItem
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


async def posts(database: Database, ref: str, *, limit: int = 1000) -> tuple[Account, list[PostView]]:
    """The account's live posts, newest first, with their mirror state."""
    account = await find(database, ref)
    async with database.read() as session:
        rows = list((await session.execute(select(MediaItem).where(
            MediaItem.account_id == account.id, MediaItem.deleted_at.is_(None))
            .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(limit))).scalars())
        stored = await file_store.of_account(session, account.id)
        children: dict[int, list[str]] = {}
        if rows:
            for media_id, ig_id in await session.execute(
                    select(MediaChild.media_id, MediaChild.ig_media_id)
                    .where(MediaChild.media_id.in_([r.id for r in rows])).order_by(MediaChild.position)):
                children.setdefault(media_id, []).append(ig_id)
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


async def profile_picture(database: Database, account_id: int) -> str | None:
    """The storage key of the account's mirrored profile picture, if there is one."""
    async with database.read() as session:
        files = await file_store.of_account(session, account_id, [""])
    return next((f.storage_key for f in files if f.role == FileRole.ORIGINAL), None)


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
        await file_store.elsewhere(session, storage=mirror.storage.description, account_id=account.id)
        await file_store.give_attempts_back(session, account.id)
    total = await _pending(database, account.id)
    done = 0
    outcome = Outcome.MIRRORED
    while True:
        async with database.transaction() as session:
            claim = await claim_one(session, account_store.MIRRORS, account.id, owner=mirror.owner,
                                    now=await database.now(), lease=lease)
        if claim is None:
            raise errors.AccountStateError(f"@{account.username} is being mirrored by a worker right now; try again "
                                           "in a minute", status="busy")
        before = await _pending(database, account.id)
        outcome = await under_lease(database, account_store.MIRROR, account.id, owner=mirror.owner, duration=lease,
                                     work=mirror.run(claim))
        after = await _pending(database, account.id)
        done += before - after
        if progress:
            progress(done, total)
        if after == 0 or after == before or outcome is not Outcome.MIRRORED:
            break
    async with database.read() as session:
        fresh = await session.get(Account, account.id)
    return MirrorReport(outcome, done, await _pending(database, account.id), fresh.mirror_error if fresh else None)


async def _pending(database: Database, account_id: int) -> int:
    async with database.read() as session:
        return await file_store.pending_count(session, account_id)


@dataclass(frozen=True)
class Usage:
    account_id: int
    username: str | None
    files: dict[str, int]  # role -> count
    bytes: dict[str, int]  # role -> bytes


async def usage(database: Database, storage: str) -> list[Usage]:
    """Files and bytes per account and role in ``storage`` (the one in use: a description, as Storage gives it)."""
    async with database.read() as session:
        rows = await file_store.usage(session, storage=storage)
        names = {a: u for a, u in await session.execute(select(Account.id, Account.username))}
    found: dict[int, Usage] = {}
    for account_id, role, count, size in rows:
        entry = found.setdefault(account_id, Usage(account_id, names.get(account_id), {}, {}))
        entry.files[role] = count
        entry.bytes[role] = size
    return list(found.values())


async def collect(mirror: Mirror) -> tuple[int, int]:
    """The collector over every account now (each under its mirror lease; one a worker holds is skipped); returns
    (file rows before, after)."""
    database = mirror.database
    async with database.read() as session:
        ids = list((await session.execute(select(Account.id))).scalars())
        before = await file_store.file_count(session)
    for account_id in ids:
        async with database.transaction() as session:
            claim = await claim_one(session, account_store.MIRRORS, account_id, owner=mirror.owner,
                                    now=await database.now(), lease=EDGE_LEASE)
        if claim is None:
            continue
        try:
            await mirror.collect(claim, database.clock.now())
        finally:
            async with database.transaction() as session:
                await account_store.MIRROR.release(session, [account_id], owner=mirror.owner)
    async with database.read() as session:
        after = await file_store.file_count(session)
    return before, after

