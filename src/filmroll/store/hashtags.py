"""Hashtag ids, kept for good, and the 30-tags-in-7-days ledger of each IG account (hashtag reference §2.5). Nothing
here commits.

A tag counts against an account from its first query for 7 days; querying it again within them costs nothing and
does not restart them; once they are over, the next query counts it anew. The ledger holds, per (account, tag), when
its current 7 days began: ``count`` is the keeper's one write, made (under the account's row lock) before a call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import dialect_insert
from filmroll.store.tables import Account, Hashtag, HashtagSearch

LIMIT = 30
WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Counted:
    name: str
    first_searched_at: datetime

    @property
    def frees_at(self) -> datetime:
        return self.first_searched_at + WINDOW


async def cached_id(session: AsyncSession, name: str) -> str | None:
    return await session.scalar(select(Hashtag.hashtag_id).where(Hashtag.name == name))


async def keep_id(session: AsyncSession, name: str, hashtag_id: str, now: datetime) -> None:
    await session.execute(dialect_insert(session, Hashtag).values(name=name, hashtag_id=hashtag_id, looked_up_at=now)
                          .on_conflict_do_nothing(index_elements=["name"]))


async def kept_ids(session: AsyncSession) -> dict[str, str]:
    """Every kept hashtag id, by name."""
    rows = await session.execute(select(Hashtag.name, Hashtag.hashtag_id))
    return {name: hashtag_id for name, hashtag_id in rows}


async def names_of(session: AsyncSession, hashtag_ids: Sequence[str]) -> dict[str, str]:
    """The names of the kept ids among ``hashtag_ids`` (id → name)."""
    if not hashtag_ids:
        return {}
    rows = await session.execute(select(Hashtag.hashtag_id, Hashtag.name).where(Hashtag.hashtag_id.in_(hashtag_ids)))
    return {hashtag_id: name for hashtag_id, name in rows}


async def ledger(session: AsyncSession, account_id: int, now: datetime) -> list[Counted]:
    """The tags counting against the account now, oldest first (those whose 7 days are over are forgotten)."""
    await session.execute(delete(HashtagSearch).where(HashtagSearch.account_id == account_id,
                                                      HashtagSearch.first_searched_at <= now - WINDOW))
    rows = await session.execute(select(HashtagSearch.name, HashtagSearch.first_searched_at)
                                 .where(HashtagSearch.account_id == account_id)
                                 .order_by(HashtagSearch.first_searched_at, HashtagSearch.name))
    return [Counted(name, at) for name, at in rows]


async def counted(session: AsyncSession, account_id: int, now: datetime) -> list[Counted]:
    """The tags counting against the account now, read only (the expired ones are left for ``ledger`` to forget)."""
    rows = await session.execute(select(HashtagSearch.name, HashtagSearch.first_searched_at)
                                 .where(HashtagSearch.account_id == account_id,
                                        HashtagSearch.first_searched_at > now - WINDOW))
    return [Counted(name, at) for name, at in rows]


async def count(session: AsyncSession, account_id: int, name: str, now: datetime) -> tuple[bool, datetime]:
    """Count a query of ``name`` by the account, if it may be made: (True, until when the tag stays counted) when it
    may (free, or counted now), else (False, when a slot frees). Takes the account's row lock, so two workers never
    both take the 30th slot."""
    await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
    counted = await ledger(session, account_id, now)
    found = next((c for c in counted if c.name == name), None)
    if found is not None:
        return True, found.frees_at
    if len(counted) >= LIMIT:
        return False, counted[0].frees_at
    session.add(HashtagSearch(account_id=account_id, name=name, first_searched_at=now))
    await session.flush()
    return True, now + WINDOW


async def reconcile(session: AsyncSession, account_id: int, names: Sequence[str], now: datetime) -> int:
    """Instagram's own list of the tags the account queried this week (``recently_searched_hashtags``): one the
    ledger lacks (queried elsewhere, or before a restore) is counted from now, the worst case. Returns how many."""
    counted = {c.name for c in await ledger(session, account_id, now)}
    missing = [name for name in dict.fromkeys(names) if name not in counted]
    for name in missing:
        session.add(HashtagSearch(account_id=account_id, name=name, first_searched_at=now))
    await session.flush()
    return len(missing)
