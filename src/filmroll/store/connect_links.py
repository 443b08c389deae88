"""Connect links (``connect_links``): single-use, expiring, only the SHA-256 of each link's secret kept."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.tables import Account, ConnectLink


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def add(session: AsyncSession, secret: str, *, custom_id: str, provider: str, return_url: str | None,
              now: datetime, expires_at: datetime, created_by: str | None) -> ConnectLink:
    link = ConnectLink(secret_hash=digest(secret), custom_id=custom_id, provider=provider, return_url=return_url,
                       created_at=now, expires_at=expires_at, created_by=created_by)
    session.add(link)
    await session.flush()
    return link


async def find(session: AsyncSession, secret: str) -> ConnectLink | None:
    return (await session.execute(select(ConnectLink).where(ConnectLink.secret_hash == digest(secret))))\
        .scalar_one_or_none()


async def take(session: AsyncSession, link_id: int, account_id: int, now: datetime) -> bool:
    """Spend the link on ``account_id``: False when it was spent already, or has expired (nothing written)."""
    result = await session.execute(update(ConnectLink).where(
        ConnectLink.id == link_id, ConnectLink.used_at.is_(None), ConnectLink.expires_at > now)
        .values(used_at=now, account_id=account_id))
    return rowcount(result) == 1


async def label(session: AsyncSession, account_ids: Sequence[int], custom_id: str) -> None:
    await session.execute(update(Account).where(Account.id.in_(account_ids)).values(custom_id=custom_id)
                          .execution_options(synchronize_session=False))
