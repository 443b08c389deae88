"""Token rows. The ciphertext comes from the vault; this module never sees a plaintext token.

The refresh and probe claims share the token's lease (one token operation at a time; ``store/lease.py``). The
writes that follow a network call are fenced on the lease and the version; re-encryption here is fenced on the
version alone, so a refresh that lands meanwhile is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import accounts
from filmroll.store.accounts import AccountClaim
from filmroll.store.batch import Fenced
from filmroll.store.database import rowcount
from filmroll.store.lease import Claimable, Lease, retry_due
from filmroll.store.tables import Account, Token, UTCDateTime
from filmroll.vault import Sealed
from filmroll.vocabulary import FailureKind, Provider

_TOKENS: Table = Token.__table__  # type: ignore[assignment]
TOKEN = Lease("token", _TOKENS, "account_id", "lease_owner", "lease_until")


async def get(session: AsyncSession, account_id: int) -> Token | None:
    return await session.get(Token, account_id)


async def of_accounts(session: AsyncSession, account_ids: Sequence[int]) -> list[Token]:
    if not account_ids:
        return []
    return list((await session.execute(select(Token).where(Token.account_id.in_(account_ids)))).scalars())


async def put(session: AsyncSession, account_id: int, sealed: Sealed, *, kind: str, permissions: tuple[str, ...],
              issued_at: datetime, expires_at: datetime, next_refresh_at: datetime | None,
              next_probe_at: datetime | None = None, provider: str = Provider.INSTAGRAM_LOGIN,
              data_access_expires_at: datetime | None = None) -> Token:
    """Store the account's token, replacing any previous one in place (a reconnect)."""
    token = await session.get(Token, account_id, with_for_update=True)
    if token is None:
        token = Token(account_id=account_id, version=0)
        session.add(token)
    token.ciphertext, token.key_id = sealed.ciphertext, sealed.key_id
    token.kind, token.permissions, token.provider = kind, ",".join(permissions), provider
    token.issued_at, token.expires_at, token.next_refresh_at = issued_at, expires_at, next_refresh_at
    token.next_probe_at, token.data_access_expires_at = next_probe_at, data_access_expires_at
    token.refreshed_at, token.refresh_started_at = None, None
    token.refresh_failures, token.refresh_error, token.refresh_failure_kind = 0, None, None
    token.next_attempt_at = None
    token.lease_owner, token.lease_until = None, None
    token.version = (token.version or 0) + 1
    await session.flush()
    return token


async def reseal_if_version(session: AsyncSession, account_id: int, version: int, sealed: Sealed) -> bool:
    """Re-encryption under another key; the token itself (and so the version) does not change."""
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version)
        .values(ciphertext=sealed.ciphertext, key_id=sealed.key_id).execution_options(synchronize_session=False))
    return rowcount(result) == 1


async def remove(session: AsyncSession, account_id: int) -> bool:
    result = await session.execute(delete(Token).where(Token.account_id == account_id))
    return rowcount(result) == 1


async def key_ids_in_use(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Token.key_id, Token.account_id))
    counts: dict[str, int] = {}
    for ident, _ in rows:
        counts[ident] = counts.get(ident, 0) + 1
    return counts


async def sealed_with_other_keys(session: AsyncSession, primary_id: str, limit: int) -> list[Token]:
    rows = await session.execute(select(Token).where(Token.key_id != primary_id).order_by(Token.account_id)
                                 .limit(limit))
    return list(rows.scalars())


# ----- claims: refresh and probe, on the token's lease ------------------------------------------------------------

@dataclass(frozen=True)
class RefreshClaim(AccountClaim):
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    issued_at: datetime
    expires_at: datetime
    refresh_failures: int
    refresh_started_at: datetime | None
    provider: str  # a Provider: whose client refreshes it
    lease_until: datetime
    username: str | None = None


@dataclass(frozen=True)
class ProbeClaim(AccountClaim):
    account_id: int
    version: int
    ciphertext: bytes
    key_id: str
    provider: str
    lease_until: datetime
    username: str | None = None
    ig_user_id: str = ""  # whose token it is: a Facebook user token reads several accounts


_REFRESH_RETURNS = ("account_id", "version", "ciphertext", "key_id", "issued_at", "expires_at", "refresh_failures",
                    "refresh_started_at", "provider")
_PROBE_RETURNS = ("account_id", "version", "ciphertext", "key_id", "provider")


async def _refresh_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[RefreshClaim]:
    names = await accounts.usernames(session, [row[0] for row in rows])  # the logs name them
    return [RefreshClaim(**dict(zip(_REFRESH_RETURNS, row, strict=True)), lease_until=until,
                         username=names.get(row[0])) for row in rows]


async def _probe_claims(session: AsyncSession, rows: Sequence[Any], until: datetime) -> list[ProbeClaim]:
    found = await session.execute(select(Account.id, Account.username, Account.ig_user_id)
                                  .where(Account.id.in_([row[0] for row in rows])))
    names = {account_id: (username, ig_user_id) for account_id, username, ig_user_id in found}
    return [ProbeClaim(**dict(zip(_PROBE_RETURNS, row, strict=True)), lease_until=until,
                       username=names.get(row[0], (None, ""))[0], ig_user_id=names.get(row[0], (None, ""))[1])
            for row in rows]


def _of_active_accounts() -> ColumnElement[bool]:
    """A worker takes only active accounts' tokens; a command asked for one (``token refresh``, ``probe``) takes
    any."""
    active = select(Account.id).where(Account.id == Token.account_id, accounts.active())
    return active.exists()


# Oldest due first; a failed refresh waits out its backoff. Only the long-lived tokens of providers that refresh them.
REFRESHES: Claimable[RefreshClaim] = Claimable(
    TOKEN, lambda now: select(Token.account_id).where(Token.kind == "long",
                                                      Token.provider.in_([p for p in Provider if p.refreshes])),
    lambda now: (_of_active_accounts(), Token.next_refresh_at <= now, retry_due(Token.next_attempt_at, now)),
    Token.next_refresh_at, _REFRESH_RETURNS, _refresh_claims)
PROBES: Claimable[ProbeClaim] = Claimable(
    TOKEN, lambda now: select(Token.account_id), lambda now: (_of_active_accounts(), Token.next_probe_at <= now),
    Token.next_probe_at, _PROBE_RETURNS, _probe_claims)


def _fence(owner: str, account_id: int, version: int) -> tuple[ColumnElement[bool], ...]:
    return Token.account_id == account_id, Token.version == version, Token.lease_owner == owner


_PROBED = (
    update(_TOKENS)
    .where(_TOKENS.c.account_id == bindparam("account"), _TOKENS.c.version == bindparam("leased_version"),
           _TOKENS.c.lease_owner == bindparam("owner"))
    .values(last_probe_at=bindparam("now"), next_probe_at=bindparam("next_probe_at"), lease_owner=None,
            lease_until=None,
            expires_at=func.coalesce(bindparam("known_expires_at", type_=UTCDateTime()), _TOKENS.c.expires_at),
            data_access_expires_at=func.coalesce(bindparam("known_data_access_expires_at", type_=UTCDateTime()),
                                                 _TOKENS.c.data_access_expires_at)))


def probed(*, owner: str, account_id: int, version: int, now: datetime, next_probe_at: datetime,
           expires_at: datetime | None = None, data_access_expires_at: datetime | None = None) -> Fenced:
    """Record a probe's outcome and give the lease back: one prepared fenced write (see ``store/batch.py``). A probe
    that learned when the token or its data access ends (Facebook's ``debug_token``) records that too."""
    # (Bound names differ from the table's column names: SQLAlchemy reserves those for SET.)
    return Fenced(_PROBED, {"owner": owner, "account": account_id, "leased_version": version, "now": now,
                            "next_probe_at": next_probe_at, "known_expires_at": expires_at,
                            "known_data_access_expires_at": data_access_expires_at})


async def mark_refresh_started(session: AsyncSession, *, owner: str, account_id: int, version: int,
                               now: datetime) -> bool:
    """The crash marker: set before calling Instagram, cleared by the fenced write of the result."""
    result = await session.execute(
        update(Token).where(*_fence(owner, account_id, version))
        .values(refresh_started_at=now).execution_options(synchronize_session=False))
    return rowcount(result) == 1


async def store_refreshed(session: AsyncSession, *, owner: str, account_id: int, version: int, ciphertext: bytes,
                          key_id: str, issued_at: datetime, expires_at: datetime, refreshed_at: datetime,
                          next_refresh_at: datetime, next_probe_at: datetime | None = None) -> bool:
    """Write a refreshed token if we still hold the lease and nobody else changed the row; keeps the lease."""
    result = await session.execute(
        update(Token).where(*_fence(owner, account_id, version))
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
        update(Token).where(*_fence(owner, account_id, version))
        .values(**values).execution_options(synchronize_session=False))
    return rowcount(result) == 1
