"""The daily health probe: one cheap call per token (Instagram Login: ``GET /me?fields=id``; Facebook Login:
``debug_token``), so a token revoked by a password change, an app removal or Meta's security sweep is noticed within
a day instead of at the next refresh weeks later. Facebook's answer also says when the token and the app's data
access end: both are recorded (the expiry alert reads them), and a lost data access needs the owner back."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from filmroll import errors
from filmroll.platform import Clients, ProviderClient, TokenInfo
from filmroll.platform.wire import TOKEN_REASONS
from filmroll.service.policy import RefreshPolicy
from filmroll.service.refresh import mark_needs_reauth
from filmroll.store import tokens
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.vault import Vault
from filmroll.vocabulary import Outcome

RETRY_AFTER_FAILURE = timedelta(minutes=15)


class Prober:
    def __init__(self, database: Database, vault: Vault, clients: Clients | ProviderClient, *, owner: str,
                 policy: RefreshPolicy | None = None, rng: random.Random | None = None,
                 batch: WriteBatch | None = None) -> None:
        self.database = database
        self.batch = batch  # shares commits with other jobs' bookkeeping (see store/batch.py)
        self.vault = vault
        self.clients = Clients.of(clients)
        self.owner = owner
        self.policy = policy or RefreshPolicy()
        self.rng = rng or random.Random()

    async def run(self, claim: tokens.ProbeClaim) -> Outcome:
        try:
            token = self.vault.open(claim.ciphertext, claim.key_id, claim.account_id)
        except errors.VaultError as exc:
            return await mark_needs_reauth(self.database, owner=self.owner, account_id=claim.account_id,
                                           version=claim.version,
                                           reason=f"the stored token cannot be decrypted ({exc.message})")
        now = self.database.clock.now()
        try:
            info = await self.clients[claim.provider].check(token, claim.ig_user_id)
        except errors.TokenInvalidError as exc:
            return await mark_needs_reauth(self.database, owner=self.owner, account_id=claim.account_id,
                                           version=claim.version, reason=exc.reason)
        except errors.RateLimitedError as exc:
            return await self._later(claim, now, timedelta(seconds=exc.retry_after), Outcome.THROTTLED)
        except errors.InstagramError:
            return await self._later(claim, now, RETRY_AFTER_FAILURE, Outcome.RETRY)
        if info.data_access_expires_at is not None and info.data_access_expires_at <= now:
            return await mark_needs_reauth(self.database, owner=self.owner, account_id=claim.account_id,
                                           version=claim.version, reason=TOKEN_REASONS[493])
        return await self._later(claim, now, None, Outcome.ALIVE, info)

    async def _later(self, claim: tokens.ProbeClaim, now: datetime, wait: timedelta | None,
                     outcome: Outcome, info: TokenInfo | None = None) -> Outcome:
        next_probe_at = now + wait if wait is not None else self.policy.next_probe_at(now, self.rng)
        write = tokens.probed(owner=self.owner, account_id=claim.account_id, version=claim.version, now=now,
                              next_probe_at=next_probe_at, expires_at=info.expires_at if info else None,
                              data_access_expires_at=info.data_access_expires_at if info else None)
        if self.batch is not None:
            written = await self.batch.run(write)
        else:
            async with self.database.transaction() as session:
                written = await write(session)
        return outcome if written else Outcome.STALE_LEASE
