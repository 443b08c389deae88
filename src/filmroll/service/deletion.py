"""An owner leaves: what Meta's callbacks (and ``filmroll delete``) ask of filmroll.

    revoke(...)             deauthorize: the account becomes ``revoked`` through the one transition, its token is
                            destroyed in the same transaction, syncing stops, the alert webhook fires; idempotent
    request_deletion(...)   a deletion request with a confirmation code (one pending per owner), for the worker
    Deleter                 the worker's ``deletion`` job (which also files a request for every account left
                            disconnected or revoked past FILMROLL_ACCOUNTS__RETENTION_DAYS): the account's stored
                            files (local or S3) and its published pictures (FILMROLL_PUBLISH__DIR) first, then in
                            one transaction its rows (token, posts, children, insights, file rows, feed sources, alerts,
                            links go with the account row), the webhook deliveries that name it, the personal data
                            in its events (each keeps that something happened, not who), and the request marked
                            completed; feeds that showed it render (and republish) without it

Owners are matched by the app-scoped id Meta sends (``store.accounts.by_scoped_id``).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.service.policy import Backoff
from filmroll.service.transitions import transition
from filmroll.storage import Storage
from filmroll.storage.keys import PUBLISHED_MEDIA, account_prefix, source_prefix
from filmroll.store import accounts, alerts, deletions, feed_posts, feeds, sources, tokens, webhooks
from filmroll.store.database import Database
from filmroll.store.deletions import DeletionClaim
from filmroll.store.lease import claim_due
from filmroll.store.tables import Account, DeletionRequest, Event, MediaItem, Source
from filmroll.vocabulary import AccountStatus, Outcome

log = logging.getLogger("filmroll.deletion")
ERASED = "(personal data deleted at the owner's request)"


async def revoke(database: Database, scoped_user_id: str) -> int | None:
    """The owner removed the app: returns the account's id, or None when filmroll holds no account of theirs."""
    now = database.clock.now()
    async with database.transaction() as session:
        account = await accounts.by_scoped_id(session, scoped_user_id)
        if account is None:
            return None
        if account.status == AccountStatus.REVOKED:
            return account.id  # Meta repeats itself: nothing more changes
        await tokens.remove(session, account.id)
        await transition(session, account.id, AccountStatus.REVOKED, now=now, actor="owner (via Meta)",
                         reason="the owner removed filmroll's access in Instagram",
                         message=f"@{account.username} removed the app; token deleted")
        await alerts.raise_alert(session, account_id=account.id, kind=alerts.REVOKED,
                                 reason="the owner removed filmroll's access in Instagram", now=now)
        return account.id


async def request_deletion(database: Database, *, scoped_user_id: str | None = None,
                           account_id: int | None = None) -> DeletionRequest:
    """Record the request (the pending one, if the owner asked already); the worker does the deleting."""
    now = database.clock.now()
    async with database.transaction() as session:
        if account_id is None and scoped_user_id is not None:
            account = await accounts.by_scoped_id(session, scoped_user_id)
            account_id = account.id if account is not None else None
        return await deletions.request(session, scoped_user_id=scoped_user_id, account_id=account_id, now=now)


class Deleter:
    def __init__(self, database: Database, storage: Storage, *, owner: str, retention: timedelta | None = None,
                 published: Storage | None = None, retry: Backoff | None = None,
                 rng: random.Random | None = None) -> None:
        self.database = database
        self.storage = storage
        self.published = published  # where the worker publishes feeds: the account's pictures there go too
        self.owner = owner
        self.retention = retention  # None: disconnected and revoked accounts are kept
        self.retry = retry or Backoff(base=timedelta(minutes=1), cap=timedelta(hours=6))
        self.rng = rng or random.Random()

    async def claim(self, session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                    limit: int) -> list[DeletionClaim]:
        if self.retention is not None:  # accounts left disconnected or revoked past retention: deleted like a request
            await deletions.request_expired(session, before=now - self.retention, now=now)
        return await claim_due(session, deletions.DELETIONS, owner=owner, now=now, lease=lease, limit=limit)

    async def run(self, claim: DeletionClaim) -> Outcome:
        account_id = claim.account_id
        if account_id is None and claim.scoped_user_id is not None:  # asked before filmroll knew the account
            async with self.database.read() as session:
                account = await accounts.by_scoped_id(session, claim.scoped_user_id)
            account_id = account.id if account is not None else None
        if account_id is not None:
            try:
                await self._delete_files(account_id)
            except Exception as exc:  # the storage failed: the rows stay, so nothing is orphaned; try again later
                return await self._later(claim, f"{type(exc).__name__}: the storage did not answer")
        now = self.database.clock.now()
        async with self.database.transaction() as session:
            if account_id is not None:
                await self._delete_rows(session, account_id, now)
            if not await deletions.complete(session, claim.id, owner=self.owner, now=now):
                return Outcome.STALE_LEASE
        await self.database.purge()
        log.info("deletion request %s completed", claim.code)
        return Outcome.DELETED

    async def _delete_files(self, account_id: int) -> None:
        """Every file of the account's sources, and of the account from before sources, stored and published."""
        async with self.database.read() as session:
            prefixes = [account_prefix(account_id),
                        *(source_prefix(s) for s in await sources.ids_of_account(session, account_id))]
        places = [(self.storage, prefix) for prefix in prefixes]
        if self.published is not None:
            places += [(self.published, PUBLISHED_MEDIA + prefix) for prefix in prefixes]
        for storage, prefix in places:
            keys = [item.key async for item in storage.list(prefix)]
            for start in range(0, len(keys), 500):
                await storage.delete(keys[start:start + 500])

    async def _delete_rows(self, session: AsyncSession, account_id: int, now: datetime) -> None:
        # Before the sources go: the feeds that showed it render and publish again (at once, even when a publish
        # failed meanwhile on the pictures this deletion took first).
        await feeds.touch_accounts(session, [account_id], now, retry_publish=True)
        account = await session.get(Account, account_id)
        if account is not None:
            await webhooks.forget_account(session, account.ig_user_id)
        # The feeds' decisions on its posts name them by Instagram's id: they go with the posts.
        posts = await session.execute(select(MediaItem.ig_media_id).join(Source, Source.id == MediaItem.source_id)
                                      .where(Source.account_id == account_id))
        await feed_posts.forget(session, list(posts.scalars()))
        await session.execute(update(Event).where(Event.account_id == account_id)
                              .values(message=ERASED, actor=None).execution_options(synchronize_session=False))
        await session.execute(delete(Account).where(Account.id == account_id))  # its rows cascade with it
        session.add(Event(at=now, kind="account.deleted", message="an account and everything stored of it were "
                          "deleted (a deletion request, or its retention period ended)", account_id=None, actor=None))
        await session.flush()

    async def _later(self, claim: DeletionClaim, error: str) -> Outcome:
        now = self.database.clock.now()
        attempts = claim.attempts + 1
        async with self.database.transaction() as session:
            await deletions.retry_later(session, claim.id, owner=self.owner, attempts=attempts, error=error,
                                        at=now + self.retry.delay(attempts - 1, self.rng))
        log.warning("deletion request %s: %s; retrying", claim.code, error)
        return Outcome.DELETION_RETRY
