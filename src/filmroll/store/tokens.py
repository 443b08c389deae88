"""Token rows. The ciphertext comes from the vault; this module never sees a plaintext token.

Writes that follow a network call are fenced: ``replace_if_version`` only writes when the row still has the
version the caller read, so a caller whose view is stale (a lost lease, a concurrent refresh) changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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
    token.failure_count, token.last_error, token.next_attempt_at = 0, None, None
    token.lease_owner, token.lease_until = None, None
    token.version = (token.version or 0) + 1
    await session.flush()
    return token


async def replace_if_version(session: AsyncSession, account_id: int, version: int, sealed: Sealed, *,
                             issued_at: datetime, expires_at: datetime, refreshed_at: datetime,
                             next_refresh_at: datetime | None) -> bool:
    result = await session.execute(
        update(Token)
        .where(Token.account_id == account_id, Token.version == version)
        .values(ciphertext=sealed.ciphertext, key_id=sealed.key_id, issued_at=issued_at, expires_at=expires_at,
                refreshed_at=refreshed_at, next_refresh_at=next_refresh_at, version=version + 1, failure_count=0,
                last_error=None, next_attempt_at=None, refresh_started_at=None)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def reseal_if_version(session: AsyncSession, account_id: int, version: int, sealed: Sealed) -> bool:
    """Re-encryption under another key; the token itself (and so the version) does not change."""
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version)
        .values(ciphertext=sealed.ciphertext, key_id=sealed.key_id).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def record_failure(session: AsyncSession, account_id: int, version: int, error: str,
                         next_attempt_at: datetime | None) -> bool:
    result = await session.execute(
        update(Token).where(Token.account_id == account_id, Token.version == version)
        .values(failure_count=Token.failure_count + 1, last_error=error[:500], next_attempt_at=next_attempt_at)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def remove(session: AsyncSession, account_id: int) -> bool:
    result = await session.execute(delete(Token).where(Token.account_id == account_id))
    return result.rowcount == 1


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
