"""Reconnect links: single use, expiring, stored as a SHA-256 of their secret (the secret itself is only ever in
the webhook that carries it and in the owner's address bar)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.states import digest
from filmroll.store.tables import OAuthState, ReconnectLink


async def create(session: AsyncSession, account_id: int, secret: str, *, now: datetime,
                 ttl: timedelta) -> ReconnectLink:
    # Expired links are kept a week (so an owner who comes late is told "expired", not "unknown"), then dropped.
    await session.execute(delete(ReconnectLink).where(ReconnectLink.expires_at < now - timedelta(days=7)))
    link = ReconnectLink(account_id=account_id, secret_hash=digest(secret), created_at=now, expires_at=now + ttl)
    session.add(link)
    await session.flush()
    return link


async def find(session: AsyncSession, secret: str) -> ReconnectLink | None:
    return (await session.execute(select(ReconnectLink).where(ReconnectLink.secret_hash == digest(secret)))).scalar()


async def take(session: AsyncSession, link_id: int, now: datetime) -> bool:
    """Mark the link used; exactly one of two concurrent callers gets True."""
    result = await session.execute(
        update(ReconnectLink).where(ReconnectLink.id == link_id, ReconnectLink.used_at.is_(None),
                                    ReconnectLink.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session=False))
    return rowcount(result) == 1


async def give_back(session: AsyncSession, link_id: int) -> None:
    """Undo :func:`take` when the sign-in it started failed, so the owner can try again."""
    await session.execute(update(ReconnectLink).where(ReconnectLink.id == link_id).values(used_at=None)
                          .execution_options(synchronize_session=False))


async def drop(session: AsyncSession, link_id: int) -> None:
    await session.execute(delete(ReconnectLink).where(ReconnectLink.id == link_id))


async def retire_for_account(session: AsyncSession, account_id: int, now: datetime) -> None:
    """The account's status changed (it works again, or was disconnected, revoked or deleted): every link still out
    for it stops working, and so does every sign-in at Instagram such a link started and nobody finished yet."""
    await session.execute(update(ReconnectLink).where(ReconnectLink.account_id == account_id,
                                                      ReconnectLink.used_at.is_(None))
                          .values(used_at=now).execution_options(synchronize_session=False))
    of_account = select(ReconnectLink.id).where(ReconnectLink.account_id == account_id).scalar_subquery()
    await session.execute(update(OAuthState).where(OAuthState.reconnect_link_id.in_(of_account),
                                                   OAuthState.used_at.is_(None))
                          .values(used_at=now).execution_options(synchronize_session=False))
