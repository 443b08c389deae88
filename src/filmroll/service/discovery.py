"""Profile sources: the ``profile`` source kind, another professional account's profile and posts read through
Business Discovery (hashtag reference §3) by a Facebook Login account.

Each sync reads the profile and its newest page in one call; when that page changed (its fingerprint), pages follow
with ``media.after(cursor)`` while they bring posts not stored yet. Once a day (``full_interval``) every page is read
to the end, and posts the account no longer lists are marked deleted, but only when the listing was whole and
agrees with the profile's count (as for an account's own posts). Every post carries the account's ``username``: here
the author is known. A personal or unknown username is ``(#110)``: the source waits a day and says why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from filmroll import errors
from filmroll.platform import Clients, FacebookLoginClient, MediaPage, Profile
from filmroll.secret import Secret
from filmroll.service import posts
from filmroll.service.public_sync import MAX_PAGES, Polled, PublicSync
from filmroll.store import media as media_store
from filmroll.store.database import Database
from filmroll.store.sources import SyncClaim
from filmroll.vault import Vault

PAGE_SIZE = 50
PROFILE_KEYS = ("username", "name", "profile_picture_url", "followers_count", "follows_count", "media_count")


def profile_json(profile: Profile) -> dict[str, object]:
    return {key: getattr(profile, key) for key in PROFILE_KEYS}


class ProfileSyncer(PublicSync):
    """The ``profile`` kind: synced on the deployment's interval; a full walk daily."""

    def __init__(self, database: Database, vault: Vault, clients: Clients, *, owner: str,
                 interval: timedelta = timedelta(minutes=10), full_interval: timedelta = timedelta(days=1),
                 **kwargs: Any) -> None:
        super().__init__(database, vault, clients, owner=owner, **kwargs)
        self.interval = interval
        self.full_interval = full_interval

    async def poll(self, claim: SyncClaim, client: FacebookLoginClient, token: Secret, now: datetime) -> Polled:
        if not claim.ig_user_id:
            raise errors.ConfigError(f"{claim.label} names no account to discover through")
        profile, page = await client.discover(token, user_id=claim.ig_user_id, username=claim.query,
                                              limit=PAGE_SIZE)
        full = claim.full_synced_at is None or now - claim.full_synced_at >= self.full_interval
        newest = posts.fingerprint(page)
        values: dict[str, object] = {"media_fingerprint": newest, "profile": profile_json(profile)}
        written = 0
        if full or newest != claim.media_fingerprint:
            seen, written, whole = await self._walk(claim, client, token, profile, page, now, full)
            if full:
                written += await self._gone(claim, seen, whole, profile, now)
                values["full_synced_at"] = now
        interval = timedelta(minutes=claim.sync_interval_minutes) if claim.sync_interval_minutes else self.interval
        return Polled(written, values, now + interval)

    async def _walk(self, claim: SyncClaim, client: FacebookLoginClient, token: Secret, profile: Profile,
                    page: MediaPage, now: datetime, full: bool) -> tuple[set[str], int, bool]:
        seen: set[str] = set()
        written = 0
        for _ in range(MAX_PAGES * 5):  # 250 pages of 50: the 10 000 posts Instagram lists at most, and more
            seen.update(m.id for m in page.items)
            new, rows = await self.store_page(claim, page, now, username=profile.username)
            written += rows
            if not page.after or not page.items:
                return seen, written, True
            if not full and not new:
                return seen, written, False
            _, page = await client.discover(token, user_id=claim.ig_user_id or "", username=claim.query,
                                            limit=PAGE_SIZE, after=page.after)
        return seen, written, False

    async def _gone(self, claim: SyncClaim, seen: set[str], whole: bool, profile: Profile, now: datetime) -> int:
        """Posts no longer listed, marked deleted when the whole listing agrees with the profile's count."""
        if not whole or profile.media_count is None or abs(len(seen) - profile.media_count) > 2:
            return 0
        async with self.database.read() as session:
            live = await media_store.live_ids(session, claim.source_id)
        missing = [i for i in live if i not in seen]
        if not missing:
            return 0
        async with self.database.transaction() as session:
            return await media_store.mark_deleted(session, claim.source_id, missing, now)
