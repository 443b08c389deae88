"""Connecting an account: the authorization request, the callback, and importing a dashboard-generated token.

The callback order is fixed: parse the redirect strictly; consume the ``state`` in its own committed transaction
(so a replayed or concurrent callback fails before any network call); only then exchange the code, exactly once;
swap it for a long-lived token; read ``/me``; and store account + encrypted token in one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.platform import Clients, LongLivedGrant, Profile, ProviderClient, wire
from filmroll.secret import Secret
from filmroll.service import connect_links
from filmroll.service.policy import RefreshPolicy
from filmroll.service.transitions import transition
from filmroll.store import accounts, events, links, states, tokens
from filmroll.store.database import Database
from filmroll.store.tables import Account, ConnectLink, OAuthState, ReconnectLink
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, Provider

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
    data_access_expires_at: datetime | None = None  # a Facebook Login token's: the owner reconnects before it


@dataclass(frozen=True)
class Connection:
    """What one sign-in connected: Instagram Login's one account, or every Instagram account linked to the Facebook
    user's Pages (sharing one token, each holding its own sealed copy)."""

    accounts: tuple[Connected, ...]

    @property
    def first(self) -> Connected:
        return self.accounts[0]


class Connector:
    def __init__(self, database: Database, vault: Vault, clients: Clients | ProviderClient, *,
                 scopes: Mapping[str, tuple[str, ...]] | None = None, policy: RefreshPolicy | None = None) -> None:
        """``scopes``: the permissions asked of each provider (by its name); a provider not named asks its
        client's default."""
        self.database = database
        self.vault = vault
        self.clients = Clients.of(clients)
        self.scopes = dict(scopes or {})
        self.policy = policy or RefreshPolicy()

    async def begin(self, *, flow: str, session_id: str | None, force_reauth: bool = False,
                    reconnect_link_id: int | None = None, connect_link_id: int | None = None,
                    provider: str = Provider.INSTAGRAM_LOGIN) -> str:
        """Create a state and return the authorize URL to send the owner to (full-page, never a popup). The state
        remembers the provider, so the one callback route knows whose code it receives."""
        client = self.clients[provider]
        state = secrets.token_urlsafe(STATE_BYTES)
        async with self.database.transaction() as session:
            await states.create(session, state, session_id=session_id, flow=flow, provider=client.provider,
                                redirect_uri=client.redirect_uri, now=self.database.clock.now(), ttl=STATE_TTL,
                                reconnect_link_id=reconnect_link_id, connect_link_id=connect_link_id)
        scopes = self.scopes.get(client.provider)
        if scopes is None:
            return client.authorize_url(state, force_reauth=force_reauth)
        return client.authorize_url(state, scopes, force_reauth=force_reauth)

    async def check_link(self, secret: str) -> tuple[ReconnectLink, Account]:
        """The reconnect link behind ``secret``, or a CallbackError saying plainly why it cannot be used."""
        async with self.database.read() as session:
            link = await links.find(session, secret[:100])
            account = await session.get(Account, link.account_id) if link is not None else None
        if link is None or account is None:
            raise errors.CallbackError("This reconnect link is not known here. Ask for a new one.",
                                       code="unknown_link")
        if link.used_at is not None:
            raise errors.CallbackError("This reconnect link was already used. If the account still needs "
                                       "reconnecting, ask for a new link.", code="used_link")
        if link.expires_at <= self.database.clock.now():
            raise errors.CallbackError("This reconnect link has expired. Ask for a new one.", code="expired_link")
        return link, account

    async def flow_of(self, state: str) -> str | None:
        async with self.database.read() as session:
            return await states.flow_of(session, state[:200])

    async def connect_link_of(self, state: str) -> ConnectLink | None:
        """The connect link a sign-in was started from (where its owner goes back to), if any."""
        async with self.database.read() as session:
            link_id = await states.connect_link_of(session, state[:200])
            return await session.get(ConnectLink, link_id) if link_id is not None else None

    async def reconnected(self, session_id: str) -> Account | None:
        """The account a finished reconnect in this browser was for (for its confirmation page)."""
        async with self.database.read() as session:
            return await session.scalar(
                select(Account).join(ReconnectLink, ReconnectLink.account_id == Account.id)
                .join(OAuthState, OAuthState.reconnect_link_id == ReconnectLink.id)
                .where(OAuthState.session_hash == states.digest(session_id[:100]), OAuthState.used_at.is_not(None),
                       ReconnectLink.used_at.is_not(None)))

    async def connected_through_link(self, session_id: str) -> list[Account]:
        """The accounts a connect link finished in this browser connected (for its confirmation page)."""
        async with self.database.read() as session:
            link = await session.scalar(
                select(ConnectLink).join(OAuthState, OAuthState.connect_link_id == ConnectLink.id)
                .where(OAuthState.session_hash == states.digest(session_id[:100]), OAuthState.used_at.is_not(None),
                       ConnectLink.used_at.is_not(None)))
            if link is None:
                return []
            return list((await session.execute(select(Account).where(Account.custom_id == link.custom_id)
                                               .order_by(Account.id))).scalars())

    async def begin_reconnect(self, secret: str, *, session_id: str) -> str:
        """An owner pressed Continue on a reconnect link: send them to Instagram, bound to their browser."""
        link, account = await self.check_link(secret)
        # force_reauth: the browser may be signed in to another Instagram account; make the owner choose.
        return await self.begin(flow="reconnect", session_id=session_id, force_reauth=True,
                                reconnect_link_id=link.id, provider=account.provider)

    async def complete(self, query: str, *, flow: str, session_id: str | None,
                       actor: str | None = None) -> Connection:
        result = wire.parse_callback(query)
        if not result.state:
            raise errors.CallbackError("The redirect carries no state, so it cannot be tied to a sign-in filmroll "
                                       "started.", code="missing_state")
        now = self.database.clock.now()
        async with self.database.transaction() as session:
            row = await states.consume(session, result.state, session_id=session_id, flow=flow, now=now)
            link_id, client = row.reconnect_link_id, self.clients[row.provider]
            connect_link_id = row.connect_link_id
            if link_id is not None and not await links.take(session, link_id, now):
                raise errors.CallbackError("This reconnect link was already used or has expired. Ask for a new "
                                           "one.", code="used_link")
        try:
            short = await client.exchange_code(result.code)
            grant = await client.exchange_long_lived(short.access_token)
            profiles = await client.profiles(grant.access_token)
            if not profiles:
                raise errors.CallbackError(
                    "No Instagram professional account is linked to the Facebook Pages you shared, so nothing was "
                    "connected. Link the Instagram account to a Page (Instagram: Settings → Accounts Center, or the "
                    "Page's settings → Linked accounts), then connect again and share that Page.",
                    code="no_instagram_account")
            permissions, data_access_expires_at = short.permissions, None
            if not Provider(client.provider).refreshes:  # its token's end and data access: as Facebook says
                info = await client.check(grant.access_token, profiles[0].user_id or "")
                permissions, data_access_expires_at = info.scopes or permissions, info.data_access_expires_at
            if link_id is not None:
                await self._same_account(link_id, client.provider, profiles)
        except (errors.InstagramError, errors.CallbackError) as exc:
            # The state is spent; leave a record people can read, give an owner's link back for another try,
            # then let the edge say what happened.
            async with self.database.transaction() as session:
                if link_id is not None:
                    await links.give_back(session, link_id)
                event = await events.record(session, "connect.failed", f"connecting failed: {exc}",
                                            at=self.database.clock.now(), actor=actor)
            exc.event_id = event.id
            raise
        return Connection(await self._store(client.provider, profiles, grant, permissions, actor=actor,
                                            how="connected", data_access_expires_at=data_access_expires_at,
                                            connect_link_id=connect_link_id))

    async def _same_account(self, link_id: int, provider: str, profiles: tuple[Profile, ...]) -> None:
        async with self.database.read() as session:
            account = await session.scalar(select(Account).join(ReconnectLink, ReconnectLink.account_id == Account.id)
                                           .where(ReconnectLink.id == link_id))
        if account is None or account.provider != provider or \
                all(account.ig_user_id != profile.user_id for profile in profiles):
            # The token just obtained belongs to someone else: it is dropped, never stored.
            found = ", ".join(f"@{p.username}" for p in profiles)
            raise errors.CallbackError(
                f"You signed in as {found}, but this link reconnects "
                f"@{account.username if account else 'another account'}. Sign out, then open the "
                f"link again and sign in as that account.", code="wrong_account")

    async def import_token(self, token: Secret, *, actor: str | None = None) -> Connected:
        """Adopt a long-lived token generated in Meta's App Dashboard (an Instagram Login token), after checking it
        with ``/me``."""
        client = self.clients[Provider.INSTAGRAM_LOGIN]
        try:
            profile = await client.reader("").me(token)
        except errors.TokenInvalidError as exc:  # nothing is connected yet: there is no account to reconnect
            raise errors.TokenInvalidError(f"Instagram does not accept this token ({exc.reason}); nothing was "
                                           "stored. Generate a new one in the App Dashboard (Instagram → API setup "
                                           "→ Generate token) and try again", reason=exc.reason) from None
        try:
            grant = await client.refresh(token)  # also tells us its true expiry
        except errors.RefreshTooEarlyError:
            # Less than a day old, so at most a day of its 60 has gone; assume the worst case.
            now = self.database.clock.now()
            grant = LongLivedGrant(token, 59 * 86_400, now + timedelta(days=59))
        return (await self._store(client.provider, (profile,), grant, (), actor=actor, how="imported"))[0]

    async def _store(self, provider: str, profiles: tuple[Profile, ...], grant: LongLivedGrant,
                     permissions: tuple[str, ...], *, actor: str | None, how: str,
                     data_access_expires_at: datetime | None = None,
                     connect_link_id: int | None = None) -> tuple[Connected, ...]:
        """Every account one sign-in reads, with its own sealed copy of the token, in one transaction (with the
        connect link that started it spent on them: a link spent meanwhile stores nothing)."""
        if any(profile.user_id is None for profile in profiles):
            raise errors.MalformedResponseError("Instagram's profile carries no user_id; nothing was stored")
        now = self.database.clock.now()
        issued_at = grant.expires_at - timedelta(seconds=grant.expires_in)
        refreshes = Provider(provider).refreshes
        async with self.database.transaction() as session:
            stored = tuple([await self._store_one(session, provider, profile, grant, permissions, actor=actor,
                                                  how=how, now=now, issued_at=issued_at, refreshes=refreshes,
                                                  data_access_expires_at=data_access_expires_at)
                            for profile in profiles])
            if connect_link_id is not None:
                await connect_links.attach(session, connect_link_id, [c.account_id for c in stored], now, actor)
            return stored

    async def _store_one(self, session: AsyncSession, provider: str, profile: Profile, grant: LongLivedGrant,
                         permissions: tuple[str, ...], *, actor: str | None, how: str, now: datetime,
                         issued_at: datetime, refreshes: bool, data_access_expires_at: datetime | None) -> Connected:
        assert profile.user_id is not None
        account, created = await accounts.upsert(
            session, provider=provider, ig_user_id=profile.user_id, app_scoped_id=profile.app_scoped_id, now=now,
            profile={c: getattr(profile, c) for c in accounts.PROFILE_COLUMNS})
        await tokens.put(session, account.id, self.vault.seal(grant.access_token, account.id), kind="long",
                         provider=provider, permissions=permissions, issued_at=issued_at,
                         expires_at=grant.expires_at, data_access_expires_at=data_access_expires_at,
                         next_refresh_at=(self.policy.next_refresh_at(issued_at, grant.expires_at) if refreshes
                                          else None),
                         next_probe_at=self.policy.next_probe_at(now))
        verb = how if created else ("reconnected" if how == "connected" else "re-imported")
        ends = grant.expires_at if data_access_expires_at is None else min(grant.expires_at, data_access_expires_at)
        event = await transition(
            session, account.id, AccountStatus.ACTIVE, reason=None, now=now, actor=actor,
            event=f"account.{how if created else 'reconnected'}",
            message=f"{verb} @{profile.username}; token valid until {ends:%Y-%m-%d %H:%M} UTC")
        return Connected(account.id, account.username, account.ig_user_id, created, grant.expires_at, permissions,
                         event.id, data_access_expires_at)
