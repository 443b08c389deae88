"""Use-cases on connected accounts: list them, show a token, refresh or sync one now, set how often it is synced,
disconnect it.

A refresh or a sync asked for from an edge (the CLI, later the web UI) runs the very job a worker would run, under the
same lease, renewed while it runs: it is refused while a worker holds that lease, and a worker cannot take it over
meanwhile. So there is one refresh path and one sync path, whoever starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.secret import Secret
from filmroll.service.policy import MIN_AGE
from filmroll.service.probe import Prober
from filmroll.service.refresh import Refresher
from filmroll.service.sync import Syncer
from filmroll.service.transitions import transition
from filmroll.store import accounts, events, media, sources, tokens
from filmroll.store.database import Database, is_unavailable
from filmroll.store.lease import Lease, claim_one
from filmroll.store.tables import Account, Source, Token
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, FailureKind, Outcome, Provider

T = TypeVar("T")
EDGE_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class AccountView:
    """What `filmroll accounts` and the accounts page show. No secret in here."""

    id: int
    username: str | None
    ig_user_id: str
    provider: str
    status: str
    status_reason: str | None
    slug: str
    token_expires_at: datetime | None
    refreshed_at: datetime | None  # the token's last successful refresh
    next_refresh_at: datetime | None
    permissions: tuple[str, ...]
    refresh_failures: int
    refresh_error: str | None
    posts: int  # live posts stored (not marked deleted)
    media_count: int | None  # what Instagram says the account has
    name: str | None
    followers_count: int | None  # as Instagram last said (None: never read, or not given)
    follows_count: int | None
    sync_interval_minutes: int | None  # None: the deployment's default
    last_synced_at: datetime | None
    next_sync_at: datetime | None
    stale_since: datetime | None  # when syncing started failing (the stored copy is served meanwhile)
    sync_failures: int
    sync_error: str | None
    data_access_expires_at: datetime | None = None  # Facebook Login: the owner reconnects before it
    token_issued_at: datetime | None = None
    custom_id: str | None = None  # an agency's own id for the account (its connect link's)


def view(account: Account, token: Token | None, source: Source | None, posts: int) -> AccountView:
    """``source``: the account's own (its sync's schedule and failures)."""
    return AccountView(
        account.id, account.username, account.ig_user_id, account.provider, account.status, account.status_reason,
        account.slug, token.expires_at if token else None, token.refreshed_at if token else None,
        token.next_refresh_at if token else None,
        tuple(p for p in (token.permissions.split(",") if token else []) if p),
        token.refresh_failures if token else 0, token.refresh_error if token else None,
        posts, account.media_count, account.name, account.followers_count, account.follows_count,
        source.sync_interval_minutes if source else None, source.last_synced_at if source else None,
        source.next_sync_at if source else None, source.stale_since if source else None,
        source.sync_failures if source else 0, source.sync_error if source else None,
        token.data_access_expires_at if token else None, token.issued_at if token else None, account.custom_id)


async def _view(session: AsyncSession, account_id: int) -> AccountView:
    account = await session.get(Account, account_id, populate_existing=True)
    if account is None:
        raise errors.AccountNotFoundError(f"account {account_id} no longer exists")
    source = await sources.of_account(session, account_id)
    posts = await media.count(session, source.id) if source is not None else 0
    return view(account, await tokens.get(session, account_id), source, posts)


async def listing(database: Database, *, status: str | None = None,
                  custom_id: str | None = None) -> list[AccountView]:
    """Every account (or those of a status, or a custom id), by id: read a thousand at a time, four queries each."""
    found: list[AccountView] = []
    while True:
        batch = await page(database, after=found[-1].id if found else None, limit=1000, status=status,
                           custom_id=custom_id)
        found += batch
        if len(batch) < 1000:
            return found


# An account reference: a row id or Instagram id (ASCII digits only: an Arabic-Indic or a bold digit one is not
# account 1), an @username or a slug (Instagram's usernames: letters, digits, '.', '_'; slugs add '-').
_REFERENCE = re.compile(r"[0-9]{1,32}|@?[A-Za-z0-9._-]{1,64}", re.ASCII)


async def page(database: Database, *, after: int | None, limit: int, status: str | None = None,
               provider: str | None = None, username: str | None = None,
               custom_id: str | None = None) -> list[AccountView]:
    """A page of accounts by id (keyset paging), each with its token's and its sync's facts, read in four queries
    whatever the page's size."""
    async with database.read() as session:
        found = await accounts.page(session, after=after, limit=limit, status=status, provider=provider,
                                    username=username, custom_id=custom_id)
        return await _views(session, found)


async def _views(session: AsyncSession, found: list[Account]) -> list[AccountView]:
    ids = [a.id for a in found]
    held = {t.account_id: t for t in await tokens.of_accounts(session, ids)}
    own = await sources.of_accounts(session, ids)
    counts = await media.live_counts(session, [s.id for s in own.values()])
    return [view(a, held.get(a.id), own.get(a.id), counts.get(own[a.id].id, 0) if a.id in own else 0) for a in found]


@dataclass(frozen=True)
class AccountsPage:
    """A page of the admin UI's accounts list: those that need someone first, then by id."""

    accounts: list[AccountView]
    counts: dict[str, int]  # accounts per status (with the username filter, not the status one)
    next_after: tuple[str, int] | None  # where the next page starts; None on the last


async def in_status_order(database: Database, *, after: tuple[str, int] | None, limit: int,
                          status: str | None = None, username: str | None = None) -> AccountsPage:
    if status is not None and status not in {s.value for s in AccountStatus}:
        raise errors.InputError(f"{status[:20]!r} is not an account status")
    async with database.read() as session:
        found = await accounts.in_status_order(session, after=after, limit=limit + 1, status=status,
                                               username=username)
        shown = await _views(session, found[:limit])
        counts = await accounts.status_counts(session, username)
    last = shown[-1] if len(found) > limit else None
    return AccountsPage(shown, counts, (last.status, last.id) if last else None)


def check_reference(ref: str) -> str:
    ref = ref.strip()
    if not _REFERENCE.fullmatch(ref):
        shown = ref[:40].encode("ascii", "backslashreplace").decode()
        raise errors.InputError(f"'{shown}' is not an account reference: use an id (digits 0-9), @username or slug")
    return ref


async def find(database: Database, ref: str) -> Account:
    ref = check_reference(ref)
    async with database.read() as session:
        account = await accounts.find(session, ref)
    if account is None:
        raise errors.AccountNotFoundError(f"no connected account matches {ref!r} (use an id, @username or slug)")
    return account


async def describe(database: Database, ref: str) -> AccountView:
    """One account's facts (no secret), found by id, @username or slug."""
    account = await find(database, ref)
    async with database.read() as session:
        return await _view(session, account.id)


def no_token(account: Account) -> errors.AccountNotFoundError:
    return errors.AccountNotFoundError(f"@{account.username} has no stored token (status: {account.status})")


async def reveal(database: Database, vault: Vault, ref: str, *, actor: str | None) -> tuple[Account, Secret]:
    account = await find(database, ref)
    async with database.transaction() as session:
        token = await tokens.get(session, account.id)
        if token is None:
            raise no_token(account)
        secret = vault.open(token.ciphertext, token.key_id, account.id)
        await events.record(session, "token.revealed", f"token of @{account.username} revealed",
                            at=database.clock.now(), account_id=account.id, actor=actor)
    return account, secret


async def under_lease(database: Database, lease: Lease, key: int, *, owner: str, duration: timedelta,
                      work: Awaitable[T]) -> T:
    """Run ``work`` while renewing our ``lease`` on row ``key``, as a worker renews the leases of its jobs."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(duration.total_seconds() / 3)
            try:
                async with database.transaction() as session:
                    await lease.renew(session, [key], owner=owner, now=await database.now(), lease=duration)
            except Exception as exc:  # an outage: the job's own writes are fenced, and it retries or fails itself
                if not is_unavailable(exc):
                    raise

    renewer = asyncio.create_task(renew())
    try:
        return await work
    except BaseException:
        # Ctrl-C (the command's task cancelled) or a failure: a command that ends leaves no lease behind, or the
        # row would read "busy" for a whole lease period with nobody working on it. A worker's job keeps its lease
        # instead (a bug retries once per lease period); a finished job gave its own back with its result.
        with contextlib.suppress(Exception):
            async with database.transaction() as session:
                await lease.release(session, [key], owner=owner)
        raise
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)


def _refuse_inactive(account: Account, doing: str) -> None:
    if account.status == AccountStatus.ACTIVE:
        return
    why = f" ({account.status_reason})" if account.status_reason else ""
    then = "reconnect it first" if account.status == AccountStatus.NEEDS_REAUTH else "connect it again first"
    raise errors.AccountStateError(f"@{account.username} is {account.status.replace('_', ' ')}{why}, so it cannot "
                                   f"be {doing}: {then}", status=account.status)


@dataclass(frozen=True)
class RefreshReport:
    outcome: Outcome  # the Refresher's (or the Prober's)
    account: AccountView


async def refresh_now(refresher: Refresher, ref: str, *, lease: timedelta = EDGE_LEASE) -> RefreshReport:
    """Refresh one account's token now, through the worker's own leased, crash-marked path. Refused, without a call
    to Instagram, while the account is not active, while its token is too young for Instagram to refresh, and while
    a worker holds the token's lease."""
    database = refresher.database
    account = await find(database, ref)
    _refuse_inactive(account, "refreshed")
    async with database.read() as session:
        token = await tokens.get(session, account.id)
    if token is None:
        raise no_token(account)
    if not Provider(account.provider).refreshes:
        raise errors.AccountStateError(
            f"@{account.username} is connected through Facebook Login, whose tokens are never refreshed: its owner "
            "reconnects before the token or the app's data access ends (`filmroll accounts` says when)",
            status="not_refreshed")
    refreshable_from = token.issued_at + MIN_AGE
    if database.clock.now() < refreshable_from:
        raise errors.AccountStateError(
            f"@{account.username}'s token is under 24 hours old; Instagram refreshes it from "
            f"{refreshable_from:%Y-%m-%d %H:%M} UTC (the workers do it on time by themselves)", status="too_early")
    async with database.transaction() as session:
        claim = await claim_one(session, tokens.REFRESHES, account.id, owner=refresher.owner,
                                now=await database.now(), lease=lease)
    if claim is None:
        raise await _token_busy(database, account)
    return await _run_token_job(database, account.id, owner=refresher.owner, lease=lease, work=refresher.run(claim))


async def probe_now(prober: Prober, ref: str, *, lease: timedelta = EDGE_LEASE) -> RefreshReport:
    """Check one account's token against Instagram now (one `/me` call), through the worker's own leased probe;
    refused while the account is not active and while a worker holds the token's lease."""
    database = prober.database
    account = await find(database, ref)
    _refuse_inactive(account, "probed")
    async with database.transaction() as session:
        claim = await claim_one(session, tokens.PROBES, account.id, owner=prober.owner, now=await database.now(),
                                lease=lease)
    if claim is None:
        raise await _token_busy(database, account)
    return await _run_token_job(database, account.id, owner=prober.owner, lease=lease, work=prober.run(claim))


async def _token_busy(database: Database, account: Account) -> errors.FilmrollError:
    """Why the token's lease could not be taken: there is no token, or a worker holds it (until when)."""
    async with database.read() as session:
        held = await tokens.get(session, account.id)
    if held is None:
        return no_token(account)
    until = f" (its lease runs until {held.lease_until:%H:%M:%S} UTC)" if held.lease_until else ""
    return errors.AccountStateError(f"a worker is refreshing or probing @{account.username}'s token right "
                                    f"now{until}; try again after that", status="busy")


async def _run_token_job(database: Database, account_id: int, *, owner: str, lease: timedelta,
                         work: Awaitable[Outcome]) -> RefreshReport:
    """A refresh or probe from an edge, under the token lease it claimed (renewed while it runs)."""
    outcome = await under_lease(database, tokens.TOKEN, account_id, owner=owner, duration=lease, work=work)
    async with database.read() as session:
        return RefreshReport(outcome, await _view(session, account_id))


async def disconnect(database: Database, ref: str, *, actor: str | None) -> AccountView:
    """Forget the token (the ciphertext is deleted) and stop syncing; the account row and its history stay."""
    account = await find(database, ref)
    now = database.clock.now()
    async with database.transaction() as session:
        await tokens.remove(session, account.id)
        await transition(session, account.id, AccountStatus.DISCONNECTED, now=now, actor=actor,
                         reason=f"disconnected by {actor or 'an operator'}",
                         message=f"@{account.username} disconnected; token deleted")
        return await _view(session, account.id)


async def _syncable(session: AsyncSession, account: Account, now: datetime) -> Source:
    """The account's own source, if a sync of it on demand can work and would not make things worse."""
    _refuse_inactive(account, "synced")
    source = await sources.of_account(session, account.id)
    if source is None:
        raise errors.AccountStateError(f"@{account.username} has nothing to sync yet: connect it again",
                                       status=account.status)
    throttled = source.sync_failure_kind == FailureKind.THROTTLED
    if throttled and source.next_sync_at is not None and source.next_sync_at > now:
        # Calling while throttled prolongs the block: the scheduled sync waits exactly as long as Instagram said.
        raise errors.AccountStateError(f"Instagram is throttling @{account.username}; filmroll syncs it again at "
                                       f"{source.next_sync_at:%H:%M} UTC, when Instagram allows", status="throttled")
    return source


async def set_sync_interval(database: Database, ref: str, minutes: int | None, *, default: timedelta,
                            actor: str | None) -> AccountView:
    """Sync this account every ``minutes`` from now on (None: the deployment's ``default``). Its next sync moves to
    one new interval after the last; an account never synced yet, or waiting out a failure, keeps its moment."""
    account = await find(database, ref)
    now = database.clock.now()
    async with database.transaction() as session:
        fresh = await session.get(Account, account.id)
        source = await sources.of_account(session, account.id, for_update=True)
        assert fresh is not None and source is not None
        source.sync_interval_minutes, fresh.updated_at = minutes, now
        if fresh.status == AccountStatus.ACTIVE and source.last_synced_at is not None and source.stale_since is None:
            source.next_sync_at = source.last_synced_at + (timedelta(minutes=minutes) if minutes else default)
        every = f"every {_minutes(minutes * 60)}" if minutes else f"at the default interval ({_minutes(default)})"
        await events.record(session, "account.sync_interval", f"@{fresh.username} is now synced {every}", at=now,
                            account_id=fresh.id, actor=actor)
        return await _view(session, fresh.id)


async def sync_soon(database: Database, account_id: int, *, actor: str | None) -> AccountView:
    """Make the account due now: the next free worker syncs it (the web UI's *Sync now*)."""
    now = database.clock.now()
    async with database.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise errors.AccountNotFoundError(f"no connected account has id {account_id}")
        source = await _syncable(session, account, now)
        source.next_sync_at = now
        await events.record(session, "account.sync_requested", f"@{account.username}: sync requested", at=now,
                            account_id=account.id, actor=actor)
        return await _view(session, account.id)


@dataclass(frozen=True)
class SyncReport:
    outcome: Outcome  # the Syncer's
    account: AccountView
    posts_before: int


async def sync_now(syncer: Syncer, ref: str, *, full: bool = False, lease: timedelta = EDGE_LEASE) -> SyncReport:
    """Sync one account in this process, now, under its sync lease like any worker (renewed while it runs, so a long
    full pass is never taken over); refused while another worker holds it."""
    database = syncer.database
    account = await find(database, ref)
    async with database.read() as session:
        source = await _syncable(session, account, database.clock.now())
        posts_before = await media.count(session, source.id)
    async with database.transaction() as session:
        claim = await claim_one(session, sources.SYNCS, source.id, owner=syncer.owner, now=await database.now(),
                                lease=lease)
    if claim is None:
        async with database.read() as session:
            fresh = await session.get(Account, account.id)
            assert fresh is not None
            await _syncable(session, fresh, database.clock.now())
        raise errors.AccountStateError(f"@{account.username} is being synced by a worker right now; try again in a "
                                       "minute", status="busy")
    outcome = await under_lease(database, sources.SYNC, source.id, owner=syncer.owner, duration=lease,
                                 work=syncer.run(claim, full=full))
    async with database.read() as session:
        return SyncReport(outcome, await _view(session, account.id), posts_before)


def _minutes(interval: int | timedelta) -> str:
    minutes = (interval.total_seconds() if isinstance(interval, timedelta) else interval) / 60
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
