"""Token rows. The ciphertext comes from the vault; this module never sees a plaintext token.

The writes that follow a network call are fenced on the lease and the version (``store/leases.py``); re-encryption
here is fenced on the version alone, so a refresh that lands meanwhile is never overwritten.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.tables import Token
from filmroll.vault import Sealed


async def get(session: AsyncSession, account_id: int) -> Token | None:
    return await session.get(Token, account_id)


async def put(session: AsyncSession, account_id: int, sealed: Sealed, *, kind: str, permissions: tuple[str, ...],
              issued_at: datetime, expires_at: datetime, next_refresh_at: datetime | None,
              next_probe_at: datetime | None = None) -> Token:
    """Store the account's token, replacing any previous one in place (a reconnect)."""
    token = await session.get(Token, account_id, with_for_update=True)
    if token is None:
        token = Token(account_id=account_id, version=0)
        session.add(token)
    token.ciphertext, token.key_id = sealed.ciphertext, sealed.key_id
    token.kind, token.permissions = kind, ",".join(permissions)
    token.issued_at, token.expires_at, token.next_refresh_at = issued_at, expires_at, next_refresh_at
    token.next_probe_at = next_probe_at
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
