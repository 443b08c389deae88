"""What the syncs of other people's posts share (hashtag and profile sources, read through a Facebook Login account):
the token of the account they read through, the provider's client, storing a page of posts as an archive (new posts
added and sent to the mirror at once, known ones updated, none ever removed because the API stopped returning it),
and the bookkeeping of an outcome: success, a wait (throttled, the hashtag quota), a failure with backoff, or the
account's owner needed back.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from filmroll import errors
from filmroll.platform import Clients, FacebookLoginClient, Media, MediaPage
from filmroll.secret import Secret
from filmroll.service import posts
from filmroll.service.policy import Backoff
from filmroll.service.sync import failed, owner_needed
from filmroll.store import feeds as feed_store
from filmroll.store import files as file_store
from filmroll.store import media as media_store
from filmroll.store import sources
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database, is_damaged, is_unavailable
from filmroll.store.sources import SyncClaim
from filmroll.vault import Vault
from filmroll.vocabulary import FailureKind, Outcome, Provider

log = logging.getLogger("filmroll.sync")
MAX_PAGES = 40


@dataclass(frozen=True)
class Polled:
    """What one poll did: rows written, and the source columns to record with its success."""

    written: int
    values: dict[str, Any]
    next_sync_at: datetime


class PublicSync:
    """A source of other people's posts, synced through a Facebook Login account (``claim.account_id``)."""

    kind_label = "source"

    def __init__(self, database: Database, vault: Vault, clients: Clients, *, owner: str,
                 backoff: Backoff | None = None, rng: random.Random | None = None,
                 batch: WriteBatch | None = None) -> None:
        self.database = database
        self.batch = batch  # a poll that found nothing new shares a commit with other jobs' bookkeeping
        self.vault = vault
        self.clients = clients
        self.owner = owner
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()

    async def run(self, claim: SyncClaim, *, full: bool = False) -> Outcome:
        try:
            return await self._run(claim, full=full)
        except Exception as exc:
            if is_unavailable(exc) or is_damaged(exc):
                raise
            log.exception("the sync of %s failed unexpectedly", claim.label)
            failure = errors.FilmrollError(f"the sync failed unexpectedly ({type(exc).__name__}); the worker's log "
                                           "says where")
            return await self._later(claim, self.backoff.delay(claim.sync_failures, self.rng), failure,
                                     FailureKind.TEMPORARY)

    async def _run(self, claim: SyncClaim, *, full: bool) -> Outcome:
        now = self.database.clock.now()
        try:
            client, token = self._client(claim), self._token(claim)
            polled = await self.poll(claim, client, token, now)
        except errors.TokenInvalidError as exc:
            return await self._needs_reauth(claim, exc.reason)
        except errors.VaultError as exc:
            return await self._needs_reauth(claim, f"the stored token cannot be decrypted ({exc.message})")
        except errors.HashtagQuotaError as exc:
            wait = (exc.frees_at - now) if exc.frees_at is not None else timedelta(seconds=exc.retry_after)
            return await self._later(claim, max(wait, timedelta(minutes=1)), exc, FailureKind.THROTTLED)
        except errors.RateLimitedError as exc:
            return await self._later(claim, timedelta(seconds=exc.retry_after), exc, FailureKind.THROTTLED)
        except (errors.HashtagRefusedError, errors.ProfileNotFoundError) as exc:  # asked again daily, not sooner
            return await self._later(claim, timedelta(days=1), exc, FailureKind.TEMPORARY)
        except errors.InstagramError as exc:
            return await self._later(claim, self.backoff.delay(claim.sync_failures, self.rng), exc,
                                     FailureKind.TEMPORARY)
        fingerprint = polled.values.get("media_fingerprint")
        if self.batch is not None and not polled.written and claim.stale_since is None \
                and set(polled.values) == {"media_fingerprint"} and isinstance(fingerprint, str):
            write = sources.polled_routinely(owner=self.owner, source_id=claim.source_id, started=now,
                                             next_sync_at=polled.next_sync_at, media_fingerprint=fingerprint)
            if not await self.batch.run(write):
                log.warning("stale_lease: the sync of %s was taken over", claim.label)
                return Outcome.STALE_LEASE
            return Outcome.SYNCED
        values = {"last_synced_at": now, "next_sync_at": polled.next_sync_at, "stale_since": None,
                  "sync_failures": 0, "sync_error": None, "sync_failure_kind": None, **polled.values}
        async with self.database.transaction() as session:
            if not await sources.synced(session, owner=self.owner, source_id=claim.source_id, values=values):
                log.warning("stale_lease: the sync of %s was taken over", claim.label)
                return Outcome.STALE_LEASE
            if claim.stale_since is not None or polled.written:
                await feed_store.touch(session, [claim.source_id], now)
        return Outcome.SYNCED

    async def poll(self, claim: SyncClaim, client: FacebookLoginClient, token: Secret, now: datetime) -> Polled:
        raise NotImplementedError

    # ----- storing ------------------------------------------------------------------------------------------------

    async def store_page(self, claim: SyncClaim, page: MediaPage, now: datetime,
                         username: str | None = None) -> tuple[int, int]:
        """Keep every post of the page: new ones stored (and their pictures mirrored next, before their URLs die),
        known ones updated when their counts or caption moved. Returns (new posts, rows written)."""
        items: list[Media] = list(page.items)
        async with self.database.read() as session:
            stored = await media_store.known(session, claim.source_id, [m.id for m in items], posts.COMPARED)
        new = [m for m in items if m.id not in stored]
        edited = [m for m in items if m.id in stored and posts.changed(stored[m.id], m)]
        if not new and not edited:
            return 0, 0
        async with self.database.transaction() as session:
            written = await media_store.upsert(session, claim.source_id,
                                               [{**posts.row(m), "username": username} for m in [*new, *edited]], now)
            if new:
                await file_store.mirror_due(session, claim.source_id, now)
        return len(new), written

    # ----- the claim's account ------------------------------------------------------------------------------------

    def _client(self, claim: SyncClaim) -> FacebookLoginClient:
        if claim.provider != Provider.FACEBOOK:
            raise errors.ConfigError(f"{claim.label} reads through an account connected with Instagram Login; "
                                     "hashtags and other profiles need one connected with Facebook Login")
        client = self.clients[Provider.FACEBOOK]
        if not isinstance(client, FacebookLoginClient):
            raise errors.ConfigError("no Facebook Login client is configured (FILMROLL_FACEBOOK__APP_ID)")
        return client

    def _token(self, claim: SyncClaim) -> Secret:
        if claim.ciphertext is None or claim.key_id is None or claim.account_id is None:
            raise errors.TokenInvalidError("no token is stored for the account this source reads through")
        return self.vault.open(claim.ciphertext, claim.key_id, claim.account_id)

    # ----- outcomes -----------------------------------------------------------------------------------------------

    async def _later(self, claim: SyncClaim, wait: timedelta, exc: errors.FilmrollError,
                     failure: FailureKind) -> Outcome:
        return await failed(self.database, claim, owner=self.owner, wait=max(wait, self.backoff.floor), exc=exc,
                            failure=failure)

    async def _needs_reauth(self, claim: SyncClaim, reason: str) -> Outcome:
        return await owner_needed(self.database, claim, owner=self.owner, reason=reason)
