"""Source queries, and the sync and mirror claims (their leases are columns of ``sources``; see ``store/lease.py``).
Nothing here commits; the caller's transaction decides.

A claim carries what its job needs of the source's account too (its status, provider, sealed token): a source that
reads through an account is synced only while that account is active and holds a token.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.batch import Fenced
from filmroll.store.database import rowcount
from filmroll.store.lease import Claim, Claimable, Lease
from filmroll.store.tables import Account, Source, Token
from filmroll.vocabulary import AccountStatus, SourceKind, SourceStatus

C = TypeVar("C", bound=Claim)
_SOURCES: Table = Source.__table__  # type: ignore[assignment]
SYNC = Lease("sync", _SOURCES, "id", "sync_lease_owner", "sync_lease_until")
MIRROR = Lease("mirror", _SOURCES, "id", "mirror_lease_owner", "mirror_lease_until")
# The profile columns a sync writes on the account of an account source.
PROFILE_COLUMNS = ("username", "name", "account_type", "profile_picture_url", "followers_count", "follows_count",
                   "media_count")


def describe(kind: str, query: str, username: str | None, account_id: int | None) -> str:
    """How people and logs name a source: ``@bakery`` (an account's own posts), ``#sourdough``, ``@otherbrand``
    (another profile), or ``kind query`` for a registered kind."""
    if kind == SourceKind.ACCOUNT:
        return f"@{username}" if username else f"account {account_id}"
    if kind == SourceKind.HASHTAG:
        return f"#{query}"
    if kind == SourceKind.PROFILE:
        return f"@{query}"
    return f"{kind} {query}".strip()


async def add(session: AsyncSession, *, kind: str, account_id: int | None, query: str = "",
              now: datetime) -> Source:
    """A new source, due for its first sync now."""
    source = Source(kind=kind, account_id=account_id, query=query, status=SourceStatus.ACTIVE, created_at=now,
                    next_sync_at=now, sync_failures=0, mirror_failures=0)
    session.add(source)
    await session.flush()
    return source


async def of_account(session: AsyncSession, account_id: int, *, for_update: bool = False) -> Source | None:
    """The account's own source (its posts and profile picture)."""
    query = select(Source).where(Source.account_id == account_id, Source.kind == SourceKind.ACCOUNT)
    return (await session.execute(query.with_for_update() if for_update else query)).scalar_one_or_none()


async def own(session: AsyncSession) -> dict[int, Source]:
    """account id -> its own source, for every account."""
    return await of_accounts(session, None)


async def of_accounts(session: AsyncSession, account_ids: Sequence[int] | None) -> dict[int, Source]:
    """account id -> its own source, for ``account_ids`` (None: every account)."""
    query = select(Source).where(Source.kind == SourceKind.ACCOUNT)
    if account_ids is not None:
        query = query.where(Source.account_id.in_(account_ids))
    found: dict[int, Source] = {}
    for source in (await session.execute(query)).scalars():
        if source.account_id is not None:
            found[source.account_id] = source
    return found


async def ensure_of_account(session: AsyncSession, account_id: int, *, now: datetime) -> Source:
    """The account's own source, made if it has none yet (a new connection), and due now."""
    source = await of_account(session, account_id, for_update=True)
    if source is None:
        return await add(session, kind=SourceKind.ACCOUNT, account_id=account_id, now=now)
    source.next_sync_at = now
    return source


async def ids(session: AsyncSession) -> list[int]:
    return list((await session.execute(select(Source.id))).scalars())


async def ids_of_account(session: AsyncSession, account_id: int) -> list[int]:
    """Every source of the account: its own, and those that read through it."""
    return list((await session.execute(select(Source.id).where(Source.account_id == account_id))).scalars())


async def account_sources(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, int]:
    """account id -> its own source's id."""
    if not account_ids:
        return {}
    rows = await session.execute(select(Source.account_id, Source.id).where(
        Source.kind == SourceKind.ACCOUNT, Source.account_id.in_(list(account_ids))))
    return {account_id: source_id for account_id, source_id in rows if account_id is not None}


async def unschedule_own(session: AsyncSession, account_id: int) -> None:
    """The account's own source is due for no sync (the account stopped being active)."""
    await session.execute(update(Source).where(Source.kind == SourceKind.ACCOUNT, Source.account_id == account_id)
                          .values(next_sync_at=None).execution_options(synchronize_session=False))


async def make_due(session: AsyncSession, account_ids: Sequence[int], now: datetime) -> int:
    """The accounts' own sources are due for a sync now; returns how many."""
    if not account_ids:
        return 0
    result = await session.execute(update(Source).where(
        Source.kind == SourceKind.ACCOUNT, Source.account_id.in_(list(account_ids))).values(next_sync_at=now)
        .execution_options(synchronize_session=False))
    return rowcount(result)


class SourceClaim(Claim):
    """A claim on a source's row: logged by how people name the source."""

    KEY: ClassVar[str] = "source_id"
    source_id: int
    kind: str
    query: str
    account_id: int | None
    username: str | None

    @property
    def label(self) -> str:
        return describe(self.kind, self.query, self.username, self.account_id)


def _through_a_working_account() -> ColumnElement[bool]:
    """A source that reads through no account, or through an active one with a token."""
    return or_(Source.account_id.is_(None), and_(Account.status == AccountStatus.ACTIVE, Token.account_id.is_not(None)))


def _with_accounts(kinds: Collection[str]) -> Select[Any]:
    return (select(Source.id).outerjoin(Account, Account.id == Source.account_id)
            .outerjoin(Token, Token.account_id == Source.account_id).where(Source.kind.in_(list(kinds))))


async def _claims(session: AsyncSession, rows: Sequence[Any], until: datetime, make: Callable[..., C],
                  returning: Sequence[str], of_account: Callable[[Any, Any], dict[str, Any]]) -> list[C]:
    """Claims of leased rows (``returning``: ``id, kind, query, account_id, …``), with what ``of_account`` takes
    from the row's account, read in one query for them all."""
    wanted = {row[3] for row in rows if row[3] is not None}
    accounts: dict[int, Any] = {}
    if wanted:
        found = await session.execute(
            select(Account.id, Account.username, Account.status, Account.updated_at, Account.provider,
                   Account.ig_user_id, Account.profile_picture_url, Token.ciphertext, Token.key_id, Token.permissions)
            .outerjoin(Token, Token.account_id == Account.id).where(Account.id.in_(wanted)))
        accounts = {account.id: account for account in found}
    return [make(**_named(returning, row), lease_until=until,
                 **(of_account(row, accounts[row[3]]) if row[3] in accounts else {})) for row in rows]


def _named(returning: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A leased row's columns by the claim's field names (the key is ``source_id``)."""
    return {("source_id" if name == "id" else name): value for name, value in zip(returning, row, strict=True)}


# ----- sync -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncClaim(SourceClaim):
    source_id: int
    kind: str
    query: str
    account_id: int | None
    full_synced_at: datetime | None
    sync_failures: int
    sync_interval_minutes: int | None  # None: the deployment's default (SyncPolicy.interval)
    insights_at: datetime | None
    media_fingerprint: str | None
    stale_since: datetime | None  # set while syncs fail: the feed serves the last good copy
    lease_until: datetime
    # Of the account it belongs to or reads through (None: a source that needs none).
    ig_user_id: str | None = None
    provider: str | None = None  # a Provider: whose client reads it
    ciphertext: bytes | None = None
    key_id: str | None = None
    permissions: str = ""
    username: str | None = None
    top_synced_at: datetime | None = None  # a hashtag source's last read of its top posts


_SYNC_RETURNS = ("id", "kind", "query", "account_id", "full_synced_at", "sync_failures", "sync_interval_minutes",
                 "insights_at", "media_fingerprint", "stale_since", "top_synced_at")


def _sync_fields(row: Any, account: Any) -> dict[str, Any]:
    return {"username": account.username, "provider": account.provider, "ig_user_id": account.ig_user_id,
            "ciphertext": account.ciphertext, "key_id": account.key_id, "permissions": account.permissions or ""}


async def _sync_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[SyncClaim]:
    return await _claims(session, rows, until, SyncClaim, _SYNC_RETURNS, _sync_fields)


def syncs(kinds: Collection[str]) -> Claimable[SyncClaim]:
    """The sync claims of the sources of ``kinds`` (those a worker knows how to sync): active sources whose account,
    if they read through one, is active and holds a token (``filmroll sync`` of any other is refused)."""
    return Claimable(
        SYNC, lambda now: _with_accounts(kinds).where(Source.status == SourceStatus.ACTIVE,
                                                      _through_a_working_account()),
        lambda now: (Source.next_sync_at <= now,), Source.next_sync_at, _SYNC_RETURNS, _sync_claims)


SYNCS = syncs([SourceKind.ACCOUNT])


def _keep_if_null(table: Table, column: str) -> ColumnElement[Any]:
    target = table.c[column]
    return func.coalesce(bindparam(column, type_=target.type), target)


_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
# The bookkeeping of a routine (incremental, successful) sync, built once, so the hundreds of syncs a second pay no
# statement construction or cache-key work: the source's schedule (fenced on its lease), then its account's profile.
# Profile fields Instagram left out keep their stored value.
_ROUTINE_SYNC = (
    _SOURCES.update()
    .where(_SOURCES.c.id == bindparam("source_id"), _SOURCES.c.sync_lease_owner == bindparam("owner"))
    .values(sync_lease_owner=None, sync_lease_until=None, last_synced_at=bindparam("started"),
            next_sync_at=bindparam("next_sync_at"), stale_since=None, sync_failures=0, sync_error=None,
            sync_failure_kind=None, usage_percent=bindparam("usage_percent"),
            media_fingerprint=bindparam("media_fingerprint"), insights_at=_keep_if_null(_SOURCES, "insights_at")))
_PROFILE = (
    _ACCOUNTS.update().where(_ACCOUNTS.c.id == bindparam("account_id"))
    .values(updated_at=bindparam("started"), **{c: _keep_if_null(_ACCOUNTS, c) for c in PROFILE_COLUMNS}))


def synced_routinely(*, owner: str, source_id: int, account_id: int, started: datetime, next_sync_at: datetime,
                     usage_percent: int, media_fingerprint: str, insights_at: datetime | None,
                     profile: dict[str, object]) -> Fenced:
    """:func:`synced` for the common case, as prepared fenced writes (see ``store/batch.py``)."""
    return Fenced(_ROUTINE_SYNC, {
        "owner": owner, "source_id": source_id, "started": started, "next_sync_at": next_sync_at,
        "usage_percent": usage_percent, "media_fingerprint": media_fingerprint, "insights_at": insights_at},
        then=(_PROFILE, {"account_id": account_id, "started": started,
                         **{c: profile.get(c) for c in PROFILE_COLUMNS}}))


_ROUTINE_POLL = (
    _SOURCES.update()
    .where(_SOURCES.c.id == bindparam("source_id"), _SOURCES.c.sync_lease_owner == bindparam("owner"))
    .values(sync_lease_owner=None, sync_lease_until=None, last_synced_at=bindparam("started"),
            next_sync_at=bindparam("next_sync_at"), stale_since=None, sync_failures=0, sync_error=None,
            sync_failure_kind=None, media_fingerprint=bindparam("media_fingerprint")))


def polled_routinely(*, owner: str, source_id: int, started: datetime, next_sync_at: datetime,
                     media_fingerprint: str) -> Fenced:
    """The bookkeeping of a poll of other people's posts that found nothing new (a source without an account
    profile to write): one prepared fenced write."""
    return Fenced(_ROUTINE_POLL, {"owner": owner, "source_id": source_id, "started": started,
                                  "next_sync_at": next_sync_at, "media_fingerprint": media_fingerprint})


async def synced(session: AsyncSession, *, owner: str, source_id: int, values: dict[str, object],
                 profile: dict[str, object] | None = None, account_id: int | None = None) -> bool:
    """Record a sync's outcome on the source and give its lease back, if we still hold it; and, then only, the
    ``profile`` columns Instagram gave on the source's account."""
    if not await SYNC.finish(session, source_id, owner=owner, values=values):
        return False
    if profile and account_id is not None:
        await session.execute(update(Account).where(Account.id == account_id).values(**profile)
                              .execution_options(synchronize_session=False))
    return True


# ----- the media mirror -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MirrorClaim(SourceClaim):
    source_id: int
    kind: str
    query: str
    account_id: int | None
    mirror_failures: int
    mirror_collected_at: datetime | None  # the collector's last run over this source
    lease_until: datetime
    # A disconnected or revoked account's sources are only collected: their status, and since when.
    status: str = AccountStatus.ACTIVE
    status_since: datetime | None = None
    profile_picture_url: str | None = None  # an account source's
    ciphertext: bytes | None = None  # None once the token is gone: stored URLs are all there is
    key_id: str | None = None
    provider: str | None = None
    username: str | None = None
    ig_user_id: str | None = None  # the account it reads through


_MIRROR_RETURNS = ("id", "kind", "query", "account_id", "mirror_failures", "mirror_collected_at")


def _mirror_fields(row: Any, account: Any) -> dict[str, Any]:
    return {"username": account.username, "status": account.status, "status_since": account.updated_at,
            "provider": account.provider, "ig_user_id": account.ig_user_id, "ciphertext": account.ciphertext,
            "key_id": account.key_id,
            "profile_picture_url": account.profile_picture_url if row[1] == SourceKind.ACCOUNT else None}


async def _mirror_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[MirrorClaim]:
    return await _claims(session, rows, until, MirrorClaim, _MIRROR_RETURNS, _mirror_fields)


def mirrors(kinds: Collection[str] | None) -> Claimable[MirrorClaim]:
    """The mirror claims of the sources of ``kinds`` (None: of every kind, for the collector alone), whatever their
    status: a disconnected account's files are collected by its sources' mirror passes."""
    return Claimable(MIRROR, lambda now: select(Source.id).where(*([] if kinds is None else
                                                                   [Source.kind.in_(list(kinds))])),
                     lambda now: (Source.next_mirror_at <= now,), Source.next_mirror_at, _MIRROR_RETURNS,
                     _mirror_claims)


MIRRORS = mirrors([SourceKind.ACCOUNT])


async def mirrored(session: AsyncSession, *, owner: str, source_id: int, values: dict[str, object]) -> bool:
    """Record a mirror pass's outcome on the source and give its lease back, if we still hold it."""
    return await MIRROR.finish(session, source_id, owner=owner, values=values)


async def still_mirroring(session: AsyncSession, *, owner: str, source_id: int) -> bool:
    """Whether we still hold the source's mirror lease (checked before each post's files are recorded)."""
    held = await session.execute(select(Source.id).where(Source.id == source_id, Source.mirror_lease_owner == owner))
    return held.scalar_one_or_none() is not None
