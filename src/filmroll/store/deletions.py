"""Data-deletion requests: recorded once per owner while pending (Meta retries, owners press twice), done by the
worker's ``deletion`` job (``service/deletion.py``), then kept only as code, status and dates for the status page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.lease import Claim, Claimable, Lease, made, retry_due
from filmroll.store.tables import Account, DeletionRequest
from filmroll.vocabulary import AccountStatus

PENDING, COMPLETED = "pending", "completed"
DELETION = Lease("deletion", DeletionRequest.__table__, "id", "lease_owner", "lease_until")  # type: ignore[arg-type]
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U to misread


def new_code() -> str:
    """16 characters, 80 bits: the status page's only key, so not guessable."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


async def request(session: AsyncSession, *, scoped_user_id: str | None, account_id: int | None,
                  now: datetime) -> DeletionRequest:
    """The pending request for this owner, or a new one."""
    whose = [column == value for column, value in ((DeletionRequest.scoped_user_id, scoped_user_id),
                                                   (DeletionRequest.account_id, account_id)) if value is not None]
    if whose:
        pending = await session.scalar(select(DeletionRequest).where(DeletionRequest.status == PENDING, or_(*whose)))
        if pending is not None:
            return pending
    row = DeletionRequest(code=new_code(), scoped_user_id=scoped_user_id, account_id=account_id, status=PENDING,
                          requested_at=now, attempts=0, next_attempt_at=now)
    session.add(row)
    await session.flush()
    return row


async def request_expired(session: AsyncSession, *, before: datetime, now: datetime, limit: int = 100) -> int:
    """A deletion request for each disconnected or revoked account left so since ``before`` (its retention ended)."""
    pending = exists().where(DeletionRequest.account_id == Account.id, DeletionRequest.status == PENDING)
    ids = (await session.execute(select(Account.id).where(
        Account.status.in_([AccountStatus.DISCONNECTED, AccountStatus.REVOKED]), Account.updated_at < before,
        ~pending).limit(limit))).scalars().all()
    session.add_all([DeletionRequest(code=new_code(), scoped_user_id=None, account_id=account_id, status=PENDING,
                                     requested_at=now, attempts=0, next_attempt_at=now) for account_id in ids])
    await session.flush()
    return len(ids)


async def get(session: AsyncSession, code: str) -> DeletionRequest | None:
    return await session.scalar(select(DeletionRequest).where(DeletionRequest.code == code))


@dataclass(frozen=True)
class DeletionClaim(Claim):
    id: int
    code: str
    scoped_user_id: str | None
    account_id: int | None
    attempts: int

    @property
    def label(self) -> str:
        return f"deletion request {self.code}"


_RETURNS = ("id", "code", "scoped_user_id", "account_id", "attempts")
DELETIONS: Claimable[DeletionClaim] = Claimable(
    DELETION, lambda now: select(DeletionRequest.id).where(DeletionRequest.status == PENDING),
    lambda now: (retry_due(DeletionRequest.next_attempt_at, now),), DeletionRequest.requested_at, _RETURNS,
    lambda session, rows, until: made(DeletionClaim, _RETURNS, rows))


async def complete(session: AsyncSession, request_id: int, *, owner: str, now: datetime) -> bool:
    """Done: whose it was is forgotten; the code, the status and the dates stay for the status page."""
    return await DELETION.finish(session, request_id, owner=owner, values={
        "status": COMPLETED, "completed_at": now, "scoped_user_id": None, "account_id": None, "last_error": None})


async def retry_later(session: AsyncSession, request_id: int, *, owner: str, attempts: int, error: str,
                      at: datetime) -> bool:
    return await DELETION.finish(session, request_id, owner=owner, values={
        "attempts": attempts, "last_error": error[:500], "next_attempt_at": at})
