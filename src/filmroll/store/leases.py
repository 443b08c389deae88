"""Every lease and claim statement, in one place.

Four leases on three tables are leased, each by its own pair of columns, through one :class:`Lease`:

    TOKEN  tokens.lease_owner / lease_until          refresh and probe (one token operation at a time)
    SYNC   accounts.sync_lease_owner / _until        sync (token work is unaffected)
    ALERT  alerts.lease_owner / lease_until          webhook delivery
    MIRROR accounts.mirror_lease_owner / _until      the media mirror and its collector (one pass per account)

A claim is one atomic ``UPDATE … WHERE key IN (<due rows> LIMIT n) RETURNING …``:

* PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers claim disjoint rows without
  waiting on each other.
* SQLite: SQLAlchemy drops ``FOR UPDATE`` for this dialect; safety comes from the write transaction's
  ``BEGIN IMMEDIATE`` (one writer at a time) and the single atomic UPDATE … RETURNING.

Times come from the database clock (``Database.now()``), so workers on machines with skewed clocks agree on what is
due and when a lease has expired. An expired lease is simply claimable again. Every write a worker makes after a
network call is fenced on the lease owner (and, for tokens, ``version``): a worker whose lease was taken over writes
nothing. The fence is the owner, not the expiry, so a worker cut off from the database for longer than its lease
still lands its write afterwards if nobody took the row over meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Table, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import accounts
from filmroll.store.batch import Fenced
from filmroll.store.database import rowcount
from filmroll.store.lease import Lease as Lease
from filmroll.store.lease import retry_due
from filmroll.store.tables import Account, Alert, Feed, FeedSource, Token
from filmroll.vocabulary import AccountStatus, AlertStatus, FailureKind

_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
_TOKENS: Table = Token.__table__  # type: ignore[assignment]
_ALERTS: Table = Alert.__table__  # type: ignore[assignment]
_T = TypeVar("_T", "RefreshClaim", "ProbeClaim")  # the claims of the token's lease


TOKEN = Lease("token", _TOKENS, "account_id", "lease_owner", "lease_until")
SYNC = Lease("sync", _ACCOUNTS, "id", "sync_lease_owner", "sync_lease_until")
ALERT = Lease("alert", _ALERTS, "id", "lease_owner", "lease_until")
MIRROR = Lease("mirror", _ACCOUNTS, "id", "mirror_lease_owner", "mirror_lease_until")
PUBLISH = Lease("publish", Feed.__table__, "id", "publish_lease_owner", "publish_lease_until")  # type: ignore[arg-type]


# ----- token: refresh and probe -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefreshClaim:
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    issued_at: datetime
    expires_at: datetime
    refresh_failures: int
    refresh_started_at: datetime | None
    lease_until: datetime
    username: str | None = None

    @property
    def leased_id(self) -> int:
        return self.account_id

    @property
    def label(self) -> str:
        return accounts.label(self.account_id, self.username)


_REFRESH_RETURNS = ("account_id", "version", "ciphertext", "key_id", "issued_at", "expires_at", "refresh_failures",
                    "refresh_started_at")


async def _token_claims(session: AsyncSession, kind: type[_T], returns: tuple[str, ...], rows: Sequence[Any],
                        until: datetime) -> list[_T]:
    """Claims from the rows a token lease returned, with their accounts' usernames (for the logs)."""
    names = await accounts.usernames(session, [row[0] for row in rows])
    return [kind(**dict(zip(returns, row, strict=True)), lease_until=until, username=names.get(row[0]))
            for row in rows]


def _active() -> ColumnElement[bool]:
    return Account.status == AccountStatus.ACTIVE


async def claim_refreshes(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                          limit: int) -> list[RefreshClaim]:
    """Lease up to ``limit`` tokens whose refresh is due, oldest due first."""
    due = (select(Token.account_id).join(Account, Account.id == Token.account_id)
           .where(_active(), Token.kind == "long", Token.next_refresh_at <= now,
                  retry_due(Token.next_attempt_at, now), TOKEN.free(now))
           .order_by(Token.next_refresh_at).limit(limit)
           .with_for_update(skip_locked=True, of=Token))
    until = now + lease
    rows = await TOKEN.take(session, due, owner=owner, until=until, returning=_REFRESH_RETURNS)
    return await _token_claims(session, RefreshClaim, _REFRESH_RETURNS, rows, until)


async def claim_refresh(session: AsyncSession, account_id: int, *, owner: str, now: datetime,
                        lease: timedelta) -> RefreshClaim | None:
    """Lease one account's token for a refresh now, due or not (``filmroll token refresh``); None while someone
    else holds the token's lease (a worker refreshing or probing it)."""
    chosen = (select(Token.account_id).where(Token.account_id == account_id, Token.kind == "long", TOKEN.free(now))
              .with_for_update(skip_locked=True))
    until = now + lease
    rows = await TOKEN.take(session, chosen, owner=owner, until=until, returning=_REFRESH_RETURNS)
    claims = await _token_claims(session, RefreshClaim, _REFRESH_RETURNS, rows, until)
    return claims[0] if claims else None


@dataclass(frozen=True)
class ProbeClaim:
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    lease_until: datetime
    username: str | None = None

    @property
    def leased_id(self) -> int:
        return self.account_id

    @property
    def label(self) -> str:
        return accounts.label(self.account_id, self.username)


_PROBE_RETURNS = ("account_id", "version", "ciphertext", "key_id")


async def claim_probes(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                       limit: int) -> list[ProbeClaim]:
    """Lease up to ``limit`` tokens due for their health probe. Shares the token's lease with refreshes, so a
    token is never probed and refreshed at the same time."""
    due = (select(Token.account_id).join(Account, Account.id == Token.account_id)
           .where(_active(), Token.next_probe_at <= now, TOKEN.free(now))
           .order_by(Token.next_probe_at).limit(limit)
           .with_for_update(skip_locked=True, of=Token))
    until = now + lease
    rows = await TOKEN.take(session, due, owner=owner, until=until, returning=_PROBE_RETURNS)
    return await _token_claims(session, ProbeClaim, _PROBE_RETURNS, rows, until)


async def claim_probe(session: AsyncSession, account_id: int, *, owner: str, now: datetime,
                      lease: timedelta) -> ProbeClaim | None:
    """Lease one account's token for a probe now, due or not (``filmroll probe``); None while someone else holds
    the token's lease."""
    chosen = (select(Token.account_id).where(Token.account_id == account_id, TOKEN.free(now))
              .with_for_update(skip_locked=True))
    until = now + lease
    rows = await TOKEN.take(session, chosen, owner=owner, until=until, returning=_PROBE_RETURNS)
    claims = await _token_claims(session, ProbeClaim, _PROBE_RETURNS, rows, until)
    return claims[0] if claims else None


_PROBED = (
    update(_TOKENS)
    .where(_TOKENS.c.account_id == bindparam("account"), _TOKENS.c.version == bindparam("leased_version"),
           _TOKENS.c.lease_owner == bindparam("owner"))
    .values(last_probe_at=bindparam("now"), next_probe_at=bindparam("next_probe_at"), lease_owner=None,
            lease_until=None))


def probed(*, owner: str, account_id: int, version: int, now: datetime, next_probe_at: datetime) -> Fenced:
    """Record a probe's outcome and give the lease back: one prepared fenced write (see ``store/batch.py``)."""
    # (Bound names differ from the table's column names: SQLAlchemy reserves those for SET.)
    return Fenced(_PROBED, {"owner": owner, "account": account_id, "leased_version": version, "now": now,
                            "next_probe_at": next_probe_at})


def _token_fence(owner: str, account_id: int, version: int) -> tuple[ColumnElement[bool], ...]:
    return Token.account_id == account_id, Token.version == version, Token.lease_owner == owner


async def mark_refresh_started(session: AsyncSession, *, owner: str, account_id: int, version: int,
                               now: datetime) -> bool:
    """The crash marker: set before calling Instagram, cleared by the fenced write of the result."""
    result = await session.execute(
        update(Token).where(*_token_fence(owner, account_id, version))
        .values(refresh_started_at=now).execution_options(synchronize_session=False))
    return rowcount(result) == 1


async def store_refreshed(session: AsyncSession, *, owner: str, account_id: int, version: int, ciphertext: bytes,
                          key_id: str, issued_at: datetime, expires_at: datetime, refreshed_at: datetime,
                          next_refresh_at: datetime, next_probe_at: datetime | None = None) -> bool:
    """Write a refreshed token if we still hold the lease and nobody else changed the row; keeps the lease."""
    result = await session.execute(
        update(Token).where(*_token_fence(owner, account_id, version))
        .values(ciphertext=ciphertext, key_id=key_id, issued_at=issued_at, expires_at=expires_at,
                refreshed_at=refreshed_at, next_refresh_at=next_refresh_at, version=version + 1, refresh_failures=0,
                refresh_error=None, refresh_failure_kind=None, next_attempt_at=None, refresh_started_at=None,
                next_probe_at=next_probe_at)
        .execution_options(synchronize_session=False))
    return rowcount(result) == 1


async def reschedule(session: AsyncSession, *, owner: str, account_id: int, version: int, error: str | None,
                     next_attempt_at: datetime | None, failure: FailureKind | None, count_failure: bool,
                     next_refresh_at: datetime | None = None) -> bool:
    """After a failed attempt: remember why, when to try again, and give the lease back."""
    values: dict[str, object] = {"refresh_error": error[:500] if error else None, "refresh_failure_kind": failure,
                                 "next_attempt_at": next_attempt_at, "refresh_started_at": None, "lease_owner": None,
                                 "lease_until": None}
    if count_failure:
        values["refresh_failures"] = Token.refresh_failures + 1
    if next_refresh_at is not None:
        values["next_refresh_at"] = next_refresh_at
    result = await session.execute(
        update(Token).where(*_token_fence(owner, account_id, version))
        .values(**values).execution_options(synchronize_session=False))
    return rowcount(result) == 1


# ----- sync -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyncClaim:
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
    lease_until: datetime
    username: str | None = None

    @property
    def leased_id(self) -> int:
        return self.account_id

    @property
    def label(self) -> str:
        return accounts.label(self.account_id, self.username)


def _sync_due(now: datetime) -> Select[Any]:
    return (select(Account.id).join(Token, Token.account_id == Account.id)
            .where(_active(), Account.next_sync_at <= now, SYNC.free(now)))


async def claim_syncs(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                      limit: int) -> list[SyncClaim]:
    """Lease up to ``limit`` accounts due for a sync (the account's own lease; token work is unaffected)."""
    due = _sync_due(now).order_by(Account.next_sync_at).limit(limit).with_for_update(skip_locked=True, of=Account)
    return await _lease_syncs(session, due, owner=owner, until=now + lease)


async def claim_sync(session: AsyncSession, account_id: int, *, owner: str, now: datetime,
                     lease: timedelta) -> SyncClaim | None:
    """Lease one active account for a sync now, due or not (``filmroll sync``); None if it is not active, has no
    token, or another worker holds its sync lease."""
    chosen = (select(Account.id).join(Token, Token.account_id == Account.id)
              .where(Account.id == account_id, _active(), SYNC.free(now))
              .with_for_update(skip_locked=True, of=Account))
    claims = await _lease_syncs(session, chosen, owner=owner, until=now + lease)
    return claims[0] if claims else None


_SYNC_RETURNS = ("id", "ig_user_id", "full_synced_at", "sync_failures", "sync_interval_minutes", "insights_at",
                 "media_fingerprint", "stale_since", "username")


async def _lease_syncs(session: AsyncSession, chosen: Select[Any], *, owner: str, until: datetime) -> list[SyncClaim]:
    claimed = await SYNC.take(session, chosen, owner=owner, until=until, returning=_SYNC_RETURNS)
    leased = {row[0]: dict(zip(("account_id", *_SYNC_RETURNS[1:]), row, strict=True)) for row in claimed}
    if not leased:
        return []
    sealed = await session.execute(select(Token.account_id, Token.ciphertext, Token.key_id, Token.permissions)
                                   .where(Token.account_id.in_(list(leased))))
    return [SyncClaim(**leased[account_id], ciphertext=ciphertext, key_id=key_id, permissions=permissions,
                      lease_until=until)
            for account_id, ciphertext, key_id, permissions in sealed]


PROFILE_COLUMNS = accounts.PROFILE_COLUMNS


def _keep_if_null(column: str) -> ColumnElement[Any]:
    target = _ACCOUNTS.c[column]
    return func.coalesce(bindparam(column, type_=target.type), target)


# The bookkeeping of a routine (incremental, successful) sync: built once, so the hundreds of syncs a second pay no
# statement construction or cache-key work. Profile fields Instagram left out keep their stored value.
_ROUTINE_SYNC = (
    update(_ACCOUNTS)
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


# ----- alerts -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertClaim:
    alert_id: int
    account_id: int
    kind: str
    token_version: int
    reason: str
    created_at: datetime
    attempts: int
    username: str | None = None

    @property
    def leased_id(self) -> int:
        return self.alert_id

    @property
    def label(self) -> str:
        return f"{self.kind} alert {self.alert_id} for {accounts.label(self.account_id, self.username)}"


async def claim_alerts(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                       limit: int) -> list[AlertClaim]:
    due = (select(Alert.id).where(Alert.status == AlertStatus.PENDING, Alert.next_attempt_at <= now, ALERT.free(now))
           .order_by(Alert.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
    columns = ("id", "account_id", "kind", "token_version", "reason", "created_at", "attempts")
    rows = await ALERT.take(session, due, owner=owner, until=now + lease, returning=columns)
    names = await accounts.usernames(session, [row[1] for row in rows])
    return [AlertClaim(**dict(zip(("alert_id", *columns[1:]), row, strict=True)), username=names.get(row[1]))
            for row in rows]


async def alert_finished(session: AsyncSession, alert_id: int, *, owner: str, **values: object) -> bool:
    """Record a delivery attempt's result and give the lease back; fenced on our lease."""
    result = await session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values).execution_options(synchronize_session=False))
    return rowcount(result) == 1


# ----- the media mirror -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MirrorClaim:
    account_id: int
    status: str  # an AccountStatus: a disconnected or revoked account's pass only collects its files
    profile_picture_url: str | None
    mirror_failures: int
    updated_at: datetime
    mirror_collected_at: datetime | None  # the collector's last run over this account
    ciphertext: bytes | None  # None once the token is gone: stored URLs are all there is
    key_id: str | None
    lease_until: datetime
    username: str | None = None

    @property
    def leased_id(self) -> int:
        return self.account_id

    @property
    def label(self) -> str:
        return accounts.label(self.account_id, self.username)


_MIRROR_RETURNS = ("id", "status", "profile_picture_url", "mirror_failures", "updated_at", "mirror_collected_at",
                   "username")


async def claim_mirrors(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                        limit: int) -> list[MirrorClaim]:
    """Lease up to ``limit`` accounts whose mirror pass is due (any status: a disconnected account's files are
    collected by it)."""
    due = (select(Account.id).where(Account.next_mirror_at <= now, MIRROR.free(now))
           .order_by(Account.next_mirror_at).limit(limit).with_for_update(skip_locked=True, of=Account))
    return await _lease_mirrors(session, due, owner=owner, until=now + lease)


async def claim_mirror(session: AsyncSession, account_id: int, *, owner: str, now: datetime,
                       lease: timedelta) -> MirrorClaim | None:
    """Lease one account's mirror now, due or not (``filmroll mirror``, ``filmroll storage gc``); None while
    another process holds it."""
    chosen = select(Account.id).where(Account.id == account_id, MIRROR.free(now)).with_for_update(
        skip_locked=True, of=Account)
    claims = await _lease_mirrors(session, chosen, owner=owner, until=now + lease)
    return claims[0] if claims else None


async def _lease_mirrors(session: AsyncSession, chosen: Select[Any], *, owner: str,
                         until: datetime) -> list[MirrorClaim]:
    claimed = await MIRROR.take(session, chosen, owner=owner, until=until, returning=_MIRROR_RETURNS)
    if not claimed:
        return []
    sealed: dict[int, tuple[bytes | None, str | None]] = {row[0]: (row[1], row[2]) for row in await session.execute(
        select(Token.account_id, Token.ciphertext, Token.key_id).where(Token.account_id.in_([r[0] for r in claimed])))}
    return [MirrorClaim(account_id, status, picture, failures, updated_at, collected,
                        *sealed.get(account_id, (None, None)), lease_until=until, username=username)
            for account_id, status, picture, failures, updated_at, collected, username in claimed]


async def mirrored(session: AsyncSession, *, owner: str, account_id: int, values: dict[str, object]) -> bool:
    """Record a mirror pass's outcome on the account and give its lease back, if we still hold it."""
    return await MIRROR.finish(session, account_id, owner=owner, values=values)


async def still_mirroring(session: AsyncSession, *, owner: str, account_id: int) -> bool:
    """Whether we still hold the account's mirror lease (checked before each post's files are recorded)."""
    held = await session.execute(select(Account.id).where(Account.id == account_id,
                                                          Account.mirror_lease_owner == owner))
    return held.scalar_one_or_none() is not None


# ----- publish: a feed's files, written again after it changed ---------------------------------------------------

@dataclass(frozen=True)
class PublishClaim:
    feed_id: int
    slug: str
    publish_failures: int

    @property
    def leased_id(self) -> int:
        return self.feed_id

    @property
    def label(self) -> str:
        return f"feed {self.slug}"


def feed_version() -> Any:
    """A feed's version in SQL: the later of its ``changed_at`` and its sources' newest ``last_synced_at`` (what
    ``store.feeds.versions`` reads for the web tier, as one value)."""
    newest = (select(func.max(Account.last_synced_at)).join(FeedSource, FeedSource.account_id == Account.id)
              .where(FeedSource.feed_id == Feed.id).scalar_subquery())
    return case((newest > Feed.changed_at, newest), else_=Feed.changed_at)


async def claim_publishes(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                          limit: int) -> list[PublishClaim]:
    """Lease up to ``limit`` feeds whose version moved past the one last published (and not backing off)."""
    version = feed_version()
    due = (select(Feed.id).where(or_(Feed.published_version.is_(None), Feed.published_version < version),
                                 or_(Feed.next_publish_at.is_(None), Feed.next_publish_at <= now), PUBLISH.free(now))
           .order_by(Feed.id).limit(limit).with_for_update(skip_locked=True, of=Feed))
    rows = await PUBLISH.take(session, due, owner=owner, until=now + lease,
                              returning=("id", "slug", "publish_failures"))
    return [PublishClaim(*row) for row in rows]


async def published(session: AsyncSession, *, owner: str, feed_id: int, values: dict[str, object]) -> bool:
    """Record a publish's outcome on the feed and give its lease back, if we still hold it."""
    return await PUBLISH.finish(session, feed_id, owner=owner, values=values)


async def version_of(session: AsyncSession, feed_id: int) -> datetime | None:
    found: datetime | None = (await session.execute(
        select(feed_version().label("version")).where(Feed.id == feed_id))).scalar_one_or_none()
    return found
