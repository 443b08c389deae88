"""Account queries, and the sync and mirror claims (their leases are columns of ``accounts``; see
``store/lease.py``). Nothing here commits; the caller's transaction decides."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.batch import Fenced
from filmroll.store.lease import Claim, Claimable, Lease
from filmroll.store.tables import Account, Token
from filmroll.vocabulary import AccountStatus, Provider

_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
SYNC = Lease("sync", _ACCOUNTS, "id", "sync_lease_owner", "sync_lease_until")
MIRROR = Lease("mirror", _ACCOUNTS, "id", "mirror_lease_owner", "mirror_lease_until")

_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


async def _free_slug(session: AsyncSession, wanted: str) -> str:
    base = _SLUG_UNSAFE.sub("-", wanted.lower()).strip("-")[:60] or "account"
    taken = set((await session.execute(
        select(Account.slug).where(or_(Account.slug == base, Account.slug.like(f"{base}-%"))))).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


PROFILE_COLUMNS = ("username", "name", "account_type", "profile_picture_url", "followers_count", "follows_count",
                   "media_count")


async def upsert(session: AsyncSession, *, ig_user_id: str, app_scoped_id: str | None,
                 profile: Mapping[str, object], now: datetime,
                 provider: str = Provider.INSTAGRAM_LOGIN) -> tuple[Account, bool]:
    """Create or refresh the account of ``ig_user_id`` through ``provider``; returns (account, created).
    Reconnecting keeps the row; its status is the caller's to set (``service/transitions.py``). ``profile`` holds
    :data:`PROFILE_COLUMNS`; one that is missing or None keeps its stored value."""
    account = (await session.execute(
        select(Account).where(Account.provider == provider, Account.ig_user_id == ig_user_id)
        .with_for_update())).scalar_one_or_none()
    created = account is None
    if account is None:
        account = Account(ig_user_id=ig_user_id, provider=provider, created_at=now,
                          slug=await _free_slug(session, str(profile.get("username") or ig_user_id)))
        session.add(account)
    account.app_scoped_id = app_scoped_id or account.app_scoped_id
    for name in PROFILE_COLUMNS:
        value = profile.get(name)
        if value is not None:
            setattr(account, name, value)
    account.connected_at = account.updated_at = now
    account.next_sync_at = now
    await session.flush()
    return account, created


async def by_scoped_id(session: AsyncSession, scoped_user_id: str) -> Account | None:
    """The account an app-scoped id Meta sends names: matched against both ids kept per account (the reference
    does not settle which one Instagram Login's callbacks carry)."""
    return await session.scalar(select(Account).where(
        or_(Account.app_scoped_id == scoped_user_id, Account.ig_user_id == scoped_user_id)))


async def find(session: AsyncSession, ref: str) -> Account | None:
    """By id, Instagram user id, @username or feed slug."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():  # str.isdigit takes superscripts and other scripts' digits too
        conditions = [Account.ig_user_id == ref]
        if len(ref) < 12:  # a row id; Instagram ids are far longer
            conditions.append(Account.id == int(ref))
        found = await session.execute(select(Account).where(or_(*conditions)))
    else:
        name = ref.lstrip("@").lower()
        found = await session.execute(select(Account).where(or_(func.lower(Account.username) == name,
                                                                Account.slug == name)))
    rows = list(found.scalars())
    return rows[0] if len(rows) == 1 else None


async def listing(session: AsyncSession) -> list[Account]:
    return list((await session.execute(select(Account).order_by(Account.id))).scalars())


async def ids(session: AsyncSession) -> list[int]:
    return list((await session.execute(select(Account.id))).scalars())


async def last_instagram_activity(session: AsyncSession) -> tuple[int, datetime | None]:
    """(how many tokens filmroll holds, the newest time one of them reached Instagram: a connect, a refresh, a
    probe, a sync). Webhook deliveries are Meta's side of the same activity (``store.webhooks.last_received``)."""
    tokens_held, refreshed, probed = (await session.execute(
        select(func.count(Token.account_id), func.max(Token.refreshed_at), func.max(Token.last_probe_at)))).one()
    connected, synced = (await session.execute(
        select(func.max(Account.connected_at), func.max(Account.last_synced_at)))).one()
    found = [t for t in (refreshed, probed, connected, synced) if t is not None]
    return tokens_held, max(found) if found else None


def label(account_id: int, username: str | None) -> str:
    """How logs name an account: ``@username``, or ``account N`` before its profile is known."""
    return f"@{username}" if username else f"account {account_id}"


async def usernames(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, str | None]:
    """The usernames of ``account_ids``, for the claims of tables other than ``accounts`` (their logs name them)."""
    if not account_ids:
        return {}
    rows = await session.execute(select(Account.id, Account.username).where(Account.id.in_(list(account_ids))))
    return {account_id: username for account_id, username in rows}


class AccountClaim(Claim):
    """A claim on an account's row or on a row keyed by its account (its token): logged as the account."""

    KEY: ClassVar[str] = "account_id"
    account_id: int
    username: str | None

    @property
    def label(self) -> str:
        return label(self.account_id, self.username)


def active() -> ColumnElement[bool]:
    return Account.status == AccountStatus.ACTIVE


# ----- sync -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncClaim(AccountClaim):
    account_id: int
    ig_user_id: str
    full_synced_at: datetime | None
    sync_failures: int
    sync_interval_minutes: int | None  # None: the deployment's default (SyncPolicy.interval)
    insights_at: datetime | None
    media_fingerprint: str | None
    stale_since: datetime | None  # set while syncs fail: the feed serves the last good copy
    ciphertext: bytes
    key_id: str
    permissions: str
    provider: str  # a Provider: whose client reads it
    lease_until: datetime
    username: str | None = None


_SYNC_RETURNS = ("id", "ig_user_id", "full_synced_at", "sync_failures", "sync_interval_minutes", "insights_at",
                 "media_fingerprint", "stale_since", "provider", "username")


async def _sync_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[SyncClaim]:
    leased = {row[0]: dict(zip(("account_id", *_SYNC_RETURNS[1:]), row, strict=True)) for row in rows}
    sealed = await session.execute(select(Token.account_id, Token.ciphertext, Token.key_id, Token.permissions)
                                   .where(Token.account_id.in_(list(leased))))
    return [SyncClaim(**leased[account_id], ciphertext=ciphertext, key_id=key_id, permissions=permissions,
                      lease_until=until)
            for account_id, ciphertext, key_id, permissions in sealed]


def _syncable(now: datetime) -> Select[Any]:
    """An active account with a token (``filmroll sync`` of any other is refused)."""
    return select(Account.id).join(Token, Token.account_id == Account.id).where(active())


SYNCS: Claimable[SyncClaim] = Claimable(
    SYNC, _syncable, lambda now: (Account.next_sync_at <= now,), Account.next_sync_at, _SYNC_RETURNS, _sync_claims)


def _keep_if_null(column: str) -> ColumnElement[Any]:
    target = _ACCOUNTS.c[column]
    return func.coalesce(bindparam(column, type_=target.type), target)


# The bookkeeping of a routine (incremental, successful) sync: built once, so the hundreds of syncs a second pay no
# statement construction or cache-key work. Profile fields Instagram left out keep their stored value.
_ROUTINE_SYNC = (
    _ACCOUNTS.update()
    .where(_ACCOUNTS.c.id == bindparam("account_id"), _ACCOUNTS.c.sync_lease_owner == bindparam("owner"))
    .values(sync_lease_owner=None, sync_lease_until=None, last_synced_at=bindparam("started"),
            updated_at=bindparam("started"), next_sync_at=bindparam("next_sync_at"), stale_since=None, sync_failures=0,
            sync_error=None, sync_failure_kind=None, usage_percent=bindparam("usage_percent"),
            media_fingerprint=bindparam("media_fingerprint"), insights_at=_keep_if_null("insights_at"),
            **{c: _keep_if_null(c) for c in PROFILE_COLUMNS}))


def synced_routinely(*, owner: str, account_id: int, started: datetime, next_sync_at: datetime, usage_percent: int,
                     media_fingerprint: str, insights_at: datetime | None, profile: dict[str, object]) -> Fenced:
    """:func:`synced` for the common case, as one prepared fenced write (see ``store/batch.py``)."""
    return Fenced(_ROUTINE_SYNC, {
        "owner": owner, "account_id": account_id, "started": started, "next_sync_at": next_sync_at,
        "usage_percent": usage_percent, "media_fingerprint": media_fingerprint, "insights_at": insights_at,
        **{c: profile.get(c) for c in PROFILE_COLUMNS}})


async def synced(session: AsyncSession, *, owner: str, account_id: int, values: dict[str, object]) -> bool:
    """Record a sync's outcome on the account and give its lease back, if we still hold it."""
    return await SYNC.finish(session, account_id, owner=owner, values=values)


# ----- the media mirror -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MirrorClaim(AccountClaim):
    account_id: int
    status: str  # an AccountStatus: a disconnected or revoked account's pass only collects its files
    profile_picture_url: str | None
    mirror_failures: int
    updated_at: datetime
    mirror_collected_at: datetime | None  # the collector's last run over this account
    ciphertext: bytes | None  # None once the token is gone: stored URLs are all there is
    key_id: str | None
    provider: str
    lease_until: datetime
    username: str | None = None


_MIRROR_RETURNS = ("id", "status", "profile_picture_url", "mirror_failures", "updated_at", "mirror_collected_at",
                   "provider", "username")


async def _mirror_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[MirrorClaim]:
    sealed: dict[int, tuple[bytes | None, str | None]] = {row[0]: (row[1], row[2]) for row in await session.execute(
        select(Token.account_id, Token.ciphertext, Token.key_id).where(Token.account_id.in_([r[0] for r in rows])))}
    return [MirrorClaim(account_id, status, picture, failures, updated_at, collected,
                        *sealed.get(account_id, (None, None)), provider, lease_until=until, username=username)
            for account_id, status, picture, failures, updated_at, collected, provider, username in rows]


# Any status: a disconnected account's files are collected by its mirror pass.
MIRRORS: Claimable[MirrorClaim] = Claimable(
    MIRROR, lambda now: select(Account.id), lambda now: (Account.next_mirror_at <= now,), Account.next_mirror_at,
    _MIRROR_RETURNS, _mirror_claims)


async def mirrored(session: AsyncSession, *, owner: str, account_id: int, values: dict[str, object]) -> bool:
    """Record a mirror pass's outcome on the account and give its lease back, if we still hold it."""
    return await MIRROR.finish(session, account_id, owner=owner, values=values)


async def still_mirroring(session: AsyncSession, *, owner: str, account_id: int) -> bool:
    """Whether we still hold the account's mirror lease (checked before each post's files are recorded)."""
    held = await session.execute(select(Account.id).where(Account.id == account_id,
                                                          Account.mirror_lease_owner == owner))
    return held.scalar_one_or_none() is not None
