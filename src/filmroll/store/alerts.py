"""The alert outbox: raising an alert in the caller's transaction, finding tokens about to expire, and the worker's
delivery claims on these rows (``store/lease.py``).

An alert is keyed on (account, kind, token version): raising it again for the same dead or dying token is a no-op,
so a sweep may run as often as it likes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import accounts
from filmroll.store.database import dialect_insert, rowcount
from filmroll.store.lease import Claim, Claimable, Lease
from filmroll.store.tables import Account, Alert, Event, Token, UTCDateTime
from filmroll.vocabulary import AccountStatus, AlertStatus, Provider

ALERT = Lease("alert", Alert.__table__, "id", "lease_owner", "lease_until")  # type: ignore[arg-type]
NEEDS_REAUTH = "account.needs_reauth"
REVOKED = "account.revoked"  # the owner removed the app (Meta's deauthorize callback)
EXPIRING = "token.expiring"


async def raise_alert(session: AsyncSession, *, account_id: int, kind: str, reason: str, now: datetime) -> None:
    """Queue one alert for the account's current token (once per token version)."""
    version = (await session.execute(select(Token.version).where(Token.account_id == account_id))).scalar()
    await session.execute(
        dialect_insert(session, Alert).values(account_id=account_id, kind=kind, token_version=version or 0,
                                              reason=reason[:1000], created_at=now, status=AlertStatus.PENDING,
                                              attempts=0, next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "token_version"]))


def _ending(column: Any, now: datetime, within: timedelta) -> ColumnElement[bool]:
    return and_(column < now + within, column > now)


async def sweep_expiring(session: AsyncSession, *, now: datetime, within: timedelta,
                         actor: str | None = None) -> int:
    """Queue ``token.expiring``, with its event, for every active account whose token ends within ``within`` and
    whose last refresh attempt failed or was throttled (``refresh_error``: cleared by a successful refresh), and
    for every account of a provider that never refreshes (Facebook Login) whose token or data access ends within
    ``within``: its owner must reconnect. Returns how many were new. A token merely on its way to being refreshed
    does not alert. Two workers sweeping at once queue each alert once: a conflict is skipped, and only the rows
    inserted get an event."""
    refreshed = Token.provider.in_([p.value for p in Provider if p.refreshes])
    unrefreshed_reason = (f"Facebook access ends in under {within.days} days (the token or the app's data access): "
                          "the owner must reconnect")
    sweeps = (
        (f"the token expires in under {within.days} days and no refresh has succeeded",
         and_(refreshed, _ending(Token.expires_at, now, within), Token.refresh_error.is_not(None))),
        (unrefreshed_reason, and_(~refreshed, or_(_ending(Token.expires_at, now, within),
                                                  _ending(Token.data_access_expires_at, now, within)))),
    )
    already = exists().where(Alert.account_id == Token.account_id, Alert.kind == EXPIRING,
                             Alert.token_version == Token.version)
    at = literal(now, UTCDateTime())
    count = 0
    for reason, ending in sweeps:
        dying = (select(Token.account_id, literal(EXPIRING), Token.version, literal(reason), at,
                        literal(AlertStatus.PENDING.value), literal(0), at)
                 .join(Account, Account.id == Token.account_id)
                 .where(Account.status == AccountStatus.ACTIVE, ending, ~already))
        queued = (await session.execute(
            dialect_insert(session, Alert).from_select(["account_id", "kind", "token_version", "reason",
                                                        "created_at", "status", "attempts", "next_attempt_at"], dying)
            .on_conflict_do_nothing(index_elements=["account_id", "kind", "token_version"])
            .returning(Alert.account_id))).scalars().all()
        if queued:
            await session.execute(insert(Event), [{"at": now, "account_id": account_id, "kind": EXPIRING,
                                                   "message": reason, "actor": actor} for account_id in queued])
        count += len(queued)
    return count


async def for_account(session: AsyncSession, account_id: int) -> list[Alert]:
    return list((await session.execute(select(Alert).where(Alert.account_id == account_id)
                                       .order_by(Alert.id))).scalars())


@dataclass(frozen=True)
class AlertClaim(Claim):
    alert_id: int
    account_id: int
    kind: str
    token_version: int
    reason: str
    created_at: datetime
    attempts: int
    username: str | None = None
    KEY = "alert_id"

    @property
    def label(self) -> str:
        return f"{self.kind} alert {self.alert_id} for {accounts.label(self.account_id, self.username)}"


_RETURNS = ("id", "account_id", "kind", "token_version", "reason", "created_at", "attempts")


async def _claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[AlertClaim]:
    names = await accounts.usernames(session, [row[1] for row in rows])
    return [AlertClaim(**dict(zip(("alert_id", *_RETURNS[1:]), row, strict=True)), username=names.get(row[1]))
            for row in rows]


ALERTS: Claimable[AlertClaim] = Claimable(
    ALERT, lambda now: select(Alert.id).where(Alert.status == AlertStatus.PENDING),
    lambda now: (Alert.next_attempt_at <= now,), Alert.next_attempt_at, _RETURNS, _claims)


async def finished(session: AsyncSession, alert_id: int, *, owner: str, **values: object) -> bool:
    """Record a delivery attempt's result and give the lease back; fenced on our lease."""
    result = await session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values).execution_options(synchronize_session=False))
    return rowcount(result) == 1
