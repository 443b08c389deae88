"""Instagram's webhooks: verified and stored at the edge (``web/meta.py``), acted on here by the worker's
``webhook`` job. A delivery names accounts (each entry's ``id``, the professional account id); each active one
becomes due for a sync now, and an event records that Instagram said something changed (not what: comments and
messages are not filmroll's to keep). The delivery itself goes on to the operator's alert webhook, if one is set.
Instagram has no "new post" field (wire reference §4.2), so feeds keep polling; a comment on a post still brings
its counts up to date sooner.

The documented payload is a top-level array of notifications, live traffic a single object: both are taken.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import aiohttp
from sqlalchemy import select

from filmroll.platform import Clients, ProviderClient
from filmroll.service.accounts import find as find_account
from filmroll.service.accounts import no_token
from filmroll.service.alerts import Webhook, post_signed
from filmroll.store import events, sources, tokens, webhooks
from filmroll.store.database import Database
from filmroll.store.tables import Account
from filmroll.store.webhooks import WebhookClaim
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, Outcome

log = logging.getLogger("filmroll.webhooks")
FIELDS = ("comments", "mentions")  # what `filmroll webhooks subscribe` asks for: what touches an account's posts


def accounts_named(body: Any) -> list[str]:
    """The professional account ids a delivery's entries name (an unreadable one names none)."""
    notifications = body if isinstance(body, list) else [body]
    found: list[str] = []
    for notification in notifications:
        if not isinstance(notification, dict) or notification.get("object") != "instagram":
            continue
        for entry in notification.get("entry") or []:
            ident = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(ident, (str, int)) and str(ident).isdigit() and str(ident) not in found:
                found.append(str(ident))
    return found


async def subscribe(database: Database, vault: Vault, clients: Clients | ProviderClient,
                    ref: str) -> tuple[Account, bool]:
    """Ask Instagram to send this app the account's webhook :data:`FIELDS`; returns whether it confirmed."""
    account = await find_account(database, ref)
    async with database.transaction() as session:
        token = await tokens.get(session, account.id)
        if token is None:
            raise no_token(account)
        secret = vault.open(token.ciphertext, token.key_id, account.id)
        await events.record(session, "webhooks.subscribed", f"@{account.username} subscribed to Instagram's "
                            f"{', '.join(FIELDS)} webhooks", at=database.clock.now(), account_id=account.id,
                            actor="cli")
    return account, await Clients.of(clients)[account.provider].subscribe(secret, FIELDS)


class WebhookHandler:
    """The ``webhook`` job: the named accounts made due (once per delivery), then the delivery forwarded to the
    operator's alert webhook when one is set (signed like alerts, ``X-Filmroll-Event: instagram.webhook``, retried
    with the alerts' backoff, given up after as many attempts)."""

    def __init__(self, database: Database, *, owner: str, http: aiohttp.ClientSession | None = None,
                 forward_to: Webhook | None = None, rng: random.Random | None = None) -> None:
        self.database = database
        self.owner = owner
        self.http = http
        self.forward_to = forward_to if http is not None else None
        self.rng = rng or random.Random()

    async def run(self, claim: WebhookClaim) -> Outcome:
        try:
            delivery = json.loads(claim.body)
        except ValueError:
            delivery = None
        named = accounts_named(delivery)
        usernames = await (self._act(claim, named) if claim.acted_at is None else self._usernames(named))
        if self.forward_to is None or self.http is None:
            return await self._done(claim)
        body = json.dumps({"type": "instagram.webhook", "received_at": claim.received_at.isoformat(),
                           "accounts": usernames, "delivery": delivery}, ensure_ascii=False).encode()
        error = await post_signed(self.http, self.forward_to, body, event="instagram.webhook",
                                  delivery=f"webhook-{claim.id}")
        attempts = claim.attempts + 1
        if error is None or attempts >= self.forward_to.max_attempts:
            return await self._done(claim, attempts=attempts, error=error)
        now = self.database.clock.now()
        async with self.database.transaction() as session:
            await webhooks.retry_later(session, claim.id, owner=self.owner, attempts=attempts, error=error,
                                       at=now + self.forward_to.retry.delay(attempts - 1, self.rng))
        log.info("webhook delivery %s not forwarded (%s); retrying", claim.id, error)
        return Outcome.WEBHOOK_RETRY

    async def _act(self, claim: WebhookClaim, named: list[str]) -> list[str]:
        now = self.database.clock.now()
        async with self.database.transaction() as session:
            accounts = list((await session.execute(select(Account).where(
                Account.ig_user_id.in_(named), Account.status == AccountStatus.ACTIVE))).scalars()) if named else []
            if accounts:
                await sources.make_due(session, [a.id for a in accounts], now)
            for account in accounts:
                await events.record(session, "instagram.webhook", f"Instagram said @{account.username} changed; "
                                    "synced now", at=now, account_id=account.id, actor="instagram")
            await webhooks.acted(session, claim.id, now)
        return [f"@{a.username}" for a in accounts]

    async def _usernames(self, named: list[str]) -> list[str]:
        if not named:
            return []
        async with self.database.read() as session:
            return [f"@{u}" for u in (await session.execute(
                select(Account.username).where(Account.ig_user_id.in_(named)))).scalars()]

    async def _done(self, claim: WebhookClaim, *, attempts: int = 0, error: str | None = None) -> Outcome:
        async with self.database.transaction() as session:
            if not await webhooks.done(session, claim.id, owner=self.owner, now=self.database.clock.now(),
                                       attempts=attempts, error=error):
                return Outcome.STALE_LEASE
        if error is not None:
            log.warning("webhook delivery %s not forwarded after %d attempts (%s)", claim.id, attempts, error)
        return Outcome.WEBHOOK_HANDLED
