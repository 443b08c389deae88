"""Telling someone when an account needs its owner: signed outgoing webhooks with a reconnect link.

Alerts are raised in the same transaction as the state change that causes them (``store/alerts.py`` is an
outbox), so a crash can never lose one; the worker delivers them:

1. Still true? An account reconnected meanwhile, or a token refreshed after all, makes the alert ``obsolete``:
   nothing is sent.
2. Mint a single-use reconnect link (only its hash is stored) and POST the JSON body with
   ``X-Filmroll-Signature-256: sha256=<HMAC-SHA256 of the raw body with the webhook secret>``.
3. A 2xx answer marks it ``sent``. Anything else (another status, a redirect, a timeout) deletes that link and
   retries with exponential backoff; after ``max_attempts`` the alert is ``failed`` and an event says so.

The webhook URL may itself be a credential (Slack-style), so it is never logged or stored in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.secret import Secret
from filmroll.service import connect_links
from filmroll.service.policy import Backoff
from filmroll.store import alerts, events, links
from filmroll.store.alerts import AlertClaim
from filmroll.store.database import Database
from filmroll.store.lease import claim_due
from filmroll.store.tables import Account, ReconnectLink, Token
from filmroll.vocabulary import AccountStatus, AlertStatus, Outcome

log = logging.getLogger("filmroll.alerts")

LINK_BYTES = 32  # 256 bits
SIGNATURE_HEADER = "X-Filmroll-Signature-256"
WEBHOOK_RETRY = Backoff(base=timedelta(seconds=30), cap=timedelta(hours=1), floor=timedelta(0))


def sign(secret: Secret, body: bytes) -> str:
    """The signature header's value for ``body`` (receivers recompute it over the raw bytes they got)."""
    return "sha256=" + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


async def post_signed(http: aiohttp.ClientSession, webhook: Webhook, body: bytes, *, event: str,
                      delivery: str) -> str | None:
    """POST a signed body to the operator's webhook; None when the receiver took it, else a short reason (never
    the URL: Slack-style URLs are credentials)."""
    headers = {"Content-Type": "application/json", "User-Agent": f"filmroll/{version('filmroll')}",
               "X-Filmroll-Event": event, "X-Filmroll-Delivery": delivery, SIGNATURE_HEADER: sign(webhook.secret, body)}
    try:
        async with http.post(webhook.url.reveal(), data=body, headers=headers, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=webhook.timeout)) as response:
            await response.read()
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except TimeoutError:
        return "timed out"
    except aiohttp.ClientError as exc:
        return type(exc).__name__


@dataclass(frozen=True)
class Webhook:
    url: Secret
    secret: Secret
    link_base: str  # the public origin reconnect links point at, e.g. https://feeds.example.org
    link_ttl: timedelta = timedelta(days=7)
    expiring_within: timedelta = timedelta(days=7)
    timeout: float = 10.0
    max_attempts: int = 20
    retry: Backoff = WEBHOOK_RETRY


async def mint_link(database: Database, account_id: int, ttl: timedelta) -> tuple[str, ReconnectLink]:
    """A new reconnect link secret for the account (for the webhook, or an admin to pass on by hand)."""
    secret = secrets.token_urlsafe(LINK_BYTES)
    async with database.transaction() as session:
        link = await links.create(session, account_id, secret, now=database.clock.now(), ttl=ttl)
    return secret, link


class Alerter:
    SWEEP_EVERY = timedelta(minutes=1)

    def __init__(self, database: Database, webhook: Webhook, http: aiohttp.ClientSession, *, owner: str,
                 rng: random.Random | None = None) -> None:
        self.database = database
        self.webhook = webhook
        self.http = http  # the process's shared session (runtime.py); never follows redirects here
        self.owner = owner
        self.rng = rng or random.Random()
        self._swept_at: datetime | None = None

    async def claim(self, session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                    limit: int) -> list[AlertClaim]:
        """The worker's claim step: first (at most once a minute) queue alerts for tokens about to expire."""
        if self._swept_at is None or now - self._swept_at >= self.SWEEP_EVERY:
            self._swept_at = now
            if await alerts.sweep_expiring(session, now=now, within=self.webhook.expiring_within, actor=owner):
                await session.flush()
        return await claim_due(session, alerts.ALERTS, owner=owner, now=now, lease=lease, limit=limit)

    async def run(self, claim: AlertClaim) -> Outcome:
        now = self.database.clock.now()
        async with self.database.read() as session:
            account = await session.get(Account, claim.account_id)
            token = await session.get(Token, claim.account_id)
        if account is None or not _still_true(claim, account, token):
            async with self.database.transaction() as session:
                await alerts.finished(session, claim.alert_id, owner=self.owner, status=AlertStatus.OBSOLETE)
            return Outcome.ALERT_OBSOLETE
        if claim.kind == connect_links.CONNECTED:  # news, not a request: no reconnect link to carry
            secret, expires = None, None
        else:
            secret, link = await mint_link(self.database, claim.account_id, self.webhook.link_ttl)
            expires = link.expires_at
        body = json.dumps(self._payload(claim, account, token, secret, expires, now)).encode()
        error = await self._post(claim, body)
        attempts = claim.attempts + 1
        async with self.database.transaction() as session:
            if error is None:
                await alerts.finished(session, claim.alert_id, owner=self.owner, status=AlertStatus.SENT,
                                            sent_at=now, attempts=attempts, last_error=None)
                await events.record(session, "alert.sent", f"{claim.kind} alert delivered to the webhook",
                                    at=now, account_id=claim.account_id, actor=self.owner)
                return Outcome.ALERT_SENT
            await links.drop(session, link.id)  # never delivered, so it must not work
            if attempts >= self.webhook.max_attempts:
                await alerts.finished(session, claim.alert_id, owner=self.owner, status=AlertStatus.FAILED,
                                            attempts=attempts, last_error=error)
                await events.record(session, "alert.failed",
                                    f"{claim.kind} alert not delivered after {attempts} attempts ({error})",
                                    at=now, account_id=claim.account_id, actor=self.owner)
                return Outcome.ALERT_FAILED
            await alerts.finished(session, claim.alert_id, owner=self.owner, attempts=attempts,
                                        last_error=error, next_attempt_at=now + self._delay(attempts))
        log.info("%s not delivered (%s); retrying", claim.label, error)
        return Outcome.ALERT_RETRY

    def _payload(self, claim: AlertClaim, account: Account, token: Token | None, secret: str | None,
                 link_expires: datetime | None, now: datetime) -> dict[str, Any]:
        return {
            "id": claim.alert_id,
            "type": claim.kind,
            "created_at": claim.created_at.isoformat(),
            "sent_at": now.isoformat(),
            "attempt": claim.attempts + 1,
            "account": {"id": account.id, "ig_user_id": account.ig_user_id, "username": account.username,
                        "custom_id": account.custom_id},
            "reason": claim.reason,
            "token_expires_at": token.expires_at.isoformat() if token is not None else None,
            # Facebook Login's: the app's data access ends before the token may (the owner reconnects either way)
            "data_access_expires_at": (token.data_access_expires_at.isoformat()
                                       if token is not None and token.data_access_expires_at else None),
            "reconnect_url": f"{self.webhook.link_base.rstrip('/')}/reconnect?link={secret}" if secret else None,
            "reconnect_expires_at": link_expires.isoformat() if link_expires else None,
        }

    async def _post(self, claim: AlertClaim, body: bytes) -> str | None:
        return await post_signed(self.http, self.webhook, body, event=claim.kind, delivery=str(claim.alert_id))

    def _delay(self, attempts: int) -> timedelta:
        return self.webhook.retry.delay(attempts - 1, self.rng)  # jittered: spreads receivers' recovery load


def _still_true(claim: AlertClaim, account: Account, token: Token | None) -> bool:
    if claim.kind == alerts.NEEDS_REAUTH:
        return account.status == AccountStatus.NEEDS_REAUTH
    if claim.kind == connect_links.CONNECTED:
        return account.status == AccountStatus.ACTIVE
    if claim.kind == alerts.REVOKED:
        return account.status == AccountStatus.REVOKED
    return account.status == AccountStatus.ACTIVE and token is not None and token.version == claim.token_version
