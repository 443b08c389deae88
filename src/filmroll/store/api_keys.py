"""The management API's keys (``api_keys``). Only a key's SHA-256 is ever stored or looked up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.tables import ApiKey


async def add(session: AsyncSession, *, name: str, scope: str, prefix: str, sha256: str, created_at: datetime,
              created_by: str | None) -> ApiKey:
    key = ApiKey(name=name, scope=scope, prefix=prefix, sha256=sha256, created_at=created_at, created_by=created_by)
    session.add(key)
    await session.flush()
    return key


async def live_by_hash(session: AsyncSession, sha256: str) -> ApiKey | None:
    return (await session.execute(select(ApiKey).where(ApiKey.sha256 == sha256,
                                                       ApiKey.revoked_at.is_(None)))).scalar_one_or_none()


async def listing(session: AsyncSession, *, revoked: bool = False) -> Sequence[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalars().all()


async def find(session: AsyncSession, ref: str) -> Sequence[ApiKey]:
    """The live keys ``ref`` names: an id (digits), else a name (several keys may share one during a rotation)."""
    by = ApiKey.id == int(ref) if ref.isascii() and ref.isdigit() else ApiKey.name == ref
    return (await session.execute(select(ApiKey).where(by, ApiKey.revoked_at.is_(None)))).scalars().all()


async def revoke(session: AsyncSession, ids: Sequence[int], at: datetime) -> int:
    result = await session.execute(update(ApiKey).where(ApiKey.id.in_(ids), ApiKey.revoked_at.is_(None))
                                   .values(revoked_at=at))
    return rowcount(result)


async def used(session: AsyncSession, key_id: int, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
