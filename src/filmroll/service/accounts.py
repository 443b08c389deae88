"""Use-cases on one connected account: show its token, refresh it now, disconnect it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from filmroll import errors
from filmroll.platform import InstagramClient
from filmroll.secret import Secret
from filmroll.service import alerts as alert_service
from filmroll.service.policy import RefreshPolicy
from filmroll.store import accounts, events, tokens
from filmroll.store.database import Database
from filmroll.store.tables import Account, Token
from filmroll.vault import Vault


@dataclass(frozen=True)
class AccountView:
    """What `filmroll accounts` and the accounts page show. No secret in here."""

    id: int
    username: str | None
    ig_user_id: str
    status: str
    status_reason: str | None
    slug: str
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None
    next_refresh_at: datetime | None
    permissions: tuple[str, ...]
    last_error: str | None


def view(account: Account, token: Token | None) -> AccountView:
    return AccountView(
        account.id, account.username, account.ig_user_id, account.status, account.status_reason, account.slug,
        token.expires_at if token else None, token.refreshed_at if token else None,
        token.next_refresh_at if token else None,
        tuple(p for p in (token.permissions.split(",") if token else []) if p), token.last_error if token else None)


async def listing(database: Database) -> list[AccountView]:
    async with database.read() as session:
        return [view(a, await tokens.get(session, a.id)) for a in await accounts.listing(session)]


async def _find(database: Database, ref: str) -> Account:
    async with database.read() as session:
        account = await accounts.find(session, ref)
    if account is None:
        raise errors.AccountNotFoundError(f"no connected account matches {ref!r} (use an id, @username or slug)")
    return account


async def describe(database: Database, ref: str) -> AccountView:
    """One account's facts (no secret), found by id, @username or slug."""
    account = await _find(database, ref)
    async with database.read() as session:
        return view(account, await tokens.get(session, account.id))


def _no_token(account: Account) -> errors.AccountNotFoundError:
    return errors.AccountNotFoundError(f"@{account.username} has no stored token (status: {account.status})")


async def reveal(database: Database, vault: Vault, ref: str, *, actor: str | None) -> tuple[Account, Secret]:
    account = await _find(database, ref)
    async with database.transaction() as session:
        token = await tokens.get(session, account.id)
        if token is None:
            raise _no_token(account)
        secret = vault.open(token.ciphertext, token.key_id, account.id)
        await events.record(session, "token.revealed", f"token of @{account.username} revealed",
                            at=database.clock.now(), account_id=account.id, actor=actor)
    return account, secret


async def refresh(database: Database, vault: Vault, instagram: InstagramClient, ref: str, *, actor: str | None,
                  policy: RefreshPolicy | None = None) -> AccountView:
    """Refresh one account's token now. Writes are fenced on the token version read before the call."""
    policy = policy or RefreshPolicy()
    account = await _find(database, ref)
    async with database.read() as session:
        token = await tokens.get(session, account.id)
    if token is None:
        raise _no_token(account)
    current = vault.open(token.ciphertext, token.key_id, account.id)
    try:
        grant = await instagram.refresh(current)
    except errors.TokenInvalidError as exc:
        async with database.transaction() as session:
            fresh = await session.get(Account, account.id)
            assert fresh is not None
            await accounts.set_status(session, fresh, "needs_reauth", exc.reason, database.clock.now())
            await alert_service.needs_reauth(session, account_id=account.id, now=database.clock.now(),
                                             reason=f"@{account.username}: {exc.reason}", actor=actor)
        raise
    now = database.clock.now()
    issued_at = grant.expires_at - timedelta(seconds=grant.expires_in)  # when the refresh request was sent
    async with database.transaction() as session:
        written = await tokens.replace_if_version(
            session, account.id, token.version, vault.seal(grant.access_token, account.id), issued_at=issued_at,
            expires_at=grant.expires_at, refreshed_at=now,
            next_refresh_at=policy.next_refresh_at(issued_at, grant.expires_at))
        if written:
            await events.record(session, "token.refreshed",
                                f"@{account.username}: token refreshed, valid until {grant.expires_at:%Y-%m-%d} UTC",
                                at=now, account_id=account.id, actor=actor)
        stored = await tokens.get(session, account.id)
        fresh_account = await session.get(Account, account.id)
    assert fresh_account is not None
    return view(fresh_account, stored)


async def disconnect(database: Database, ref: str, *, actor: str | None) -> AccountView:
    """Forget the token (the ciphertext is deleted) and stop syncing; the account row and its history stay."""
    account = await _find(database, ref)
    now = database.clock.now()
    async with database.transaction() as session:
        fresh = await session.get(Account, account.id)
        assert fresh is not None
        await tokens.remove(session, account.id)
        await accounts.set_status(session, fresh, "disconnected", f"disconnected by {actor or 'an operator'}", now)
        fresh.next_sync_at = None
        await events.record(session, "account.disconnected", f"@{account.username} disconnected; token deleted",
                            at=now, account_id=account.id, actor=actor)
        return view(fresh, None)
