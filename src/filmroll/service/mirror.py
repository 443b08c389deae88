"""The media mirror: every post's pictures into storage filmroll controls, long before Instagram's URLs expire.

One pass holds a source's mirror lease (``store.sources.MIRROR``) and does, in order:

    profile picture   an account source's: stored again only when its CDN file name changed
    pending posts     the newest first, up to ``posts_per_pass`` (then the source is due again at once):
                      each picture (a post's, each carousel child's, a video's poster; the video by setting, and
                      the poster made from its first frame when Instagram gave none) is
                      fetched from the CDN only (platform/cdn.py), identified from its bytes, stored under the
                      SHA-256 of its bytes, and, for the ``eager_posts`` newest, rendered into variants in a process
                      pool; the post's file rows and its ``mirrored_at`` are written together, after the objects
    expired URLs      a URL past (or near) its ``oe``, or one the CDN answers 403, is read afresh by id
                      (``GET /{media-id}?fields=media_url,thumbnail_url,children{…}``) and stored, then fetched
    the collector     once a sweep interval (a day): files of posts deleted on Instagram, and all files of a
                      disconnected or revoked account's sources, once ``retention`` has passed; objects with no
                      row (a crash between the two) after an hour; over the variant byte budget, the least
                      recently served variants

A refusal (a URL outside the CDN hosts, a body over the cap, not a picture, a decompression bomb) is final for that
post: an event says what and why, and nothing is stored. A failure (the CDN or the storage not answering) counts an
attempt and the source is retried with backoff. The next sweep is due a day after a pass that left nothing to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from filmroll import errors
from filmroll.platform import AccountReader, Clients, ProviderClient
from filmroll.platform.cdn import CdnClient, describe, file_name, url_expires_at
from filmroll.secret import Secret
from filmroll.service import pictures, posts
from filmroll.service.policy import Backoff, MirrorPolicy
from filmroll.service.renderer import Renderer
from filmroll.storage import Storage, account_prefix, original_key, source_prefix, variant_key
from filmroll.store import events
from filmroll.store import feeds as feed_store
from filmroll.store import files as file_store
from filmroll.store import media as media_store
from filmroll.store import sources as source_store
from filmroll.store.database import Database, is_unavailable
from filmroll.store.files import PendingPost, WantedFile
from filmroll.store.sources import MirrorClaim
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, FileRole, Outcome, SourceKind

log = logging.getLogger("filmroll.mirror")
URL_FIELDS = ("id", "media_type", "media_url", "thumbnail_url", "children{id,media_type,media_url,thumbnail_url}")
PROFILE_WIDTHS = (150, 320)
ORPHAN_GRACE = timedelta(hours=1)  # an object this young without a row may be a put whose row is on its way


def wanted_files(post: PendingPost, *, videos: bool) -> list[WantedFile]:
    """The files a post needs: its picture, or each child's; a video's poster (and the video, by setting). A video
    given without a poster (a hashtag's: those edges give none) has the video alone, its poster made from its first
    frame (``Mirror._store``), or, when videos are not mirrored, nothing: a video tile."""
    items = [(c[0], c[1], c[2], c[3]) for c in post.children] or [
        (post.ig_media_id, post.media_type, post.media_url, post.thumbnail_url)]
    found: list[WantedFile] = []
    for ig_id, kind, url, thumbnail in items:
        if kind == "VIDEO":
            if thumbnail is not None or url is None:  # no URL at all: refused below, saying so
                found.append(WantedFile(ig_id, FileRole.POSTER, thumbnail))
            if videos:
                found.append(WantedFile(ig_id, FileRole.VIDEO, url))
        else:
            found.append(WantedFile(ig_id, FileRole.ORIGINAL, url))
    return found


def _only_videos(post: PendingPost) -> bool:
    kinds = [c[1] for c in post.children] or [post.media_type]
    return all(kind == "VIDEO" for kind in kinds)


class Mirror:
    def __init__(self, database: Database, vault: Vault, clients: Clients | ProviderClient, cdn: CdnClient,
                 storage: Storage, renderer: Renderer, *, owner: str, policy: MirrorPolicy | None = None,
                 backoff: Backoff | None = None, per_host: int = 4, rng: random.Random | None = None) -> None:
        self.database = database
        self.vault = vault
        self.clients = Clients.of(clients)
        self.cdn = cdn
        self.storage = storage
        self.renderer = renderer
        self.owner = owner
        self.policy = policy or MirrorPolicy()
        self.backoff = backoff or Backoff()
        self.per_host = per_host
        self.rng = rng or random.Random()
        self._hosts: dict[str, asyncio.Semaphore] = {}
        # The settings a refusal can come from, as one mark kept on each post they refused: when it differs, the
        # setting changed and those posts are tried again.
        self.settings_mark = hashlib.sha256(repr((sorted(cdn.hosts), self.policy.max_image_bytes,
                                                  self.policy.max_video_bytes)).encode()).hexdigest()[:8]

    async def run(self, claim: MirrorClaim) -> Outcome:
        now = self.database.clock.now()
        if _retired(claim):
            remaining = await self.collect(claim, now)
            due = (claim.status_since or now) + self.policy.retention if remaining else None
            await self._finish(claim, {"next_mirror_at": due, "mirror_failures": 0, "mirror_error": None,
                                       "mirror_collected_at": now})
            return Outcome.MIRRORED
        token = self._token(claim)
        failed: list[str] = []
        try:
            await self._profile_picture(claim, token, now)
        except errors.DownloadRefusedError as exc:  # the picture's or a setting's doing, not the account's: no backoff
            log.warning("%s, profile picture: %s", claim.label, exc.message)
        except (errors.MediaError, errors.StorageError, errors.InstagramError) as exc:
            failed.append(f"profile picture: {exc.message}")
        if claim.mirror_collected_at is None or now - claim.mirror_collected_at >= self.policy.sweep_interval:
            async with self.database.transaction() as session:  # the daily sweep: what a setting refused, again
                await file_store.retry_waiting(session, claim.source_id, mark=None)
        async with self.database.read() as session:
            waiting = await file_store.pending(session, claim.source_id, limit=self.policy.posts_per_pass,
                                               max_attempts=self.policy.max_attempts)
            # A hashtag's posts wait for an operator's approval before any site shows them: their variants are made
            # when first asked for (web/public.py), not for every stranger's post a tag brings.
            eager = await file_store.newest_ids(session, claim.source_id, self.policy.eager_posts) \
                if claim.kind != SourceKind.HASHTAG else set()
        # A few posts at a time: each holds a database session at its end, and pictures in memory meanwhile.
        slots = asyncio.Semaphore(self.per_host)

        async def one(post: PendingPost) -> str | None:
            async with slots:
                return await self._post(claim, token, post, post.media_id in eager, now)

        results = await asyncio.gather(*(one(p) for p in waiting))
        failed += [r for r in results if r]
        # The collector lists the source's storage: once a sweep interval, not on every pass a new post brings.
        collected = claim.mirror_collected_at
        if collected is None or now - collected >= self.policy.sweep_interval:
            try:
                await self.collect(claim, now)
                collected = now
            except errors.StorageError as exc:
                failed.append(f"collector: {exc.message}")
        if failed:
            wait = self.backoff.delay(claim.mirror_failures, self.rng)
            values: dict[str, object] = {"next_mirror_at": now + wait, "mirror_failures": claim.mirror_failures + 1,
                                         "mirror_error": f"{len(failed)} failed; first: {failed[0]}"[:500],
                                         "mirror_collected_at": collected}
        else:
            later = file_store.next_pass_at(claim.source_id, now=now, otherwise=now + self.policy.sweep_interval,
                                            max_attempts=self.policy.max_attempts)
            values = {"next_mirror_at": later, "mirror_failures": 0, "mirror_error": None,
                      "mirror_collected_at": collected}
        await self._finish(claim, values, stored=bool(waiting))
        return Outcome.MIRROR_RETRY if failed else Outcome.MIRRORED

    def _token(self, claim: MirrorClaim) -> Secret | None:
        """The account's token for reading fresh URLs; none while the owner must sign in again (a dead token would
        only be refused), in which case the stored URLs are all there is until they do."""
        if (claim.kind != SourceKind.ACCOUNT or claim.ciphertext is None or claim.key_id is None
                or claim.account_id is None or claim.status != AccountStatus.ACTIVE):
            return None  # other kinds' posts are not the token's to read by id: their syncs sign their URLs
        try:
            return self.vault.open(claim.ciphertext, claim.key_id, claim.account_id)
        except errors.VaultError:
            return None  # the sync says so; the mirror makes do with the stored URLs

    async def _finish(self, claim: MirrorClaim, values: dict[str, object], *, stored: bool = False) -> None:
        """Record the pass; ``stored``: it worked on posts, so the source's feeds show more (or fresher) pictures."""
        async with self.database.transaction() as session:
            if not await source_store.mirrored(session, owner=self.owner, source_id=claim.source_id, values=values):
                log.warning("stale_lease: the mirror pass of %s was taken over", claim.label)
            elif stored:
                await feed_store.touch(session, [claim.source_id], self.database.clock.now())

    # ----- one post ----------------------------------------------------------------------------------------------

    async def _post(self, claim: MirrorClaim, token: Secret | None, post: PendingPost, eager: bool,
                    now: datetime) -> str | None:
        """Store one post's files; returns why it failed for now (None: stored, or refused for good)."""
        try:
            rows = await self._post_files(claim, token, post, eager, now)
        except errors.SettingRefusedError as exc:  # waits for the setting (or the sweep), named in its error
            log.warning("%s, post %s waits: %s", claim.label, post.ig_media_id, exc.message)
            async with self.database.transaction() as session:
                await file_store.mark_failed(session, post.media_id,
                                             file_store.WAITING.format(mark=self.settings_mark) + exc.message,
                                             attempts=self.policy.max_attempts)
            return None
        except errors.DownloadRefusedError as exc:
            await self._refused(claim, post, exc.message, now)
            return None
        except errors.NotFoundError:
            await self._refused(claim, post, "Instagram says the post no longer exists", now)
            return None
        except (errors.MediaError, errors.StorageError, errors.InstagramError) as exc:
            attempts = post.mirror_attempts + 1
            async with self.database.transaction() as session:
                await file_store.mark_failed(session, post.media_id, exc.message, attempts=attempts)
                if attempts >= self.policy.max_attempts:  # no pass takes it again: say so once, with the reason
                    await events.record(session, "media.failed", f"post {post.ig_media_id} was not mirrored after "
                                        f"{attempts} attempts: {exc.message}", at=now, account_id=claim.account_id,
                                        actor=self.owner)
            return f"post {post.ig_media_id}: {exc.message}"
        async with self.database.transaction() as session:
            if await source_store.still_mirroring(session, owner=self.owner, source_id=claim.source_id):
                await file_store.record(session, rows)
                await file_store.mark_mirrored(session, post.media_id, now)
        return None

    async def _post_files(self, claim: MirrorClaim, token: Secret | None, post: PendingPost, eager: bool,
                          now: datetime) -> list[dict[str, Any]]:
        """The post's files, stored; its URLs are read afresh by id (once) when one has expired or the CDN says so."""
        fresh = token is None  # without a token the stored URLs are all there is
        if not fresh and any(self._stale(s.url, now) for s in self._wanted(post)):
            post, fresh = await self._fresh_urls(claim, token, post), True
        while True:
            wanted = self._wanted(post)
            if not wanted and _only_videos(post):
                return []  # videos without posters, not mirrored as files: shown as video tiles
            if not wanted or any(s.url is None for s in wanted):
                raise errors.DownloadRefusedError("Instagram gives no picture URL for this post (a reel with licensed "
                                                  "audio, or a post the token may not see in full)")
            given = {w.ig_media_id for w in wanted if w.role is FileRole.POSTER}
            try:
                return [row for w in wanted for row in await self._store(
                    claim.source_id, w, eager, now, poster=w.role is FileRole.VIDEO and w.ig_media_id not in given)]
            except errors.UrlExpiredError:
                if fresh:
                    raise
                post, fresh = await self._fresh_urls(claim, token, post), True

    def _wanted(self, post: PendingPost) -> list[WantedFile]:
        """The post's files; a video file Instagram gives no URL for (licensed audio) is left out, its poster kept."""
        return [w for w in wanted_files(post, videos=self.policy.videos)
                if w.url is not None or w.role != FileRole.VIDEO]

    def _stale(self, url: str | None, now: datetime) -> bool:
        expires = url_expires_at(url)
        return url is None or (expires is not None and expires - self.policy.expiry_margin <= now)

    async def _fresh_urls(self, claim: MirrorClaim, token: Secret | None, post: PendingPost) -> PendingPost:
        """The post read again by id: its URLs signed afresh, and stored as a sync stores them."""
        assert token is not None
        media = await self._reader(claim).media_item(token, post.ig_media_id, fields=URL_FIELDS)
        async with self.database.transaction() as session:
            await media_store.update_urls(session, claim.source_id, [posts.urls(media)])
        children = tuple((c.id, c.media_type, c.media_url, c.thumbnail_url) for c in media.children)
        return replace(post, media_url=media.media_url, thumbnail_url=media.thumbnail_url,
                       children=children or post.children)

    async def _fetch(self, url: str, role: FileRole) -> bytes:
        host = urlsplit(url).hostname or ""
        slots = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        cap = self.policy.max_video_bytes if role is FileRole.VIDEO else self.policy.max_image_bytes
        async with slots:
            return await self.cdn.fetch(url, max_bytes=cap)

    async def _store(self, source_id: int, wanted: WantedFile, eager: bool, now: datetime,
                     widths: tuple[int, ...] | None = None, *, poster: bool = False) -> list[dict[str, Any]]:
        """Fetch, check and store one file (and its variants); ``poster``: a video's poster is made from its first
        frame, as Instagram gave none. Returns the rows, for the caller to record."""
        assert wanted.url is not None
        data = await self._fetch(wanted.url, wanted.role)
        found = pictures.identify(data, max_pixels=self.policy.max_pixels)
        is_video = found.content_type == "video/mp4"
        if is_video != (wanted.role is FileRole.VIDEO):
            raise errors.DownloadRefusedError(f"refused {describe(wanted.url)}: a "
                                              f"{'video' if is_video else 'picture'} where a "
                                              f"{'video' if wanted.role is FileRole.VIDEO else 'picture'} belongs")
        row = await self._put(source_id, wanted.ig_media_id, wanted.role, data, found.content_type,
                              file_name(wanted.url), now)
        options: dict[str, Any] = {"widths": widths or self.policy.widths, "max_pixels": self.policy.max_pixels,
                                   "formats": self.policy.formats if eager else ()}
        if not is_video:
            rendered = await self.renderer.render(data, fallback_jpeg=eager and not found.clean, **options)
            return await self._with_variants(row, rendered)
        if not poster:
            return [row]
        made, rendered = await self.renderer.poster(data, fallback_jpeg=False, **options)
        still = await self._put(source_id, wanted.ig_media_id, FileRole.POSTER, made, "image/jpeg",
                                row["source_name"], now)
        return [row, *await self._with_variants(still, rendered)]

    async def _put(self, source_id: int, ig_media_id: str, role: FileRole, data: bytes, content_type: str,
                   source_name: str | None, now: datetime) -> dict[str, Any]:
        """One original stored under its bytes' SHA-256; its row (width and height a picture's render gives)."""
        sha = hashlib.sha256(data).hexdigest()
        key = original_key(source_id, sha, content_type)
        await self.storage.put(key, data, content_type)
        return {"source_id": source_id, "ig_media_id": ig_media_id, "role": role, "variant": "", "sha256": sha,
                "storage_key": key, "content_type": content_type, "storage": self.storage.description,
                "bytes": len(data), "width": None, "height": None, "source_name": source_name, "created_at": now}

    async def _with_variants(self, row: dict[str, Any], rendered: pictures.Rendered) -> list[dict[str, Any]]:
        row.update(width=rendered.width, height=rendered.height, color=rendered.color, palette=rendered.palette,
                   placeholder=rendered.placeholder)
        rows = [row]
        for variant in rendered.variants:
            name = variant_key(row["storage_key"], variant.variant)
            await self.storage.put(name, variant.data, variant.content_type)
            rows.append({**row, "role": FileRole.VARIANT, "variant": variant.variant, "storage_key": name,
                         "content_type": variant.content_type, "bytes": len(variant.data), "width": variant.width,
                         "height": variant.height})
        return rows

    async def _refused(self, claim: MirrorClaim, post: PendingPost, why: str, now: datetime) -> None:
        log.warning("%s, post %s: %s", claim.label, post.ig_media_id, why)
        async with self.database.transaction() as session:
            await file_store.mark_failed(session, post.media_id, f"refused: {why}", attempts=self.policy.max_attempts)
            await events.record(session, "media.refused", f"post {post.ig_media_id} was not mirrored: {why}",
                                at=now, account_id=claim.account_id, actor=self.owner)

    async def _profile_picture(self, claim: MirrorClaim, token: Secret | None, now: datetime) -> None:
        url = claim.profile_picture_url  # an account source's only
        if not url or claim.account_id is None:
            return
        account_id = claim.account_id
        async with self.database.read() as session:
            stored = await file_store.of_source(session, claim.source_id, [""])
        if any(f.role == FileRole.ORIGINAL and f.source_name == file_name(url) for f in stored):
            return
        if token is not None and self._stale(url, now):
            url = await self._fresh_profile_picture_url(claim, account_id, token)
        try:
            rows = await self._store(claim.source_id, WantedFile("", FileRole.ORIGINAL, url), True, now,
                                      widths=PROFILE_WIDTHS)
        except errors.UrlExpiredError:
            if token is None:
                raise
            url = await self._fresh_profile_picture_url(claim, account_id, token)
            rows = await self._store(claim.source_id, WantedFile("", FileRole.ORIGINAL, url), True, now,
                                      widths=PROFILE_WIDTHS)
        async with self.database.transaction() as session:
            await file_store.forget(session, [f.id for f in stored])
            await file_store.record(session, rows)
        # The old picture's objects go with the next orphan sweep (an hour on): a page may still be showing it.

    def _reader(self, claim: MirrorClaim) -> AccountReader:
        return self.clients.reader(claim.provider or "", claim.ig_user_id or "")

    async def _fresh_profile_picture_url(self, claim: MirrorClaim, account_id: int, token: Secret) -> str:
        url = (await self._reader(claim).me(token, fields=("id", "profile_picture_url"))).profile_picture_url
        if not url:
            raise errors.DownloadFailedError("Instagram gave no profile picture URL; tried again later")
        async with self.database.transaction() as session:
            await file_store.set_profile_picture_url(session, account_id, url)
        return url

    async def due_for_changed_settings(self) -> int:
        """Once, as a worker starts: sources whose posts a setting refused under other settings, or whose files
        another storage holds (FILMROLL_STORAGE__URL changed), are due now."""
        now = self.database.clock.now()
        async with self.database.transaction() as session:
            moved = await file_store.elsewhere(session, storage=self.storage.description)
            for source_id in moved:
                await file_store.mirror_due(session, source_id, now)
            return len(moved) + await file_store.due_for_changed_settings(session, mark=self.settings_mark, now=now)

    # ----- the collector -----------------------------------------------------------------------------------------

    async def collect(self, claim: MirrorClaim, now: datetime) -> int:
        """Remove what is no longer referenced (see the module docstring); returns how many file rows remain."""
        async with self.database.read() as session:
            before = now - self.policy.retention
            everything = _retired(claim) and (claim.status_since or now) < before
            gone = await file_store.collectable(session, claim.source_id, before=before, everything=everything)
        if gone:
            async with self.database.transaction() as session:
                await file_store.forget(session, [f.id for f in gone])
                # Should Instagram list such a post again, it is mirrored again.
                await file_store.unmirror(session, claim.source_id, {f.ig_media_id for f in gone})
            await self.storage.delete([f.storage_key for f in gone])
            log.info("%s: %d file(s) of deleted posts or of a disconnected account removed", claim.label,
                     len(gone))
        if self.policy.variant_budget_bytes:
            await self._evict(claim, now)
        async with self.database.read() as session:
            known = await file_store.keys_of(session, claim.source_id)
        wall = datetime.now(UTC)  # objects' times are the storage's (real) time, not the database clock's
        prefixes = [source_prefix(claim.source_id)]
        if claim.kind == SourceKind.ACCOUNT and claim.account_id is not None:
            prefixes.append(account_prefix(claim.account_id))  # its files from before sources
        orphans = [o.key for prefix in prefixes async for o in self.storage.list(prefix)
                   if o.key not in known and wall - o.modified > ORPHAN_GRACE]
        if orphans:
            await self.storage.delete(orphans)
        return len(known)

    async def _evict(self, claim: MirrorClaim, now: datetime) -> None:
        async with self.database.read() as session:
            over = await file_store.variant_bytes(session) - self.policy.variant_budget_bytes
            victims = [f for f in await file_store.variants_to_evict(session, over_bytes=over)
                       if f.source_id == claim.source_id] if over > 0 else []
        if victims:
            async with self.database.transaction() as session:
                await file_store.forget(session, [f.id for f in victims])
            await self.storage.delete([f.storage_key for f in victims])

    # ----- a variant on first request (web) ------------------------------------------------------------------------

    async def variant(self, prefix: str, sha256: str, variant: str, now: datetime) -> tuple[bytes, str] | None:
        """The bytes and type of a variant of the original stored under ``prefix`` (``storage/keys.py``), rendered
        now from that original if it was never made (or was evicted); None if there is no such original or the
        width/format is not one filmroll makes."""
        width, _, fmt = variant.partition(".")
        if fmt not in self.policy.formats or not width.isdigit():
            return None
        async with self.database.read() as session:
            original = await file_store.original_of(session, prefix, sha256)
            made_already = (await file_store.by_key(session, variant_key(original.storage_key, variant))
                            if original is not None else None)
        if made_already is not None:  # rendered since the request looked (a render that had just finished)
            data = await self.storage.get(made_already.storage_key)
            if data is not None:
                return data, made_already.content_type
        # Only the widths feeds name (pictures.ladder: never wider than the original): a 6300 px original's own
        # width is no variant anyone links to, and rendering it cost seconds of CPU and a gigabyte.
        if original is None or not original.width or not original.height or int(width) not in {
                w for w, _ in pictures.ladder(self.policy.widths, original.width, original.height)}:
            return None
        data = await self.storage.get(original.storage_key)
        if data is None:
            return None
        rendered = await self.renderer.render(data, widths=(int(width),), formats=(fmt,),
                                              max_pixels=self.policy.max_pixels)
        made = rendered.variants[0]
        key = variant_key(original.storage_key, made.variant)
        await self.storage.put(key, made.data, made.content_type)
        async with self.database.transaction() as session:
            await file_store.record(session, [{
                "source_id": original.source_id, "ig_media_id": original.ig_media_id, "role": FileRole.VARIANT,
                "variant": made.variant, "sha256": sha256, "storage_key": key, "content_type": made.content_type,
                "bytes": len(made.data), "width": made.width, "height": made.height, "created_at": now,
                "served_at": now, "storage": self.storage.description}])
        return made.data, made.content_type


def _retired(claim: MirrorClaim) -> bool:
    """The source's account was disconnected or revoked: its files are only kept until ``retention`` passes."""
    return claim.status in (AccountStatus.DISCONNECTED, AccountStatus.REVOKED)


class ChangedSettingsWatch:
    """A worker's side task, once at its start: posts a setting refused (the CDN hosts, a size cap) are tried again
    as soon as a worker runs with other settings, with no manual step (``Mirror.due_for_changed_settings``)."""

    name = "mirror settings watch"

    def __init__(self, mirror: Mirror, *, retry_every: float = 5.0) -> None:
        self.mirror = mirror
        self.retry_every = retry_every

    async def __call__(self) -> None:
        while True:
            try:
                made_due = await self.mirror.due_for_changed_settings()
            except Exception as exc:  # an outage: the worker says so already; try again
                if not is_unavailable(exc):
                    raise
                await asyncio.sleep(self.retry_every)
                continue
            if made_due:
                log.info("%d source(s) have posts a setting refused before it changed: mirrored again", made_due)
            return
