"""What the database says about the whole house, for ``/metrics``: a handful of aggregate reads (no row per account
is ever returned), each served by an index or a single pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.tables import Account, MediaFile, MediaItem, Source, Token
from filmroll.vocabulary import AccountStatus, SourceKind

# Days of token life left, the buckets of the expiry histogram (a gauge histogram: how many tokens end within each).
EXPIRY_BUCKETS_DAYS = (1, 3, 7, 14, 30, 60)


@dataclass(frozen=True)
class Gauges:
    accounts: dict[tuple[str, str], int]  # (status, provider) -> accounts
    earliest_expiry: datetime | None  # of an active account's token
    expiring_within: dict[int, int]  # days -> active accounts' tokens ending within that many days (cumulative)
    active_tokens: int
    seconds_left: float  # summed over the active accounts' tokens (the histogram's sum)
    oldest_sync: datetime | None  # the least recently synced active account source's last sync
    never_synced: int  # active account sources not synced yet
    busiest_usage: int  # the highest rate-limit usage (percent) Instagram reported for a source
    stored_bytes: int  # every stored file (originals, posters, videos, variants)
    mirror_queue: int  # live posts whose pictures are not stored yet (with attempts left)
    last_success: dict[str, datetime | None] = field(default_factory=dict)  # job -> its newest success


async def read(session: AsyncSession, now: datetime, *, max_attempts: int) -> Gauges:
    accounts = {(status, provider): count for status, provider, count in await session.execute(
        select(Account.status, Account.provider, func.count()).group_by(Account.status, Account.provider))}
    active = Account.status == AccountStatus.ACTIVE
    # One read of every active token's expiry (a column, 100 000 rows in well under a second, at most every few
    # seconds, by one process): the earliest, the buckets and the sum from the same rows.
    left = [(when - now).total_seconds() for when in (await session.execute(
        select(Token.expires_at).join(Account, Account.id == Token.account_id).where(active))).scalars()]
    earliest = now + timedelta(seconds=min(left)) if left else None
    within = {days: sum(1 for seconds in left if seconds <= days * 86_400) for days in EXPIRY_BUCKETS_DAYS}
    oldest = (await session.execute(select(func.min(Source.last_synced_at)).select_from(Source)
                                    .join(Account, Account.id == Source.account_id)
                                    .where(Source.kind == SourceKind.ACCOUNT, active))).scalar()
    never = int((await session.execute(
        select(func.count()).select_from(Source).join(Account, Account.id == Source.account_id)
        .where(Source.kind == SourceKind.ACCOUNT, active, Source.last_synced_at.is_(None)))).scalar() or 0)
    usage = int((await session.execute(select(func.max(Source.usage_percent)))).scalar() or 0)
    stored = int((await session.execute(select(func.sum(MediaFile.bytes)))).scalar() or 0)
    queue = int((await session.execute(
        select(func.count()).select_from(MediaItem).where(MediaItem.deleted_at.is_(None),
                                                          MediaItem.mirrored_at.is_(None),
                                                          MediaItem.mirror_attempts < max_attempts))).scalar() or 0)
    last = {
        "refresh": (await session.execute(select(func.max(Token.refreshed_at)))).scalar(),
        "probe": (await session.execute(select(func.max(Token.last_probe_at)))).scalar(),
        "sync": (await session.execute(select(func.max(Source.last_synced_at)))).scalar(),
        "mirror": (await session.execute(select(func.max(MediaItem.mirrored_at)))).scalar(),
    }
    return Gauges(accounts, earliest, within, len(left), sum(left), oldest, never, usage, stored, queue, last)
