"""The append-only event log: every state change of an account, for people to read. Never a secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.tables import Event


async def record(session: AsyncSession, kind: str, message: str, *, at: datetime, account_id: int | None = None,
                 actor: str | None = None) -> Event:
    event = Event(at=at, account_id=account_id, kind=kind, message=message, actor=actor)
    session.add(event)
    await session.flush()
    return event


async def recent(session: AsyncSession, *, account_id: int | None = None, limit: int = 50) -> list[Event]:
    query = select(Event).order_by(Event.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(Event.account_id == account_id)
    return list((await session.execute(query)).scalars())


async def page(session: AsyncSession, *, before: int | None, limit: int, account_id: int | None = None) -> list[Event]:
    """Events newest first, older than the event ``before`` (keyset paging by id)."""
    query = select(Event).order_by(Event.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Event.id < before)
    if account_id is not None:
        query = query.where(Event.account_id == account_id)
    return list((await session.execute(query)).scalars())


async def get(session: AsyncSession, event_id: int) -> Event | None:
    return await session.get(Event, event_id)


async def same_moment(session: AsyncSession, event: Event) -> list[Event]:
    """The events of the same kind family written in the same transaction's moment by the same actor (one sign-in
    that connected several accounts)."""
    rows = await session.execute(select(Event).where(Event.at == event.at, Event.kind.like("account.%"),
                                                     Event.actor == event.actor).order_by(Event.id).limit(100))
    return list(rows.scalars())
