"""The alert outbox: raising an alert in the caller's transaction, finding tokens about to expire, and the
delivery leases the worker takes (the same claim/renew/release shape as ``store/leases.py``).

An alert is keyed on (account, kind, token version): raising it again for the same dead or dying token is a no-op,
so a sweep may run as often as it likes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.tables import Account, Alert, Event, Token, UTCDateTime

NEEDS_REAUTH = "account.needs_reauth"
EXPIRING = "token.expiring"


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return (sqlite_insert if session.bind.dialect.name == "sqlite" else pg_insert)(Alert)


async def raise_alert(session: AsyncSession, *, account_id: int, kind: str, reason: str, now: datetime) -> None:
    """Queue one alert for the account's current token (once per token version)."""
    version = (await session.execute(select(Token.version).where(Token.account_id == account_id))).scalar()
    await session.execute(
        _insert(session).values(account_id=account_id, kind=kind, token_version=version or 0, reason=reason[:1000],
                                created_at=now, status="pending", attempts=0, next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "token_version"]))


async def sweep_expiring(session: AsyncSession, *, now: datetime, within: timedelta,
                         actor: str | None = None) -> int:
    """Queue ``token.expiring``, with its event, for every active account whose token ends within ``within`` and
    whose last refresh attempt failed or was throttled (``last_error``: cleared by a successful refresh); returns
    how many were new. A token merely on its way to being refreshed does not alert. Two workers sweeping at once
    queue each alert once: a conflict is skipped, and only the rows inserted get an event."""
    already = exists().where(Alert.account_id == Token.account_id, Alert.kind == EXPIRING,
                             Alert.token_version == Token.version)
    reason = f"the token expires in under {within.days} days and no refresh has succeeded"
    at = literal(now, UTCDateTime())
    dying = (select(Token.account_id, literal(EXPIRING), Token.version, literal(reason), at, literal("pending"),
                    literal(0), at)
             .join(Account, Account.id == Token.account_id)
             .where(Account.status == "active", Token.expires_at < now + within, Token.expires_at > now,
                    Token.last_error.is_not(None), ~already))
    queued = (await session.execute(
        _insert(session).from_select(["account_id", "kind", "token_version", "reason", "created_at", "status",
                                      "attempts", "next_attempt_at"], dying)
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "token_version"])
        .returning(Alert.account_id))).scalars().all()
    if queued:
        await session.execute(insert(Event), [{"at": now, "account_id": account_id, "kind": EXPIRING,
                                               "message": reason, "actor": actor} for account_id in queued])
    return len(queued)


@dataclass(frozen=True)
class AlertClaim:
    alert_id: int
    account_id: int
    kind: str
    token_version: int
    reason: str
    created_at: datetime
    attempts: int


def _free(now: datetime):  # type: ignore[no-untyped-def]
    return or_(Alert.lease_until.is_(None), Alert.lease_until < now)


async def claim_deliveries(session: AsyncSession, *, owner: str, now: datetime, lease: timedelta,
                           limit: int) -> list[AlertClaim]:
    due = (select(Alert.id).where(Alert.status == "pending", Alert.next_attempt_at <= now, _free(now))
           .order_by(Alert.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
    rows = await session.execute(
        update(Alert).where(Alert.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(Alert.id, Alert.account_id, Alert.kind, Alert.token_version, Alert.reason, Alert.created_at,
                   Alert.attempts)
        .execution_options(synchronize_session=False))
    return [AlertClaim(*row) for row in rows]


async def renew(session: AsyncSession, ids: Sequence[int], *, owner: str, now: datetime,
                lease: timedelta) -> set[int]:
    if not ids:
        return set()
    rows = await session.execute(
        update(Alert).where(Alert.id.in_(ids), Alert.lease_owner == owner).values(lease_until=now + lease)
        .returning(Alert.id).execution_options(synchronize_session=False))
    return set(rows.scalars())


async def release(session: AsyncSession, ids: Sequence[int], *, owner: str) -> int:
    if not ids:
        return 0
    result = await session.execute(
        update(Alert).where(Alert.id.in_(ids), Alert.lease_owner == owner).values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


async def finish(session: AsyncSession, alert_id: int, *, owner: str, **values: object) -> bool:
    """Record a delivery attempt's result and give the lease back; fenced on our lease."""
    result = await session.execute(
        update(Alert).where(and_(Alert.id == alert_id, Alert.lease_owner == owner))
        .values(lease_owner=None, lease_until=None, **values).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def for_account(session: AsyncSession, account_id: int) -> list[Alert]:
    return list((await session.execute(select(Alert).where(Alert.account_id == account_id)
                                       .order_by(Alert.id))).scalars())
