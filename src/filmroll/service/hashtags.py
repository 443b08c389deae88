"""Hashtag sources: the ``hashtag`` source kind, and the quota keeper every hashtag call goes through.

Instagram shows a tag's recent posts for 24 hours only, 50 a page, without their authors, and lets an IG account
query 30 unique tags in a rolling 7 days (hashtag reference §2). So:

- the tag's id is searched once and kept for good (``store/hashtags.py``), also after its source is removed;
- every call on a tag is counted by the keeper first (:func:`reserve`): a 31st tag within 7 days is refused before
  any call, with the date a slot frees; a tag counted already costs nothing;
- ``recent_media`` is polled every ``recent_poll`` (15 minutes by default, far inside the 24 hours): first its
  newest page without URLs (:data:`ROUTINE_FIELDS`), and only when that changed (its fingerprint), in full, walked
  while its pages bring posts not stored yet; an unchanged tag costs one call and nothing more;
  ``top_media`` is read once a day;
- every post seen is stored and sent to the mirror at once (its CDN URLs die with the window), and stays after the
  API stops returning it: the feed is an archive, not a 24-hour view. No author is ever invented (``username`` NULL).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from filmroll import errors
from filmroll.platform import Clients, FacebookLoginClient, MediaPage
from filmroll.secret import Secret
from filmroll.service import posts
from filmroll.service.public_sync import MAX_PAGES, Polled, PublicSync
from filmroll.store import hashtags as hashtag_store
from filmroll.store.database import Database
from filmroll.store.sources import SyncClaim
from filmroll.vault import Vault

TOP_EVERY = timedelta(days=1)
# What posts.fingerprint compares, as the hashtag edges give it (no alt_text or product type there).
ROUTINE_FIELDS = ("id", "caption", "like_count", "comments_count", "media_type", "permalink")
MAX_NAME = 100


def normalize(name: str) -> str:
    """A tag as Instagram searches it: without ``#``, lower case; refused (InputError) unless Instagram could find
    it: empty, longer than 100 characters, with spaces or punctuation, or only digits."""
    tag = name.strip().removeprefix("#").strip().casefold()
    if not tag:
        raise errors.InputError("the hashtag is empty; give a tag such as bread or #bread")
    if len(tag) > MAX_NAME:
        raise errors.InputError(f"the hashtag is {len(tag)} characters long; Instagram's are at most {MAX_NAME}")
    if not all(c.isalnum() or c == "_" for c in tag):
        raise errors.InputError(f"{name.strip()[:60]!r} is not a hashtag: only letters, digits and _ (no spaces, no "
                                "punctuation, no emoji)")
    if tag.isdigit():
        raise errors.InputError(f"{tag[:60]!r} is not a hashtag: a tag needs at least one letter")
    return tag


async def reserve(database: Database, account_id: int, name: str, username: str | None = None) -> datetime:
    """Count a call on ``name`` for the account, or refuse it (HashtagQuotaError, with the date a slot frees) before
    anything is sent. Returns until when the tag stays counted (calls on it meanwhile are free)."""
    now = database.clock.now()
    async with database.transaction() as session:
        allowed, until = await hashtag_store.count(session, account_id, name, now)
    if not allowed:
        frees_at = until
        raise errors.HashtagQuotaError(
            f"@{username or account_id} has queried {hashtag_store.LIMIT} unique hashtags in the last 7 days, "
            f"Instagram's limit; #{name} can be searched from {frees_at:%Y-%m-%d %H:%M} UTC (or through another "
            "Facebook Login account). Nothing was sent to Instagram.", frees_at=frees_at,
            retry_after=max(60.0, (frees_at - now).total_seconds()))
    return until


async def lookup(database: Database, client: FacebookLoginClient, token: Secret, *, account_id: int, ig_user_id: str,
                 name: str, username: str | None = None) -> str:
    """The tag's id: kept from an earlier search (free), else searched (counted by the keeper first) and kept."""
    async with database.read() as session:
        known = await hashtag_store.cached_id(session, name)
    if known is not None:
        return known
    await reserve(database, account_id, name, username)
    found = await client.hashtag_id(token, ig_user_id, name)
    if found is None:
        raise errors.HashtagRefusedError(f"Instagram finds no hashtag #{name}")
    async with database.transaction() as session:
        await hashtag_store.keep_id(session, name, found, database.clock.now())
    return found


async def reconcile(database: Database, client: FacebookLoginClient, token: Secret, *, account_id: int,
                    ig_user_id: str) -> int:
    """Count the tags Instagram says the account queried this week that the ledger lacks (only kept ids can be
    named; an unknown id still holds a slot on Instagram's side, so it is counted under its id)."""
    ids = await client.recently_searched_hashtags(token, ig_user_id)
    async with database.transaction() as session:
        names = await hashtag_store.names_of(session, ids)
        return await hashtag_store.reconcile(session, account_id, [names.get(i, f"id:{i}") for i in ids],
                                             database.clock.now())


class HashtagSyncer(PublicSync):
    """The ``hashtag`` kind: a tag's recent posts every ``recent_poll``, its top posts daily, kept for good."""

    def __init__(self, database: Database, vault: Vault, clients: Clients, *, owner: str,
                 recent_poll: timedelta = timedelta(minutes=15), **kwargs: Any) -> None:
        super().__init__(database, vault, clients, owner=owner, **kwargs)
        self.recent_poll = recent_poll
        # Kept in memory too, so an unchanged poll reads no row for them: hashtag ids never change, and a tag counted
        # for an account stays counted until its 7 days are over.
        self._ids: dict[str, str] = {}
        self._counted_until: dict[tuple[int, str], datetime] = {}
        self._ledgers_read: set[int] = set()

    async def poll(self, claim: SyncClaim, client: FacebookLoginClient, token: Secret, now: datetime) -> Polled:
        if claim.account_id is None or not claim.ig_user_id:
            raise errors.ConfigError(f"{claim.label} names no account to search through")
        name = claim.query
        if not self._ids:  # after a start: every kept id in one read
            async with self.database.read() as session:
                self._ids.update(await hashtag_store.kept_ids(session))
        hashtag_id = self._ids.get(name)
        if hashtag_id is None:
            hashtag_id = self._ids[name] = await lookup(self.database, client, token, account_id=claim.account_id,
                                                        ig_user_id=claim.ig_user_id, name=name,
                                                        username=claim.username)
        key = (claim.account_id, name)
        if key not in self._counted_until and claim.account_id not in self._ledgers_read:
            # After a start: the account's whole ledger in one read, not one locked write per tag.
            self._ledgers_read.add(claim.account_id)
            async with self.database.read() as session:
                for counted in await hashtag_store.counted(session, claim.account_id, now):
                    self._counted_until[(claim.account_id, counted.name)] = counted.frees_at
        if key not in self._counted_until or now >= self._counted_until[key]:
            # Each week's first call on the tag counts anew: the keeper first.
            self._counted_until[key] = await reserve(self.database, claim.account_id, name, claim.username)
        # What tells a change first (as an account's routine sync does): a page without URLs or children, a fifth
        # of the full one; only a changed page is read again in full, and walked.
        narrow = await client.hashtag_media(token, hashtag_id=hashtag_id, user_id=claim.ig_user_id,
                                            fields=ROUTINE_FIELDS)
        newest = posts.fingerprint(narrow)
        written = 0
        if newest != claim.media_fingerprint:
            page = await client.hashtag_media(token, hashtag_id=hashtag_id, user_id=claim.ig_user_id)
            newest = posts.fingerprint(page)
            written += await self._walk(claim, client, token, page, now)
        values: dict[str, object] = {"media_fingerprint": newest}
        if claim.top_synced_at is None or now - claim.top_synced_at >= TOP_EVERY:
            top = await client.hashtag_media(token, hashtag_id=hashtag_id, user_id=claim.ig_user_id,
                                             edge="top_media")
            written += (await self.store_page(claim, top, now))[1]
            values["top_synced_at"] = now
        return Polled(written, values, now + self.recent_poll)

    async def _walk(self, claim: SyncClaim, client: FacebookLoginClient, token: Secret, page: MediaPage,
                    now: datetime) -> int:
        """Store page after page while they bring new posts (the edge is not strictly newest first, so a page
        of known posts ends the walk, not the first known post)."""
        written = 0
        for _ in range(MAX_PAGES):
            new, rows = await self.store_page(claim, page, now)
            written += rows
            if not page.next_url or (not new and page.items):
                break
            page = await client.hashtag_media(token, hashtag_id="", user_id="", next_url=page.next_url)
        return written
