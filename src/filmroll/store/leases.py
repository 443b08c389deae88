"""Every lease and claim statement, in one place.

A claim is one atomic ``UPDATE … WHERE account_id IN (<due rows> LIMIT n) RETURNING …``:

* PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers claim disjoint rows without
  waiting on each other.
* SQLite: SQLAlchemy drops ``FOR UPDATE`` for this dialect; safety comes from the write transaction's
  ``BEGIN IMMEDIATE`` (one writer at a time) and the single atomic UPDATE … RETURNING.

Times come from the database clock (``Database.now()``), so workers on machines with skewed clocks agree on what is
due and when a lease has expired. An expired lease is simply claimable again. Every write a worker makes after a
network call is fenced on ``lease_owner`` and ``version``: a worker whose lease was taken over writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.batch import Fenced
from filmroll.store.tables import Account, Token

# Core tables, for the prepared statements below (a list of parameters then makes an executemany).
_ACCOUNTS = Account.__table__
_TOKENS = Token.__table__


@dataclass(frozen=True)
class RefreshClaim:
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    issued_at: datetime
    expires_at: datetime
    failure_count: int
    refresh_started_at: datetime | None
    lease_until: datetime


def _free(now: datetime):  # type: ignore[no-untyped-def]
    return or_(Token.lease_until.is_(None), Token.lease_until < now)


async def claim_refreshes(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                          limit: int) -> list[RefreshClaim]:
    """Lease up to ``limit`` tokens whose refresh is due, oldest due first."""
    due = (select(Token.account_id).join(Account, Account.id == Token.account_id)
           .where(Account.status == "active", Token.kind == "long", Token.next_refresh_at <= now,
                  or_(Token.next_attempt_at.is_(None), Token.next_attempt_at <= now), _free(now))
           .order_by(Token.next_refresh_at).limit(limit)
           .with_for_update(skip_locked=True, of=Token))
    until = now + lease
    rows = await session.execute(
        update(Token).where(Token.account_id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=until)
        .returning(Token.account_id, Token.version, Token.ciphertext, Token.key_id, Token.issued_at,
                   Token.expires_at, Token.failure_count, Token.refresh_started_at)
        .execution_options(synchronize_session=False))
    return [RefreshClaim(*row, lease_until=until) for row in rows]


@dataclass(frozen=True)
class ProbeClaim:
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    lease_until: datetime


async def claim_probes(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                       limit: int) -> list[ProbeClaim]:
    """Lease up to ``limit`` tokens due for their health probe. Shares the token's lease with refreshes, so a
    token is never probed and refreshed at the same time."""
    due = (select(Token.account_id).join(Account, Account.id == Token.account_id)
           .where(Account.status == "active", Token.next_probe_at <= now, _free(now))
           .order_by(Token.next_probe_at).limit(limit)
           .with_for_update(skip_locked=True, of=Token))
    until = now + lease
    rows = await session.execute(
        update(Token).where(Token.account_id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=until)
        .returning(Token.account_id, Token.version, Token.ciphertext, Token.key_id)
        .execution_options(synchronize_session=False))
    return [ProbeClaim(*row, lease_until=until) for row in rows]


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


@dataclass(frozen=True)
class SyncClaim:
    account_id: int
    ig_user_id: str
    full_synced_at: datetime | None
    sync_failures: int
    sync_interval: int | None  # seconds; None: the deployment's default (SyncPolicy.interval)
    insights_at: datetime | None
    media_fingerprint: str | None
    stale_since: datetime | None  # set while syncs fail: the feed serves the last good copy
    ciphertext: bytes
    key_id: str
    permissions: str
    lease_until: datetime


async def claim_syncs(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                      limit: int) -> list[SyncClaim]:
    """Lease up to ``limit`` accounts due for a sync (the account's own lease; token work is unaffected)."""
    due = (select(Account.id).join(Token, Token.account_id == Account.id)
           .where(Account.status == "active", Account.next_sync_at <= now, _sync_free(now))
           .order_by(Account.next_sync_at).limit(limit)
           .with_for_update(skip_locked=True, of=Account))
    return await _lease_syncs(session, due, owner=owner, until=now + lease)


async def claim_sync(session: AsyncSession, account_id: int, *, owner: str, now: datetime,
                     lease: timedelta) -> SyncClaim | None:
    """Lease one active account for a sync now, due or not (``filmroll sync``); None if it is not active, has no
    token, or another worker holds its sync lease."""
    chosen = (select(Account.id).join(Token, Token.account_id == Account.id)
              .where(Account.id == account_id, Account.status == "active", _sync_free(now))
              .with_for_update(skip_locked=True, of=Account))
    claims = await _lease_syncs(session, chosen, owner=owner, until=now + lease)
    return claims[0] if claims else None


def _sync_free(now: datetime):  # type: ignore[no-untyped-def]
    return or_(Account.sync_lease_until.is_(None), Account.sync_lease_until < now)


async def _lease_syncs(session: AsyncSession, chosen, *, owner: str,  # type: ignore[no-untyped-def]
                       until: datetime) -> list[SyncClaim]:
    claimed = await session.execute(
        update(Account).where(Account.id.in_(chosen.scalar_subquery()))
        .values(sync_lease_owner=owner, sync_lease_until=until)
        .returning(Account.id, Account.ig_user_id, Account.full_synced_at, Account.sync_failures,
                   Account.sync_interval, Account.insights_at, Account.media_fingerprint, Account.stale_since)
        .execution_options(synchronize_session=False))
    accounts = {row[0]: row for row in claimed}
    if not accounts:
        return []
    sealed = await session.execute(select(Token.account_id, Token.ciphertext, Token.key_id, Token.permissions)
                                   .where(Token.account_id.in_(list(accounts))))
    return [SyncClaim(*accounts[account_id], ciphertext, key_id, permissions, until)
            for account_id, ciphertext, key_id, permissions in sealed]


PROFILE_COLUMNS = ("username", "name", "account_type", "profile_picture_url", "followers_count", "follows_count",
                   "media_count")


def _keep_if_null(column: str):  # type: ignore[no-untyped-def]
    target = _ACCOUNTS.c[column]
    return func.coalesce(bindparam(column, type_=target.type), target)


# The bookkeeping of a routine (incremental, successful) sync: built once, so the hundreds of syncs a second pay no
# statement construction or cache-key work. Profile fields Instagram left out keep their stored value.
_ROUTINE_SYNC = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account_id"), _ACCOUNTS.c.sync_lease_owner == bindparam("owner"))
    .values(sync_lease_owner=None, sync_lease_until=None, last_synced_at=bindparam("started"),
            updated_at=bindparam("started"), next_sync_at=bindparam("next_sync_at"), stale_since=None, sync_failures=0,
            sync_error=None, usage_percent=bindparam("usage_percent"), media_fingerprint=bindparam("media_fingerprint"),
            insights_at=_keep_if_null("insights_at"), **{c: _keep_if_null(c) for c in PROFILE_COLUMNS}))


def synced_routinely(*, owner: str, account_id: int, started: datetime, next_sync_at: datetime, usage_percent: int,
                     media_fingerprint: str, insights_at: datetime | None, profile: dict[str, object]) -> Fenced:
    """:func:`synced` for the common case, as one prepared fenced write (see ``store/batch.py``)."""
    return Fenced(_ROUTINE_SYNC, {
        "owner": owner, "account_id": account_id, "started": started, "next_sync_at": next_sync_at,
        "usage_percent": usage_percent, "media_fingerprint": media_fingerprint, "insights_at": insights_at,
        **{c: profile.get(c) for c in PROFILE_COLUMNS}})


async def synced(session: AsyncSession, *, owner: str, account_id: int, values: dict[str, object]) -> bool:
    """Record a sync's outcome on the account and give its lease back, if we still hold it."""
    result = await session.execute(
        update(Account).where(Account.id == account_id, Account.sync_lease_owner == owner)
        .values(sync_lease_owner=None, sync_lease_until=None, **values).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def renew(session: AsyncSession, account_ids: Sequence[int], *, owner: str, now: datetime,
                lease: timedelta) -> set[int]:
    """Extend our leases; returns the ids we still hold (a missing id means the lease was lost)."""
    if not account_ids:
        return set()
    rows = await session.execute(
        update(Token).where(Token.account_id.in_(account_ids), Token.lease_owner == owner)
        .values(lease_until=now + lease).returning(Token.account_id).execution_options(synchronize_session=False))
    return {row[0] for row in rows}


async def mark_refresh_started(session: AsyncSession, *, owner: str, account_id: int, version: int,
                               now: datetime) -> bool:
    """The crash marker: set before calling Instagram, cleared by the fenced write of the result."""
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version, Token.lease_owner == owner)
        .values(refresh_started_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def store_refreshed(session: AsyncSession, *, owner: str, account_id: int, version: int, ciphertext: bytes,
                          key_id: str, issued_at: datetime, expires_at: datetime, refreshed_at: datetime,
                          next_refresh_at: datetime, next_probe_at: datetime | None = None) -> bool:
    """Write a refreshed token if we still hold the lease and nobody else changed the row; keeps the lease."""
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version, Token.lease_owner == owner)
        .values(ciphertext=ciphertext, key_id=key_id, issued_at=issued_at, expires_at=expires_at,
                refreshed_at=refreshed_at, next_refresh_at=next_refresh_at, version=version + 1, failure_count=0,
                last_error=None, next_attempt_at=None, refresh_started_at=None, next_probe_at=next_probe_at)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def reschedule(session: AsyncSession, *, owner: str, account_id: int, version: int, error: str | None,
                     next_attempt_at: datetime | None, count_failure: bool,
                     next_refresh_at: datetime | None = None) -> bool:
    """After a failed attempt: remember why, when to try again, and give the lease back."""
    values: dict[str, object] = {"last_error": error[:500] if error else None, "next_attempt_at": next_attempt_at,
                                 "refresh_started_at": None, "lease_owner": None, "lease_until": None}
    if count_failure:
        values["failure_count"] = Token.failure_count + 1
    if next_refresh_at is not None:
        values["next_refresh_at"] = next_refresh_at
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version, Token.lease_owner == owner)
        .values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def renew_syncs(session: AsyncSession, account_ids: Sequence[int], *, owner: str, now: datetime,
                      lease: timedelta) -> set[int]:
    if not account_ids:
        return set()
    rows = await session.execute(
        update(Account).where(Account.id.in_(account_ids), Account.sync_lease_owner == owner)
        .values(sync_lease_until=now + lease).returning(Account.id).execution_options(synchronize_session=False))
    return {row[0] for row in rows}


async def release_syncs(session: AsyncSession, account_ids: Sequence[int], *, owner: str) -> int:
    if not account_ids:
        return 0
    result = await session.execute(
        update(Account).where(Account.id.in_(account_ids), Account.sync_lease_owner == owner)
        .values(sync_lease_owner=None, sync_lease_until=None).execution_options(synchronize_session=False))
    return result.rowcount


async def release(session: AsyncSession, account_ids: Sequence[int], *, owner: str) -> int:
    if not account_ids:
        return 0
    result = await session.execute(
        update(Token).where(Token.account_id.in_(account_ids), Token.lease_owner == owner)
        .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
    return result.rowcount

