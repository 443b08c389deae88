"""A lease: a row held by one worker until a time, through a pair of columns (owner, until). Claiming, renewing,
releasing, giving back what a lost answer may have taken, and "who else holds what", written once for every leased
table; the leases themselves and their claims are in ``store/leases.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount


def retry_due(next_attempt_at: Any, now: datetime) -> ColumnElement[bool]:
    """A row's ``next_attempt_at`` column says when it may be tried again after a failure: due once that time has
    come, and at once when nothing failed (NULL)."""
    return or_(next_attempt_at.is_(None), next_attempt_at <= now)


@dataclass(frozen=True)
class Lease:
    """The lease columns of one table: claim, renew, release and "is it free", written once for all three."""

    name: str
    table: Table
    key: str
    owner: str
    until: str

    def free(self, now: datetime) -> ColumnElement[bool]:
        until = self.table.c[self.until]
        return or_(until.is_(None), until < now)

    async def take(self, session: AsyncSession, chosen: Select[Any], *, owner: str, until: datetime,
                   returning: Sequence[str]) -> list[Any]:
        """Lease the rows ``chosen`` selects (their keys); returns the ``returning`` columns of each."""
        key = self.table.c[self.key]
        rows = await session.execute(
            update(self.table).where(key.in_(chosen.scalar_subquery()))
            .values({self.owner: owner, self.until: until})
            .returning(*(self.table.c[c] for c in returning)))
        return list(rows)

    async def renew(self, session: AsyncSession, ids: Sequence[int], *, owner: str, now: datetime,
                    lease: timedelta) -> set[int]:
        """Extend our leases; returns the ids we still hold (a missing id means the lease was lost)."""
        if not ids:
            return set()
        key = self.table.c[self.key]
        rows = await session.execute(
            update(self.table).where(key.in_(ids), self.table.c[self.owner] == owner)
            .values({self.until: now + lease}).returning(key))
        return set(rows.scalars())

    async def release(self, session: AsyncSession, ids: Sequence[int], *, owner: str) -> int:
        if not ids:
            return 0
        result = await session.execute(
            update(self.table).where(self.table.c[self.key].in_(ids), self.table.c[self.owner] == owner)
            .values({self.owner: None, self.until: None}))
        return rowcount(result)

    async def finish(self, session: AsyncSession, key: int, *, owner: str, values: dict[str, object]) -> bool:
        """Write a job's outcome on its row and give the lease back in one fenced UPDATE; False (nothing written)
        if the lease is no longer ours."""
        result = await session.execute(
            update(self.table).where(self.table.c[self.key] == key, self.table.c[self.owner] == owner)
            .values({self.owner: None, self.until: None, **values}).execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def release_unanswered(self, session: AsyncSession, *, owner: str, until: datetime) -> int:
        """Give back what a claim whose answer was lost may have taken: a commit can land on the server while the
        connection drops before its answer arrives. The rows are ours and carry the exact expiry that claim wrote
        (renewals and other claims write others); nothing runs on them, so they would sit out their lease."""
        result = await session.execute(
            update(self.table).where(self.table.c[self.owner] == owner, self.table.c[self.until] == until)
            .values({self.owner: None, self.until: None}))
        return rowcount(result)

    async def held_elsewhere(self, session: AsyncSession, *, owner: str, now: datetime) -> tuple[int, datetime | None]:
        """How many rows someone else holds a live lease on, and when the last of those leases runs out."""
        until = self.table.c[self.until]
        count, latest = (await session.execute(
            select(func.count(), func.max(until)).where(until >= now, self.table.c[self.owner] != owner))).one()
        return count, latest
