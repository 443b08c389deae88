"""Instagram webhook deliveries: stored once each (by the body's SHA-256), claimed by the worker, marked done."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import dialect_insert, rowcount
from filmroll.store.lease import Claim, Claimable, Lease, made, retry_due
from filmroll.store.tables import WebhookDelivery

WEBHOOK = Lease("webhook", WebhookDelivery.__table__, "id", "lease_owner", "lease_until")  # type: ignore[arg-type]


async def store(session: AsyncSession, body: bytes, now: datetime) -> bool:
    """Keep a delivery; False when the same body came before (Meta's retry)."""
    result = await session.execute(
        dialect_insert(session, WebhookDelivery).values(
            body_sha256=hashlib.sha256(body).hexdigest(), body=body.decode("utf-8", "replace"), received_at=now)
        .on_conflict_do_nothing(index_elements=["body_sha256"]))
    return rowcount(result) == 1


@dataclass(frozen=True)
class WebhookClaim(Claim):
    id: int
    body: str
    received_at: datetime
    acted_at: datetime | None
    attempts: int

    @property
    def label(self) -> str:
        return f"webhook delivery {self.id}"


_RETURNS = ("id", "body", "received_at", "acted_at", "attempts")
DELIVERIES: Claimable[WebhookClaim] = Claimable(
    WEBHOOK, lambda now: select(WebhookDelivery.id).where(WebhookDelivery.processed_at.is_(None)),
    lambda now: (retry_due(WebhookDelivery.next_attempt_at, now),), WebhookDelivery.id, _RETURNS,
    lambda session, rows, until: made(WebhookClaim, _RETURNS, rows))


async def acted(session: AsyncSession, delivery_id: int, now: datetime) -> None:
    await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(acted_at=now)
                          .execution_options(synchronize_session=False))


async def done(session: AsyncSession, delivery_id: int, *, owner: str, now: datetime, attempts: int = 0,
               error: str | None = None) -> bool:
    return await WEBHOOK.finish(session, delivery_id, owner=owner, values={
        "processed_at": now, "attempts": attempts, "last_error": error})


async def retry_later(session: AsyncSession, delivery_id: int, *, owner: str, attempts: int, error: str,
                      at: datetime) -> bool:
    return await WEBHOOK.finish(session, delivery_id, owner=owner, values={
        "attempts": attempts, "last_error": error, "next_attempt_at": at})


async def forget_account(session: AsyncSession, ig_user_id: str) -> int:
    """Delete every delivery that names the account (an owner's deletion): a body holds their id and what happened
    on their posts. A batch naming other accounts goes too; those accounts are polled as ever."""
    if not ig_user_id.isdigit():  # Instagram's ids are digits; anything else would match too much
        return 0
    return rowcount(await session.execute(delete(WebhookDelivery).where(WebhookDelivery.body.contains(ig_user_id))
                                          .execution_options(synchronize_session=False)))


async def last_received(session: AsyncSession) -> datetime | None:
    found: datetime | None = (await session.execute(select(func.max(WebhookDelivery.received_at)))).scalar()
    return found
