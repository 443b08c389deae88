"""Syncing one account's profile and media into the database, incrementally: the ``account`` source kind.

An unchanged account costs one Graph call: ``/me`` with the newest page of media expanded inline, asking only for
what tells a change (:data:`ROUTINE_FIELDS`: a fifth of the full answer, for Instagram to build and for us to read).
When that page differs from the one stored last time, posts already stored are updated from it directly (new like
counts, an edited caption: still one call); a post not stored yet needs every field, so the newest page is read again
in full (children included, so carousels need no call per child) and walked: paging goes on only while every post on
a page is new, and stops at the first post already known and unchanged. Once a day (``full_interval``) a full pass
walks every page in full to mark posts deleted on Instagram and pick up edits further down; a post it did not see is
marked deleted only when the listing was whole and agrees with the profile's count, and then few at a time, else
only once Instagram says so when asked by id (:class:`~filmroll.service.policy.SyncPolicy`). A listing that shows no
posts while the profile counts some is refused outright, so a feed never goes blank on it. The rate-limit headers
stretch the next sync of a busy account before Instagram throttles it.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from filmroll import errors
from filmroll.platform import AccountReader, Clients, Media, MediaPage, Profile, ProviderClient
from filmroll.platform.instagram_login import MEDIA_FIELDS
from filmroll.secret import Secret
from filmroll.service import posts
from filmroll.service.policy import Backoff, SyncPolicy
from filmroll.service.transitions import transition
from filmroll.store import events, sources
from filmroll.store import feeds as feed_store
from filmroll.store import files as file_store
from filmroll.store import media as media_store
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database, is_damaged, is_unavailable
from filmroll.store.sources import SyncClaim
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, FailureKind, Outcome, SourceKind

log = logging.getLogger("filmroll.sync")
PROFILE_COLUMNS = sources.PROFILE_COLUMNS
HISTORY_COLUMNS = ("followers_count", "follows_count", "media_count")  # kept a row a day (insight_snapshots)
HISTORY_EVERY = timedelta(hours=1)


# The fields a routine sync asks for: what :func:`posts.fingerprint` and :func:`posts.changed` look at.
ROUTINE_FIELDS = ("id", *posts.COMPARED)
# A failing account is retried within two of its intervals (and within the backoff's hour): during a long outage it
# waits one to two intervals between attempts, so it costs fewer calls than a healthy account (two thirds, on
# average), and its feed is current again soon after Instagram is.
RETRY_WITHIN_INTERVALS = 2
ACCOUNT_METRICS = ("reach", "accounts_engaged", "total_interactions", "likes", "comments", "views")
MEDIA_METRICS = {"FEED": ("reach", "likes", "comments", "saved", "shares", "views"),
                 "REELS": ("reach", "likes", "comments", "saved", "shares", "views")}


def _refuse_an_empty_listing(listed: bool, profile: Profile) -> None:
    """Instagram counts posts and lists none: an answer not to trust (a feed must not go blank on it)."""
    if not listed and (profile.media_count or 0) > 0:
        raise errors.MalformedResponseError(f"Instagram counts {profile.media_count} posts for this account but "
                                            "listed none; nothing was changed, and the sync is retried")


class Syncer:
    def __init__(self, database: Database, vault: Vault, clients: Clients | ProviderClient, *, owner: str,
                 policy: SyncPolicy | None = None, backoff: Backoff | None = None,
                 rng: random.Random | None = None, batch: WriteBatch | None = None) -> None:
        self.database = database
        self.batch = batch  # shares commits with other jobs' bookkeeping (see store/batch.py)
        self.vault = vault
        self.clients = Clients.of(clients)
        self.owner = owner
        self.policy = policy or SyncPolicy()
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        # The profile counts each account last had recorded in its daily history, by this process: (day, counts,
        # when). A routine sync that changes none of them writes no history row.
        self._recorded: dict[int, tuple[str, tuple[int | None, ...], datetime]] = {}

    async def run(self, claim: SyncClaim, *, full: bool = False) -> Outcome:
        """Sync one claimed account; ``full`` asks for the full pass now, whenever the last one was. A failure of
        any kind is the account's (its sync_error, an event, backoff), not a silent crash left to the worker's log;
        a database outage is the worker's to wait out."""
        try:
            return await self._run(claim, full=full)
        except Exception as exc:
            if is_unavailable(exc) or is_damaged(exc):
                raise
            log.exception("the sync of %s failed unexpectedly", claim.label)
            failure = errors.FilmrollError(f"the sync failed unexpectedly ({type(exc).__name__}); the worker's log "
                                           "says where")
            cap = RETRY_WITHIN_INTERVALS * self._interval(claim)
            return await self._later(claim, self.backoff.delay(claim.sync_failures, self.rng, cap=cap), failure,
                                     FailureKind.TEMPORARY)

    async def _run(self, claim: SyncClaim, *, full: bool) -> Outcome:
        started = self.database.clock.now()
        full = full or claim.full_synced_at is None or started - claim.full_synced_at >= self.policy.full_interval
        try:
            token = self._token(claim)
            profile, page = await self._client(claim).profile_and_media(
                token, limit=self.policy.page_size, media_fields=MEDIA_FIELDS if full else ROUTINE_FIELDS)
            newest = posts.fingerprint(page)
            gone: list[str] = []
            written = 0  # the very page stored last time: no read, no write
            if full:
                seen, written, whole = await self._walk(claim, token, page, True, started)
                _refuse_an_empty_listing(bool(seen), profile)
                gone = await self._gone(claim, token, seen, whole, profile)
            else:
                _refuse_an_empty_listing(bool(page.items) or page.next_url is not None, profile)
                if newest != claim.media_fingerprint:
                    written, newest = await self._catch_up(claim, token, page, started, newest)
            insights_taken = await self._insights(claim, token, page, started)
        except errors.TokenInvalidError as exc:
            return await self._needs_reauth(claim, exc.reason)
        except errors.VaultError as exc:
            return await self._needs_reauth(claim, f"the stored token cannot be decrypted ({exc.message})")
        except errors.RateLimitedError as exc:
            return await self._later(claim, timedelta(seconds=exc.retry_after), exc, FailureKind.THROTTLED)
        except errors.InstagramError as exc:
            cap = RETRY_WITHIN_INTERVALS * self._interval(claim)
            return await self._later(claim, self.backoff.delay(claim.sync_failures, self.rng, cap=cap), exc,
                                     FailureKind.TEMPORARY)
        try:
            return await self._finish(claim, profile, gone if full else None, written, started, insights_taken,
                                      newest)
        except _StaleLease:
            log.warning("stale_lease: the sync of %s was taken over; its bookkeeping was not written", claim.label)
            return Outcome.STALE_LEASE

    async def _catch_up(self, claim: SyncClaim, token, page: MediaPage,  # type: ignore[no-untyped-def]
                        now: datetime, newest: str) -> tuple[int, str]:
        """The narrow newest page changed: update the stored posts from it, or, if it holds a post we do not have
        (or had marked deleted), read the page again in full and walk. Returns rows written and the fingerprint of
        the page now stored."""
        async with self.database.read() as session:
            stored = await media_store.known(session, claim.source_id, [m.id for m in page.items], posts.COMPARED)
        if any(stored.get(m.id) is None or stored[m.id]["deleted_at"] is not None for m in page.items):
            page = await self._client(claim).media_page(token, limit=self.policy.page_size)
            _, written, _ = await self._walk(claim, token, page, False, now)
            return written, posts.fingerprint(page)
        edited = [m for m in page.items if posts.changed(stored[m.id], m)]
        if edited:
            async with self.database.transaction() as session:
                await media_store.update_columns(session, claim.source_id, [posts.compared(m) for m in edited], now)
        return len(edited), newest

    async def _walk(self, claim: SyncClaim, token, page: MediaPage, full: bool,  # type: ignore[no-untyped-def]
                    now: datetime) -> tuple[set[str], int, bool]:
        """Store new and changed posts page by page; returns every id seen, how many rows were written, and whether
        the listing was read to its end (a page without ``next``)."""
        seen: set[str] = set()
        written = 0
        for _ in range(self.policy.max_pages):
            items = [m for m in page.items if m.id not in seen]
            seen.update(m.id for m in items)
            async with self.database.read() as session:
                stored = await media_store.known(session, claim.source_id, [m.id for m in items], posts.COMPARED)
            fresh: list[Media] = [m for m in items if posts.changed(stored.get(m.id), m)]
            # This page was read in full: the posts already stored get Instagram's newly signed URLs too.
            resigned = [posts.urls(m) for m in items if m.id in stored and m not in fresh and m.media_url]
            if fresh or resigned:
                async with self.database.transaction() as session:
                    written += await media_store.upsert(session, claim.source_id, [posts.row(m) for m in fresh],
                                                        now)
                    retried = await media_store.update_urls(session, claim.source_id, resigned)
                    if fresh or retried:
                        await file_store.mirror_due(session, claim.source_id, now)
            reached_known = any(m.id in stored and not posts.changed(stored[m.id], m) for m in items)
            if not page.next_url:
                return seen, written, True
            if reached_known and not full:
                break
            page = await self._client(claim).media_page(token, next_url=page.next_url)
        return seen, written, False

    async def _gone(self, claim: SyncClaim, token, seen: set[str], whole: bool,  # type: ignore[no-untyped-def]
                    profile: Profile) -> list[str]:
        """The stored posts a full pass did not see that are gone from Instagram (see :class:`SyncPolicy`): an empty
        or short listing is not a reason to delete anything."""
        async with self.database.read() as session:
            live = await media_store.live_ids(session, claim.source_id)
        missing = [i for i in live if i not in seen]
        if not missing:
            return []
        counted = profile.media_count
        agrees = counted is not None and abs(len(seen) - counted) <= self.policy.count_lag
        if whole and agrees and len(missing) <= max(3, self.policy.unconfirmed_share * len(live)):
            return missing
        gone = []
        for media_id in missing[: self.policy.confirm_limit]:
            try:
                await self._client(claim).media_item(token, media_id, fields=("id",))
            except errors.NotFoundError:
                gone.append(media_id)
        if len(missing) > len(gone):
            log.info("%s: %d stored post(s) were not listed by Instagram; %d confirmed gone by id, the rest kept",
                     claim.label, len(missing), len(gone))
        return gone

    async def _insights(self, claim: SyncClaim, token, page: MediaPage,  # type: ignore[no-untyped-def]
                        now: datetime) -> bool:
        """Snapshot account and newest-post insights at most daily, when the token may read them."""
        if self._client(claim).insights_permission not in claim.permissions.split(","):
            return False
        if claim.insights_at is not None and now - claim.insights_at < self.policy.insights_interval:
            return False
        day = now.strftime("%Y-%m-%d")
        rows: list[dict[str, object]] = []
        try:
            for insight in await self._client(claim).account_insights(token, ACCOUNT_METRICS):
                if insight.value is not None:
                    rows.append({"ig_media_id": "", "metric": insight.name, "period": "day", "day": day,
                                 "value": insight.value, "taken_at": now})
        except errors.PermissionMissingError:
            return False
        for item in page.items[: self.policy.insights_media]:
            metrics = MEDIA_METRICS.get(item.media_product_type or "FEED")
            if metrics is None:
                continue
            try:
                found = await self._client(claim).media_insights(token, item.id, metrics)
            except (errors.PermissionMissingError, errors.RequestError):
                continue  # e.g. posted before the business conversion (10/2108006): no insights for that post
            rows.extend({"ig_media_id": item.id, "metric": i.name, "period": "lifetime", "day": day,
                         "value": i.value, "taken_at": now} for i in found if i.value is not None)
        async with self.database.transaction() as session:
            await media_store.record_insights(session, _account_of(claim), rows)
        return True

    async def _finish(self, claim: SyncClaim, profile: Profile, full_gone: list[str] | None, written: int,
                      started: datetime, insights_taken: bool, newest: str) -> Outcome:
        usage = profile.usage.busiest
        interval = self._interval(claim)
        if usage > self.policy.slow_down_above:
            # Stretch up to 4x as the budget fills, so the account is never the one Instagram throttles.
            interval *= 1 + 3 * (usage - self.policy.slow_down_above) / (100 - self.policy.slow_down_above)
        next_sync_at = started + interval
        history = self._history(_account_of(claim), profile, started)
        if full_gone is None and self.batch is not None and claim.stale_since is None and not history:
            # Only bookkeeping (one fenced UPDATE) is left: share a commit with the other jobs finishing now.
            write = sources.synced_routinely(
                owner=self.owner, source_id=claim.source_id, account_id=_account_of(claim), started=started,
                next_sync_at=next_sync_at, usage_percent=usage, media_fingerprint=newest,
                insights_at=started if insights_taken else None,
                profile={c: getattr(profile, c) for c in PROFILE_COLUMNS})
            if not await self.batch.run(write):
                raise _StaleLease
            return Outcome.SYNCED
        values: dict[str, object] = {
            "last_synced_at": started, "next_sync_at": next_sync_at, "stale_since": None,
            "sync_failures": 0, "sync_error": None, "usage_percent": usage, "media_fingerprint": newest,
        }
        fresh = {"updated_at": started,
                 **{c: getattr(profile, c) for c in PROFILE_COLUMNS if getattr(profile, c) is not None}}
        if insights_taken:
            values["insights_at"] = started
        deleted = 0
        async with self.database.transaction() as session:
            if full_gone is not None:
                deleted = await media_store.mark_deleted(session, claim.source_id, full_gone, started)
                values["full_synced_at"] = started
            if not await sources.synced(session, owner=self.owner, source_id=claim.source_id, values=values,
                                        profile=fresh, account_id=claim.account_id):
                raise _StaleLease
            await media_store.record_insights(session, _account_of(claim), history)
            if claim.stale_since is not None:
                await feed_store.touch(session, [claim.source_id], started)  # fresh again
                await events.record(session, "sync.recovered",
                                    f"syncing works again (it had failed since {claim.stale_since:%Y-%m-%d %H:%M} "
                                    "UTC)", at=started, account_id=claim.account_id, actor=self.owner)
        if history:
            self._recorded[_account_of(claim)] = (started.strftime("%Y-%m-%d"),
                                                  tuple(getattr(profile, c) for c in HISTORY_COLUMNS), started)
        log.debug("%s synced: %s written, %s deleted", claim.label, written, deleted)
        return Outcome.SYNCED_FULL if full_gone is not None else Outcome.SYNCED

    def _history(self, account_id: int, profile: Profile, now: datetime) -> list[dict[str, object]]:
        """The day's row of the account's profile counts (followers, follows, posts), when it is due: the first
        sync of a day, or counts that changed at least HISTORY_EVERY after the last write (the day's row ends up
        holding the day's last counts, within that time). Instagram keeps 30 days of follower history; these rows
        are kept for good."""
        counts = tuple(getattr(profile, c) for c in HISTORY_COLUMNS)
        if all(c is None for c in counts):
            return []
        day = now.strftime("%Y-%m-%d")
        last = self._recorded.get(account_id)
        if last is not None and last[0] == day and (last[1] == counts or now - last[2] < HISTORY_EVERY):
            return []
        return [{"ig_media_id": "", "metric": name, "period": "day", "day": day, "value": value, "taken_at": now}
                for name, value in zip(HISTORY_COLUMNS, counts, strict=True) if value is not None]

    def _token(self, claim: SyncClaim) -> Secret:
        if claim.ciphertext is None or claim.key_id is None:
            raise errors.TokenInvalidError("no token is stored for this account")
        return self.vault.open(claim.ciphertext, claim.key_id, _account_of(claim))

    def _client(self, claim: SyncClaim) -> AccountReader:
        return self.clients.reader(claim.provider or "", claim.ig_user_id or "")

    def _interval(self, claim: SyncClaim) -> timedelta:
        minutes = claim.sync_interval_minutes
        return timedelta(minutes=minutes) if minutes else self.policy.interval

    async def _later(self, claim: SyncClaim, wait: timedelta, exc: errors.FilmrollError,
                     failure: FailureKind) -> Outcome:
        return await failed(self.database, claim, owner=self.owner, wait=max(wait, self.backoff.floor), exc=exc,
                            failure=failure)

    async def _needs_reauth(self, claim: SyncClaim, reason: str) -> Outcome:
        return await owner_needed(self.database, claim, owner=self.owner, reason=reason)


async def failed(database: Database, claim: SyncClaim, *, owner: str, wait: timedelta, exc: errors.FilmrollError,
                 failure: FailureKind) -> Outcome:
    """A source's sync failed (every kind's): say why, retry after ``wait``, and, as it starts failing, tell its
    feeds since when their posts are stale and leave an event."""
    now = database.clock.now()
    error = f"{type(exc).__name__}: {exc.message}"[:500]
    values: dict[str, object] = {"next_sync_at": now + wait, "sync_error": error, "sync_failure_kind": failure}
    counted = failure is FailureKind.TEMPORARY  # being throttled is no failure of ours
    if counted:
        values["sync_failures"] = claim.sync_failures + 1
    starts_failing = claim.stale_since is None  # only our lease writes it, so the claim's value is current
    if starts_failing:
        values["stale_since"] = now  # feeds keep serving the last good copy, saying since when
    async with database.transaction() as session:
        if await sources.synced(session, owner=owner, source_id=claim.source_id, values=values) and starts_failing:
            await feed_store.touch(session, [claim.source_id], now)  # the feeds say since when they are stale
            what = "" if claim.kind == SourceKind.ACCOUNT else f"{claim.label}: "
            await events.record(session, "sync.failing", f"{what}syncing failed, retrying; the stored posts are "
                                f"kept as they are ({error})", at=now, account_id=claim.account_id, actor=owner)
    return Outcome.SYNC_RETRY if counted else Outcome.SYNC_THROTTLED


async def owner_needed(database: Database, claim: SyncClaim, *, owner: str, reason: str) -> Outcome:
    """The account a source belongs to or reads through must be signed in again: its status says why."""
    now = database.clock.now()
    async with database.transaction() as session:
        if not await sources.synced(session, owner=owner, source_id=claim.source_id,
                                   values={"stale_since": claim.stale_since or now}):
            return Outcome.STALE_LEASE
        await transition(session, _account_of(claim), AccountStatus.NEEDS_REAUTH, reason=reason, now=now,
                         actor=owner)
    return Outcome.NEEDS_REAUTH


def _account_of(claim: SyncClaim) -> int:
    if claim.account_id is None:  # an account source always has its account: the claim says whose it is
        raise errors.FilmrollError(f"{claim.label} names no account to sync through")
    return claim.account_id


class _StaleLease(Exception):
    """Our sync lease was taken over: nothing about the account is written."""
