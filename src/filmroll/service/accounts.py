"""Use-cases on connected accounts: list them, show a token, refresh or sync one now, set how often it is synced,
disconnect it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.platform import InstagramClient
from filmroll.secret import Secret
from filmroll.service import alerts as alert_service
from filmroll.service.policy import RefreshPolicy
from filmroll.service.sync import Syncer
from filmroll.store import accounts, events, leases, media, tokens
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
    posts: int  # live posts stored (not marked deleted)
    media_count: int | None  # what Instagram says the account has
    sync_interval: int | None  # seconds; None: the deployment's default
    last_synced_at: datetime | None
    next_sync_at: datetime | None
    stale_since: datetime | None  # when syncing started failing (the stored copy is served meanwhile)
    sync_error: str | None


def view(account: Account, token: Token | None, posts: int) -> AccountView:
    return AccountView(
        account.id, account.username, account.ig_user_id, account.status, account.status_reason, account.slug,
        token.expires_at if token else None, token.refreshed_at if token else None,
        token.next_refresh_at if token else None,
        tuple(p for p in (token.permissions.split(",") if token else []) if p), token.last_error if token else None,
        posts, account.media_count, account.sync_interval, account.last_synced_at, account.next_sync_at,
        account.stale_since, account.sync_error)


async def _view(session: AsyncSession, account: Account) -> AccountView:
    return view(account, await tokens.get(session, account.id), await media.count(session, account.id))


async def listing(database: Database) -> list[AccountView]:
    async with database.read() as session:
        posts = await media.live_counts(session)
        return [view(a, await tokens.get(session, a.id), posts.get(a.id, 0)) for a in await accounts.listing(session)]


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
        return await _view(session, account)


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
        fresh_account = await session.get(Account, account.id)
        assert fresh_account is not None
        return await _view(session, fresh_account)


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
        return await _view(session, fresh)


def _syncable(account: Account, now: datetime) -> None:
    """Refuse a sync on demand that cannot work, or that would make things worse."""
    if account.status != "active":
        why = f" ({account.status_reason})" if account.status_reason else ""
        then = "reconnect it first" if account.status == "needs_reauth" else "connect it again first"
        raise errors.AccountStateError(f"@{account.username} is {account.status.replace('_', ' ')}{why}: {then}",
                                       status=account.status)
    throttled = (account.sync_error or "").startswith(errors.RateLimitedError.__name__)
    if throttled and account.next_sync_at is not None and account.next_sync_at > now:
        # Calling while throttled prolongs the block: the scheduled sync waits exactly as long as Instagram said.
        raise errors.AccountStateError(f"Instagram is throttling @{account.username}; filmroll syncs it again at "
                                       f"{account.next_sync_at:%H:%M} UTC, when Instagram allows", status="throttled")


async def set_sync_interval(database: Database, ref: str, seconds: int | None, *, default: timedelta,
                            actor: str | None) -> AccountView:
    """Sync this account every ``seconds`` from now on (None: the deployment's ``default``). Its next sync moves to
    one new interval after the last; an account never synced yet, or waiting out a failure, keeps its moment."""
    account = await _find(database, ref)
    now = database.clock.now()
    async with database.transaction() as session:
        fresh = await session.get(Account, account.id)
        assert fresh is not None
        fresh.sync_interval, fresh.updated_at = seconds, now
        if fresh.status == "active" and fresh.last_synced_at is not None and fresh.stale_since is None:
            fresh.next_sync_at = fresh.last_synced_at + (timedelta(seconds=seconds) if seconds else default)
        every = f"every {_minutes(seconds)}" if seconds else f"at the default interval ({_minutes(default)})"
        await events.record(session, "account.sync_interval", f"@{fresh.username} is now synced {every}", at=now,
                             account_id=fresh.id, actor=actor)
        return await _view(session, fresh)


async def sync_soon(database: Database, account_id: int, *, actor: str | None) -> AccountView:
    """Make the account due now: the next free worker syncs it (the web UI's *Sync now*)."""
    now = database.clock.now()
    async with database.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise errors.AccountNotFoundError(f"no connected account has id {account_id}")
        _syncable(account, now)
        account.next_sync_at = now
        await events.record(session, "account.sync_requested", f"@{account.username}: sync requested", at=now,
                            account_id=account.id, actor=actor)
        return await _view(session, account)


@dataclass(frozen=True)
class SyncReport:
    outcome: str  # the Syncer's: synced, synced_full, needs_reauth, sync_retry, sync_throttled, stale_lease
    account: AccountView
    posts_before: int


async def sync_now(syncer: Syncer, ref: str, *, full: bool = False,
                   lease: timedelta = timedelta(seconds=60)) -> SyncReport:
    """Sync one account in this process, now, under its sync lease like any worker (renewed while it runs, so a long
    full pass is never taken over); refused while another worker holds it."""
    database = syncer.database
    account = await _find(database, ref)
    _syncable(account, database.clock.now())
    async with database.read() as session:
        posts_before = await media.count(session, account.id)
    async with database.transaction() as session:
        claim = await leases.claim_sync(session, account.id, owner=syncer.owner, now=await database.now(),
                                        lease=lease)
    if claim is None:
        async with database.read() as session:
            fresh = await session.get(Account, account.id)
        assert fresh is not None
        _syncable(fresh, database.clock.now())
        raise errors.AccountStateError(f"@{account.username} is being synced by a worker right now; try again in a "
                                       "minute", status="busy")

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            async with database.transaction() as session:
                await leases.renew_syncs(session, [account.id], owner=syncer.owner, now=await database.now(),
                                         lease=lease)

    renewer = asyncio.create_task(renew())
    try:
        outcome = await syncer.run(claim, full=full)
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)  # a failed renewal shows as a refused final write
    async with database.read() as session:
        fresh = await session.get(Account, account.id)
        assert fresh is not None
        return SyncReport(outcome, await _view(session, fresh), posts_before)


def _minutes(interval: int | timedelta) -> str:
    minutes = (interval.total_seconds() if isinstance(interval, timedelta) else interval) / 60
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
