"""Connecting an account: the authorization request, the callback, and importing a dashboard-generated token.

The callback order is fixed: parse the redirect strictly; consume the ``state`` in its own committed transaction
(so a replayed or concurrent callback fails before any network call); only then exchange the code, exactly once;
swap it for a long-lived token; read ``/me``; and store account + encrypted token in one transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from filmroll import errors
from filmroll.platform import InstagramClient, LongLivedGrant, Profile, wire
from filmroll.secret import Secret
from filmroll.service.policy import RefreshPolicy
from filmroll.store import accounts, events, states, tokens
from filmroll.store.database import Database
from filmroll.vault import Vault

STATE_TTL = timedelta(minutes=10)
STATE_BYTES = 32  # 256 bits


@dataclass(frozen=True)
class Connected:
    account_id: int
    username: str | None
    ig_user_id: str
    created: bool
    expires_at: datetime
    permissions: tuple[str, ...]
    event_id: int


class Connector:
    def __init__(self, database: Database, vault: Vault, instagram: InstagramClient, *,
                 scopes: tuple[str, ...] = ("instagram_business_basic",),
                 policy: RefreshPolicy | None = None) -> None:
        self.database = database
        self.vault = vault
        self.instagram = instagram
        self.scopes = scopes
        self.policy = policy or RefreshPolicy()

    async def begin(self, *, flow: str, session_id: str | None, force_reauth: bool = False) -> str:
        """Create a state and return the authorize URL to send the owner to (full-page, never a popup)."""
        state = secrets.token_urlsafe(STATE_BYTES)
        async with self.database.transaction() as session:
            await states.create(session, state, session_id=session_id, flow=flow,
                                redirect_uri=self.instagram.redirect_uri, now=datetime.now(UTC), ttl=STATE_TTL)
        return self.instagram.authorize_url(state, self.scopes, force_reauth=force_reauth)

    async def complete(self, query: str, *, flow: str, session_id: str | None, actor: str | None = None) -> Connected:
        result = wire.parse_callback(query)
        if not result.state:
            raise errors.CallbackError("The redirect carries no state, so it cannot be tied to a sign-in filmroll "
                                       "started.", code="missing_state")
        async with self.database.transaction() as session:
            await states.consume(session, result.state, session_id=session_id, flow=flow, now=datetime.now(UTC))
        try:
            short = await self.instagram.exchange_code(result.code)
            grant = await self.instagram.exchange_long_lived(short.access_token)
            profile = await self.instagram.me(grant.access_token)
        except errors.InstagramError as exc:
            # The state is spent; leave a record people can read, then let the edge say what happened.
            async with self.database.transaction() as session:
                event = await events.record(session, "connect.failed", f"connecting failed: {exc}",
                                            at=datetime.now(UTC), actor=actor)
            exc.event_id = event.id  # type: ignore[attr-defined]
            raise
        return await self._store(profile, grant, short.permissions, actor=actor, how="connected")

    async def import_token(self, token: Secret, *, actor: str | None = None) -> Connected:
        """Adopt a long-lived token generated in Meta's App Dashboard, after checking it with ``/me``."""
        profile = await self.instagram.me(token)
        try:
            grant = await self.instagram.refresh(token)  # also tells us its true expiry
        except errors.RefreshTooEarlyError:
            # Less than a day old, so at most a day of its 60 has gone; assume the worst case.
            now = datetime.now(UTC)
            grant = LongLivedGrant(token, 59 * 86_400, now + timedelta(days=59))
        return await self._store(profile, grant, (), actor=actor, how="imported")

    async def _store(self, profile: Profile, grant: LongLivedGrant, permissions: tuple[str, ...], *,
                     actor: str | None, how: str) -> Connected:
        if profile.user_id is None:
            raise errors.MalformedResponseError("Instagram's profile carries no user_id; nothing was stored")
        now = datetime.now(UTC)
        issued_at = grant.expires_at - timedelta(seconds=grant.expires_in)
        async with self.database.transaction() as session:
            account, created = await accounts.upsert(session, profile, now)
            await tokens.put(session, account.id, self.vault.seal(grant.access_token, account.id), kind="long",
                             permissions=permissions, issued_at=issued_at, expires_at=grant.expires_at,
                             next_refresh_at=self.policy.next_refresh_at(issued_at, grant.expires_at),
                             next_probe_at=self.policy.next_probe_at(now))
            verb = how if created else ("reconnected" if how == "connected" else "re-imported")
            event = await events.record(
                session, f"account.{how if created else 'reconnected'}",
                f"{verb} @{profile.username}; token valid until {grant.expires_at:%Y-%m-%d %H:%M} UTC",
                at=now, account_id=account.id, actor=actor)
        return Connected(account.id, account.username, account.ig_user_id, created, grant.expires_at, permissions,
                         event.id)

