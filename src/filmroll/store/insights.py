"""Reading the insight history (``insight_snapshots``): an account's rows by day, and each post's latest values.

Rows are written by the sync (``store/media.record_insights``): account metrics and the profile counts keyed by the
day they describe, a post's lifetime metrics by the day they were taken."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.tables import InsightSnapshot


async def account_days(session: AsyncSession, account_id: int, metrics: Sequence[str],
                       since: str) -> dict[str, dict[str, int]]:
    """day (``YYYY-MM-DD``) -> metric -> value, for the account's own rows from ``since`` on."""
    found: dict[str, dict[str, int]] = {}
    for day, metric, value in await session.execute(
            select(InsightSnapshot.day, InsightSnapshot.metric, InsightSnapshot.value)
            .where(InsightSnapshot.account_id == account_id, InsightSnapshot.ig_media_id == "",
                   InsightSnapshot.period == "day", InsightSnapshot.metric.in_(metrics), InsightSnapshot.day >= since)):
        found.setdefault(day, {})[metric] = value
    return found


async def latest_post_values(session: AsyncSession, account_id: int,
                             ig_media_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, int]]]:
    """ig media id -> (the day its values were last taken, metric -> value), for the posts that have any."""
    if not ig_media_ids:
        return {}
    last = (select(InsightSnapshot.ig_media_id, func.max(InsightSnapshot.day).label("day"))
            .where(InsightSnapshot.account_id == account_id, InsightSnapshot.ig_media_id.in_(ig_media_ids),
                   InsightSnapshot.period == "lifetime")
            .group_by(InsightSnapshot.ig_media_id).subquery())
    found: dict[str, tuple[str, dict[str, int]]] = {}
    for ig_id, day, metric, value in await session.execute(
            select(InsightSnapshot.ig_media_id, InsightSnapshot.day, InsightSnapshot.metric, InsightSnapshot.value)
            .join(last, (last.c.ig_media_id == InsightSnapshot.ig_media_id) & (last.c.day == InsightSnapshot.day))
            .where(InsightSnapshot.account_id == account_id, InsightSnapshot.period == "lifetime")):
        found.setdefault(ig_id, (day, {}))[1][metric] = value
    return found
