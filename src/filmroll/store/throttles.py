"""Sign-in throttles: attempts counted per key under the row's lock, before the password is checked, so concurrent
attempts cannot all read "under the limit" (``web/throttle.py`` says whose keys and which limits)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import dialect_insert
from filmroll.store.tables import LoginThrottle


async def take_attempt(session: AsyncSession, key: str, *, now: datetime, limit: int, lockout: timedelta,
                       longest: timedelta, forget_after: timedelta) -> datetime | None:
    """Count an attempt on ``key``; None if it may go ahead, else when the key's lockout ends (nothing counted).

    The first ``limit - 1`` attempts go ahead freely; the ``limit``-th goes ahead and locks the key for
    ``lockout``, each later one for twice as long as the one before (up to ``longest``). A quiet
    ``forget_after`` starts the count afresh."""
    await session.execute(dialect_insert(session, LoginThrottle).on_conflict_do_nothing(),
                          [{"key": key, "attempts": 0, "last_attempt_at": now, "locked_until": None}])
    # FOR UPDATE: on PostgreSQL concurrent attempts on one key queue here (SQLite writes queue anyway).
    row = (await session.execute(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                                 .execution_options(populate_existing=True))).scalar_one()
    if row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    if row.last_attempt_at < now - forget_after:
        row.attempts = 0
    row.attempts += 1
    row.last_attempt_at = now
    if row.attempts >= limit:
        row.locked_until = now + min(lockout * 2 ** min(row.attempts - limit, 20), longest)
    await session.flush()
    return None


async def clear(session: AsyncSession, keys: list[str]) -> None:
    """A successful sign-in: its keys start afresh."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


async def forget(session: AsyncSession, *, before: datetime) -> None:
    """Drop keys nobody tried since ``before`` whose lockout is over."""
    await session.execute(delete(LoginThrottle).where(
        LoginThrottle.last_attempt_at < before,
        (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < before)))
