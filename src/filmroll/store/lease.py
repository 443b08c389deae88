"""Leases and claims, written once for every job kind.

A lease is a row held by one worker until a time, through a pair of columns (owner, until): claiming, renewing,
releasing, giving back what a lost answer may have taken, and "who else holds what". Each job kind's lease and
claims sit beside its own table:

    TOKEN    tokens.lease_owner / _until               refresh and probe (one at a time)    store/tokens.py
    SYNC     sources.sync_lease_owner / _until         a source's sync (per its kind)       store/sources.py
    MIRROR   sources.mirror_lease_owner / _until       the media mirror and its collector   store/sources.py
    ALERT    alerts.lease_owner / _until               webhook alerts to the owner          store/alerts.py
    PUBLISH  feeds.publish_lease_owner / _until        a feed's published files             store/feeds.py
    DELETION deletion_requests.lease_owner / _until    an owner's data deletion             store/deletions.py
    WEBHOOK  webhook_deliveries.lease_owner / _until   a delivery from Meta                 store/webhooks.py

A :class:`Claimable` says which rows of a kind may be leased at all, which of those are due and in what order, and
how a :class:`Claim` is made from a leased row; :func:`claim_due` is the one claim statement of every kind, an atomic
``UPDATE … WHERE key IN (<rows> LIMIT n) RETURNING …``:

* PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers claim disjoint rows without
  waiting on each other.
* SQLite: SQLAlchemy drops ``FOR UPDATE`` for this dialect; safety comes from the write transaction's
  ``BEGIN IMMEDIATE`` (one writer at a time) and the single atomic UPDATE … RETURNING.

Times come from the database clock (``Database.now()``), so workers on machines with skewed clocks agree on what is
due and when a lease has expired. An expired lease is simply claimable again. Every write a worker makes after a
network call is fenced on the lease owner (and, for tokens, ``version``): a worker whose lease was taken over writes
nothing. The fence is the owner, not the expiry, so a worker cut off from the database for longer than its lease
still lands its write afterwards if nobody took the row over meanwhile.

Adding a job kind: its table's lease columns, a :class:`Lease`, a :class:`Claim` and a :class:`Claimable` beside the
table, a runner in ``service/``, and one line in ``runtime.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

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


class Claim:
    """What a job holds while it runs: the key of its leased row (``leased_id``, the field ``KEY`` names) and what
    the logs call it (``label``: "@bakery", "feed bakery", "deletion request …")."""

    KEY: ClassVar[str] = "id"

    @property
    def leased_id(self) -> int:
        return int(getattr(self, self.KEY))

    @property
    def label(self) -> str:
        raise NotImplementedError


C = TypeVar("C", bound=Claim)


@dataclass(frozen=True)
class Claimable(Generic[C]):
    """One job kind's claims. ``eligible(now)`` selects the keys of the rows that may be leased at all (a command's
    "now, due or not" asks for one of them), ``due(now)`` narrows them to what a worker takes, ``order`` first;
    ``make`` turns the leased rows (their ``returning`` columns) and the lease's expiry into claims."""

    lease: Lease
    eligible: Callable[[datetime], Select[Any]]
    due: Callable[[datetime], Sequence[ColumnElement[bool]]]
    order: Any
    returning: tuple[str, ...]
    make: Callable[[AsyncSession, Sequence[Any], datetime], Awaitable[list[C]]]


async def claim_due(session: AsyncSession, kind: Claimable[C], *, owner: str, now: datetime, lease: timedelta,
                    limit: int = 1, key: int | None = None) -> list[C]:
    """Lease up to ``limit`` due rows of ``kind``, first in its order; or, with ``key``, that one row now, due or
    not (nothing while someone else holds it, or when it may not be leased at all)."""
    chosen = kind.eligible(now).where(kind.lease.free(now))
    if key is None:
        chosen = chosen.where(*kind.due(now)).order_by(kind.order).limit(limit)
    else:
        chosen = chosen.where(kind.lease.table.c[kind.lease.key] == key)
    until = now + lease
    rows = await kind.lease.take(session, chosen.with_for_update(skip_locked=True, of=kind.lease.table), owner=owner,
                                 until=until, returning=kind.returning)
    return await kind.make(session, rows, until) if rows else []


async def claim_one(session: AsyncSession, kind: Claimable[C], key: int, *, owner: str, now: datetime,
                    lease: timedelta) -> C | None:
    """:func:`claim_due` of the one row ``key``, due or not (a command's "now"): None while someone else holds it."""
    claims = await claim_due(session, kind, owner=owner, now=now, lease=lease, key=key)
    return claims[0] if claims else None


async def made(kind: Callable[..., C], returning: Sequence[str], rows: Sequence[Any], **extra: Any) -> list[C]:
    """Claims of ``kind`` whose fields are the ``returning`` columns of each row (and ``extra``)."""
    return [kind(**dict(zip(returning, row, strict=True)), **extra) for row in rows]
