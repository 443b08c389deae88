"""Refreshing one claimed token, on Instagram's rules, without ever losing it.

The order is fixed so a crash at any point leaves a recoverable state:

1. A claim whose crash marker (``refresh_started_at``) is set means a previous attempt died mid-call: probe the
   stored token with ``/me`` first. It works → refresh as usual. It is dead → the refresh happened and its answer
   was lost with the process, so the account needs re-authorisation, said in plain words (never silently lost).
2. Set the crash marker (fenced on lease and version), then call Instagram, outside any transaction.
3. Classify a failure: 190 → ``needs_reauth`` with Instagram's reason and no retry (unless the row moved: then
   another worker won the race and all is well); throttling → wait ``retry_after``; temporary or malformed →
   capped exponential backoff with full jitter. A malformed answer never replaces the stored token.
4. Store what Instagram returned, fenced on lease owner and version, in one durable transaction; then release.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from filmroll import errors
from filmroll.faults import NO_FAULTS, FaultPoints
from filmroll.platform import InstagramClient
from filmroll.service import alerts as alert_service
from filmroll.service.policy import MIN_AGE, RefreshPolicy
from filmroll.store import events, leases
from filmroll.store.database import Database
from filmroll.store.tables import Account, Token
from filmroll.vault import Vault

log = logging.getLogger("filmroll.refresh")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter over the upper half of each step ("equal jitter" in AWS's "Exponential
    Backoff and Jitter"), above a floor. Full jitter, drawn from zero, lets an unlucky account draw several short
    waits in a row: a ten-minute outage cost some accounts 5-7 attempts. With half of each step fixed, the n-th retry
    comes no sooner than base · (2^n - 1) / 2 after the first failure, so a ten-minute outage costs at most three
    attempts, and the accounts that failed together are still spread over half a step (90 s for the first retry).
    The cap is an hour: even a days-long outage then costs little (only due work is retried), and once Instagram is
    back every account recovers within the hour."""

    base: timedelta = timedelta(minutes=3)
    cap: timedelta = timedelta(hours=1)
    floor: timedelta = timedelta(seconds=30)  # never sooner than this, whatever the draw

    def delay(self, failures: int, rng: random.Random, *, cap: timedelta | None = None) -> timedelta:
        """Uniform in [ceiling / 2, ceiling] with ceiling = min(cap, base · 2^failures), the tighter of the two caps
        if one is given, and never under the floor. Drawn above the floor, not clamped to it: a clamp puts every
        short draw at the same instant, and the accounts that failed together would retry together."""
        limit = min(self.cap, cap) if cap is not None else self.cap
        ceiling = min(limit.total_seconds(), self.base.total_seconds() * 2 ** min(failures, 30))
        floor = self.floor.total_seconds()
        return timedelta(seconds=rng.uniform(max(floor, ceiling / 2), max(floor, ceiling)))


class Refresher:
    def __init__(self, database: Database, vault: Vault, instagram: InstagramClient, *, owner: str,
                 policy: RefreshPolicy | None = None, backoff: Backoff | None = None,
                 faults: FaultPoints = NO_FAULTS, rng: random.Random | None = None) -> None:
        self.database = database
        self.vault = vault
        self.instagram = instagram
        self.owner = owner
        self.policy = policy or RefreshPolicy()
        self.backoff = backoff or Backoff()
        self.faults = faults
        self.rng = rng or random.Random()

    async def run(self, claim: leases.RefreshClaim) -> str:
        """Refresh one claimed token; returns what happened (for logs, stats and tests)."""
        try:
            token = self.vault.open(claim.ciphertext, claim.key_id, claim.account_id)
        except errors.VaultError as exc:
            return await self._needs_reauth(claim, f"the stored token cannot be decrypted ({exc.message})")
        if claim.refresh_started_at is not None:
            try:
                await self.instagram.me(token, fields=("id",))
            except errors.TokenInvalidError as exc:
                return await self._needs_reauth(
                    claim, f"a refresh was interrupted by a crash and Instagram no longer accepts the stored token "
                           f"(refresh_lost_in_crash): {exc.reason}")
            except errors.InstagramError as exc:
                return await self._retry(claim, exc)
        async with self.database.transaction() as session:
            if not await leases.mark_refresh_started(session, owner=self.owner, account_id=claim.account_id,
                                                     version=claim.version, now=self.database.clock.now()):
                return "stale_lease"
        self.faults.hit("before_refresh_call")
        try:
            grant = await self.instagram.refresh(token)
        except errors.TokenInvalidError as exc:
            if await self._row_moved(claim):
                return await self._lost_race(claim)
            return await self._needs_reauth(claim, exc.reason)
        except errors.RefreshTooEarlyError:
            async with self.database.transaction() as session:
                await leases.reschedule(session, owner=self.owner, account_id=claim.account_id, version=claim.version,
                                        error=None, next_attempt_at=None, count_failure=False,
                                        next_refresh_at=claim.issued_at + MIN_AGE + timedelta(minutes=5))
            return "too_early"
        except errors.InstagramError as exc:
            return await self._retry(claim, exc)
        self.faults.hit("after_response_before_commit")
        now = self.database.clock.now()
        issued_at = grant.expires_at - timedelta(seconds=grant.expires_in)
        sealed = self.vault.seal(grant.access_token, claim.account_id)
        async with self.database.transaction() as session:
            stored = await leases.store_refreshed(
                session, owner=self.owner, account_id=claim.account_id, version=claim.version,
                ciphertext=sealed.ciphertext, key_id=sealed.key_id, issued_at=issued_at, expires_at=grant.expires_at,
                refreshed_at=now, next_refresh_at=self.policy.next_refresh_at(issued_at, grant.expires_at, self.rng),
                next_probe_at=self.policy.next_probe_at(now, self.rng))
            if stored:
                after = f" after {claim.failure_count} failed attempts" if claim.failure_count else ""
                await events.record(session, "token.refreshed",
                                    f"token refreshed{after}, valid until {grant.expires_at:%Y-%m-%d %H:%M} UTC",
                                    at=now, account_id=claim.account_id, actor=self.owner)
        if not stored:
            log.warning("stale_lease: account %s was taken over while refreshing; wrote nothing", claim.account_id)
            return "stale_lease"
        self.faults.hit("after_commit_before_release")
        async with self.database.transaction() as session:
            await leases.release(session, owner=self.owner, account_ids=[claim.account_id])
        return "refreshed"

    async def _row_moved(self, claim: leases.RefreshClaim) -> bool:
        async with self.database.read() as session:
            row = await session.get(Token, claim.account_id)
        return row is None or row.version != claim.version

    async def _lost_race(self, claim: leases.RefreshClaim) -> str:
        log.info("account %s was refreshed by someone else meanwhile; not a dead token", claim.account_id)
        async with self.database.transaction() as session:
            await leases.release(session, owner=self.owner, account_ids=[claim.account_id])
        return "lost_race"

    async def _needs_reauth(self, claim: leases.RefreshClaim, reason: str) -> str:
        return await mark_needs_reauth(self.database, owner=self.owner, account_id=claim.account_id,
                                       version=claim.version, reason=reason)

    async def _retry(self, claim: leases.RefreshClaim, exc: errors.InstagramError) -> str:
        now = self.database.clock.now()
        if isinstance(exc, errors.RateLimitedError):
            wait, outcome, counted = timedelta(seconds=exc.retry_after), "throttled", False
        else:
            wait, outcome, counted = self.backoff.delay(claim.failure_count, self.rng), "retry", True
        if outcome == "retry":
            # Do not back off past the last safe moment to refresh (a day before expiry), nor hammer Instagram:
            # at least the backoff's floor between attempts. Throttling is always honoured in full (calling while
            # throttled prolongs the block).
            latest = max(now + self.backoff.floor, claim.expires_at - timedelta(days=1))
            wait = max(self.backoff.floor, min(wait, latest - now))
        error = f"{type(exc).__name__}: {exc.message}"
        async with self.database.transaction() as session:
            rescheduled = await leases.reschedule(session, owner=self.owner, account_id=claim.account_id,
                                                  version=claim.version, error=error, count_failure=counted,
                                                  next_attempt_at=now + wait)
            if rescheduled and counted and claim.failure_count == 0:
                await events.record(session, "token.refresh_failing",
                                    f"refreshing the token failed, retrying from {now + wait:%Y-%m-%d %H:%M} UTC "
                                    f"({error})"[:1000], at=now, account_id=claim.account_id, actor=self.owner)
        return outcome


async def mark_needs_reauth(database: Database, *, owner: str, account_id: int, version: int, reason: str) -> str:
    """The token is dead: say why, stop retrying, give the lease back; fenced on our lease and the version."""
    now = database.clock.now()
    async with database.transaction() as session:
        if not await leases.reschedule(session, owner=owner, account_id=account_id, version=version, error=reason,
                                       next_attempt_at=None, count_failure=True):
            return "stale_lease"
        account = await session.get(Account, account_id)
        if account is not None:
            account.status, account.status_reason, account.updated_at = "needs_reauth", reason, now
        await alert_service.needs_reauth(session, account_id=account_id, reason=reason, now=now, actor=owner)
    log.warning("account %s needs re-authorisation by its owner: %s", account_id, reason)
    return "needs_reauth"
