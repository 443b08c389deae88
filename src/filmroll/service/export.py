"""``filmroll export @user``: everything filmroll holds of an account, in one zip an owner who leaves can take along.

    README.txt           this layout, in words
    profile.json         the profile as last read (username, name, counts, ids), status, connected and synced dates
    posts.json           every stored post, newest first, with its children, counts, and the archive paths of its
                         files ("files": [{"path", "role", "type", "bytes", "sha256"}])
    insights.json        every insight snapshot taken ({"media": id or null, "metric", "period", "day", "value",
                         "taken_at"})
    media/<id>.<ext>     each stored original, poster and video, named by the Instagram id of its post or child
    profile.<ext>        the stored profile picture

Variants are left out (they are made from the originals). The zip is written beside the target and renamed into
place when complete, so a target that exists is never a half-written archive. No token is ever in it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from filmroll.service.accounts import find as find_account
from filmroll.storage import Storage
from filmroll.store import sources
from filmroll.store.database import Database
from filmroll.store.tables import Account, InsightSnapshot, MediaChild, MediaFile, MediaItem, Source
from filmroll.vocabulary import FileRole

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic",
               "video/mp4": "mp4", "video/quicktime": "mov"}


@dataclass(frozen=True)
class ExportReport:
    username: str | None
    path: Path
    posts: int
    files: int
    missing: int  # files whose row exists but whose bytes the storage no longer has
    bytes: int


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


async def export(database: Database, storage: Storage, ref: str, target: Path) -> ExportReport:
    account = await find_account(database, ref)
    async with database.read() as session:
        source = await sources.of_account(session, account.id)
        source_id = source.id if source is not None else -1  # none: nothing was ever stored of it
        posts = list((await session.execute(select(MediaItem).where(MediaItem.source_id == source_id)
                                            .order_by(MediaItem.timestamp.desc()))).scalars())
        children = list((await session.execute(select(MediaChild).join(MediaItem, MediaItem.id == MediaChild.media_id)
                                               .where(MediaItem.source_id == source_id)
                                               .order_by(MediaChild.position))).scalars())
        files = list((await session.execute(select(MediaFile).where(
            MediaFile.source_id == source_id, MediaFile.role != FileRole.VARIANT))).scalars())
        insights = list((await session.execute(select(InsightSnapshot).where(InsightSnapshot.account_id == account.id)
                                               .order_by(InsightSnapshot.taken_at))).scalars())
    paths = {f.id: _path(f) for f in files}
    by_media: dict[str, list[MediaFile]] = {}
    for file in files:
        by_media.setdefault(file.ig_media_id, []).append(file)
    kids: dict[int, list[MediaChild]] = {}
    for child in children:
        kids.setdefault(child.media_id, []).append(child)

    def described(ig_media_id: str) -> list[dict[str, Any]]:
        return [{"path": paths[f.id], "role": f.role, "type": f.content_type, "bytes": f.bytes, "sha256": f.sha256}
                for f in by_media.get(ig_media_id, [])]

    documents = {
        "profile.json": _profile(account, source, described("")),
        "posts.json": [{
            "id": p.ig_media_id, "type": p.media_type, "product_type": p.media_product_type, "caption": p.caption,
            "alt_text": p.alt_text, "permalink": p.permalink, "timestamp": _time(p.timestamp),
            "like_count": p.like_count, "comments_count": p.comments_count, "deleted_at": _time(p.deleted_at),
            "files": described(p.ig_media_id),
            "children": [{"id": c.ig_media_id, "type": c.media_type, "files": described(c.ig_media_id)}
                         for c in kids.get(p.id, [])]} for p in posts],
        "insights.json": [{"media": i.ig_media_id or None, "metric": i.metric, "period": i.period, "day": i.day,
                           "value": i.value, "taken_at": _time(i.taken_at)} for i in insights],
    }
    target = target.resolve()
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    written = missing = 0
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.txt", (__doc__ or "").split("\n\n")[1] + "\n")
            for name, document in documents.items():
                archive.writestr(name, json.dumps(document, ensure_ascii=False, indent=1))
            for file in files:
                data = await storage.get(file.storage_key)
                if data is None:
                    missing += 1
                    continue
                # Pictures are compressed already: stored as they are.
                archive.writestr(paths[file.id], data, compress_type=zipfile.ZIP_STORED)
                written += 1
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return ExportReport(account.username, target, len(posts), written, missing, target.stat().st_size)


def _path(file: MediaFile) -> str:
    extension = _EXTENSIONS.get(file.content_type, "bin")
    if not file.ig_media_id:
        return f"profile.{extension}"
    suffix = "-video" if file.role == FileRole.VIDEO else ("-poster" if file.role == FileRole.POSTER else "")
    return f"media/{file.ig_media_id}{suffix}.{extension}"


def _profile(account: Account, source: Source | None, picture: list[dict[str, Any]]) -> dict[str, Any]:
    return {"username": account.username, "name": account.name, "ig_user_id": account.ig_user_id,
            "app_scoped_id": account.app_scoped_id, "account_type": account.account_type,
            "followers_count": account.followers_count, "follows_count": account.follows_count,
            "media_count": account.media_count, "status": account.status,
            "connected_at": _time(account.connected_at),
            "last_synced_at": _time(source.last_synced_at if source else None),
            "profile_picture": picture}
