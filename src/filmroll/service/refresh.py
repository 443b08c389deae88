"""Refreshing one claimed token, on Instagram's rules, without ever losing it. Every refresh goes through here: the
worker's, and ``filmroll token refresh`` (:func:`filmroll.service.accounts.refresh_now`), under the same token lease.

The order is fixed so a crash at any point leaves a recoverable state:

1. A claim whose crash marker (``refresh_started_at``) is set means a previous attempt died mid-call: probe the
   stored token with ``/me`` first. It works → refresh as usual. It is dead → the refresh happened and its answer
   was lost with the process, so the account needs re-authorisation, said in plain words (never silently lost).
2. Set the crash marker (fenced on lease and version), then call Instagram, outside any transaction.
3. Classify a failure: 190 → ``needs_reauth`` with Instagram's reason and no retry (unless the row moved: then
   another worker won the race and all is well); throttling → wait ``retry_after``; temporary or malformed →
   capped exponential backoff (:class:`~filmroll.service.policy.Backoff`). A malformed answer never replaces the
   stored token.
4. Store what Instagram returned, fenced on lease owner and version, in one durable transaction; then release. If
   the database is unreachable just then, the grant is held in memory and the write retried for a while: the fence
   is the lease owner, so the write still lands after an outage unless another worker took the token over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta

from filmroll import errors
from filmroll.faults import NO_FAULTS, FaultPoints
from filmroll.platform import Clients, LongLivedGrant, ProviderClient
from filmroll.service.policy import MIN_AGE, Backoff, RefreshPolicy
from filmroll.service.transitions import transition
from filmroll.store import events, tokens
from filmroll.store.database import Database, is_unavailable
from filmroll.store.tables import Token
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, FailureKind, Outcome

log = logging.getLogger("filmroll.refresh")

STORE_PATIENCE = 300.0  # seconds a refreshed grant waits in memory for the database to come back
_STORE_RETRY = Backoff(base=timedelta(seconds=1), cap=timedelta(seconds=15), floor=timedelta(0))


class Refresher:
    def __init__(self, database: Database, vault: Vault, clients: Clients | ProviderClient, *, owner: str,
                 policy: RefreshPolicy | None = None, backoff: Backoff | None = None,
                 faults: FaultPoints = NO_FAULTS, rng: random.Random | None = None,
                 store_patience: float = STORE_PATIENCE) -> None:
        self.database = database
        self.vault = vault
        self.clients = Clients.of(clients)
        self.owner = owner
        self.policy = policy or RefreshPolicy()
        self.backoff = backoff or Backoff()
        self.faults = faults
        self.rng = rng or random.Random()
        self.store_patience = store_patience
        self._stores: set[asyncio.Future[bool]] = set()

    async def run(self, claim: tokens.RefreshClaim) -> Outcome:
        """Refresh one claimed token; returns what happened (for logs, stats, the CLI and tests)."""
        try:
            token = self.vault.open(claim.ciphertext, claim.key_id, claim.account_id)
        except errors.VaultError as exc:
            return await self._needs_reauth(claim, f"the stored token cannot be decrypted ({exc.message})")
        if claim.refresh_started_at is not None:
            try:
                await self.clients[claim.provider].check(token, "")
            except errors.TokenInvalidError as exc:
                return await self._needs_reauth(
                    claim, f"a refresh was interrupted by a crash and Instagram no longer accepts the stored token "
                           f"(refresh_lost_in_crash): {exc.reason}")
            except errors.InstagramError as exc:
                return await self._retry(claim, exc)
        async with self.database.transaction() as session:
            if not await tokens.mark_refresh_started(session, owner=self.owner, account_id=claim.account_id,
                                                     version=claim.version, now=self.database.clock.now()):
                return Outcome.STALE_LEASE
        self.faults.hit("before_refresh_call")
        try:
            grant = await self.clients[claim.provider].refresh(token)
        except errors.TokenInvalidError as exc:
            if await self._row_moved(claim):
                return await self._lost_race(claim)
            return await self._needs_reauth(claim, exc.reason)
        except errors.RefreshTooEarlyError as exc:
            if claim.issued_at + MIN_AGE <= self.database.clock.now():
                # Too early for a token we stored over a day ago: Instagram refreshed it since (the same string
                # back, in an answer lost to a crash). When that was is unknown; retrying at the stale time would
                # call again at once, for ever, so back off like any failure until the day has passed.
                log.warning("%s: Instagram says its token was refreshed in the last 24 hours although the "
                            "stored one is older (a refresh whose answer was lost); retrying with backoff", claim.label)
                return await self._retry(claim, exc)
            async with self.database.transaction() as session:
                await tokens.reschedule(session, owner=self.owner, account_id=claim.account_id, version=claim.version,
                                        error=None, failure=None, next_attempt_at=None, count_failure=False,
                                        next_refresh_at=claim.issued_at + MIN_AGE + timedelta(minutes=5))
            return Outcome.TOO_EARLY
        except errors.InstagramError as exc:
            return await self._retry(claim, exc)
        self.faults.hit("after_response_before_commit")
        # The one write that must not be lost: it survives the worker abandoning this job during an outage.
        store = asyncio.ensure_future(self._store_patiently(claim, grant))
        self._stores.add(store)  # a strong reference: a shielded task nobody awaits any more must not be collected
        store.add_done_callback(self._stores.discard)
        stored = await asyncio.shield(store)
        if not stored:
            log.warning("stale_lease: %s was taken over while refreshing; wrote nothing", claim.label)
            return Outcome.STALE_LEASE
        self.faults.hit("after_commit_before_release")
        try:
            async with self.database.transaction() as session:
                await tokens.TOKEN.release(session, [claim.account_id], owner=self.owner)
        except Exception as exc:  # the token is stored: a lease we cannot give back just runs out
            if not is_unavailable(exc):
                raise
        return Outcome.REFRESHED

    async def _store_patiently(self, claim: tokens.RefreshClaim, grant: LongLivedGrant) -> bool:
        deadline = time.monotonic() + self.store_patience
        failures = 0
        while True:
            try:
                return await self._store(claim, grant)
            except Exception as exc:
                if not is_unavailable(exc) or time.monotonic() >= deadline:
                    raise
                if failures == 0:
                    log.warning("the database is unavailable (%s): the refreshed token of %s is held in memory and "
                                "its write retried", type(exc).__name__, claim.label)
                await asyncio.sleep(_STORE_RETRY.delay(failures, self.rng).total_seconds())
                failures += 1

    async def _store(self, claim: tokens.RefreshClaim, grant: LongLivedGrant) -> bool:
        now = self.database.clock.now()
        issued_at = grant.expires_at - timedelta(seconds=grant.expires_in)
        sealed = self.vault.seal(grant.access_token, claim.account_id)
        async with self.database.transaction() as session:
            stored = await tokens.store_refreshed(
                session, owner=self.owner, account_id=claim.account_id, version=claim.version,
                ciphertext=sealed.ciphertext, key_id=sealed.key_id, issued_at=issued_at, expires_at=grant.expires_at,
                refreshed_at=now, next_refresh_at=self.policy.next_refresh_at(issued_at, grant.expires_at, self.rng),
                next_probe_at=self.policy.next_probe_at(now, self.rng))
            if stored:
                after = f" after {claim.refresh_failures} failed attempts" if claim.refresh_failures else ""
                await events.record(session, "token.refreshed",
                                    f"token refreshed{after}, valid until {grant.expires_at:%Y-%m-%d %H:%M} UTC",
                                    at=now, account_id=claim.account_id, actor=self.owner)
        return stored

    async def _row_moved(self, claim: tokens.RefreshClaim) -> bool:
        async with self.database.read() as session:
            row = await session.get(Token, claim.account_id)
        return row is None or row.version != claim.version

    async def _lost_race(self, claim: tokens.RefreshClaim) -> Outcome:
        log.info("%s was refreshed by someone else meanwhile; not a dead token", claim.label)
        async with self.database.transaction() as session:
            await tokens.TOKEN.release(session, [claim.account_id], owner=self.owner)
        return Outcome.LOST_RACE

    async def _needs_reauth(self, claim: tokens.RefreshClaim, reason: str) -> Outcome:
        return await mark_needs_reauth(self.database, owner=self.owner, account_id=claim.account_id,
                                       version=claim.version, reason=reason)

    async def _retry(self, claim: tokens.RefreshClaim, exc: errors.InstagramError) -> Outcome:
        now = self.database.clock.now()
        if isinstance(exc, errors.RateLimitedError):
            wait, outcome, failure = timedelta(seconds=exc.retry_after), Outcome.THROTTLED, FailureKind.THROTTLED
        else:
            wait, outcome, failure = self.backoff.delay(claim.refresh_failures, self.rng), Outcome.RETRY, \
                FailureKind.TEMPORARY
            # Do not back off past the last safe moment to refresh (a day before expiry), nor hammer Instagram:
            # at least the backoff's floor between attempts. Throttling is always honoured in full (calling while
            # throttled prolongs the block).
            latest = max(now + self.backoff.floor, claim.expires_at - timedelta(days=1))
            wait = max(self.backoff.floor, min(wait, latest - now))
        counted = failure is FailureKind.TEMPORARY
        error = f"{type(exc).__name__}: {exc.message}"
        async with self.database.transaction() as session:
            rescheduled = await tokens.reschedule(session, owner=self.owner, account_id=claim.account_id,
                                                  version=claim.version, error=error, failure=failure,
                                                  count_failure=counted, next_attempt_at=now + wait)
            if rescheduled and counted and claim.refresh_failures == 0:
                await events.record(session, "token.refresh_failing",
                                    f"refreshing the token failed, retrying from {now + wait:%Y-%m-%d %H:%M} UTC "
                                    f"({error})"[:1000], at=now, account_id=claim.account_id, actor=self.owner)
        return outcome


async def mark_needs_reauth(database: Database, *, owner: str, account_id: int, version: int,
                            reason: str) -> Outcome:
    """The token is dead: say why, stop retrying, give the lease back; fenced on our lease and the version."""
    now: datetime = database.clock.now()
    async with database.transaction() as session:
        if not await tokens.reschedule(session, owner=owner, account_id=account_id, version=version, error=reason,
                                       failure=None, next_attempt_at=None, count_failure=True):
            return Outcome.STALE_LEASE
        await transition(session, account_id, AccountStatus.NEEDS_REAUTH, reason=reason, now=now, actor=owner)
    return Outcome.NEEDS_REAUTH
