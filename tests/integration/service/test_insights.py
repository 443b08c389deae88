"""Followers and engagement from the kept history: 30 simulated days of real syncs against the sandbox (its
followers moving a day at a time, three days with no sync at all), then ``service/insights.history`` read back
against the rows the syncs wrote. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from filmroll import errors
from filmroll.service import insights
from filmroll.store.tables import InsightSnapshot
from tests.harness import SCOPES
from tests.history import live_days
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
INDEX = 7
SKIPPED = {10, 11, 12}


def followers(day: int) -> int:
    return 5_000 + 37 * day - (day % 4) * 11


async def test_a_month_of_syncs_reads_as_a_row_a_day_with_gaps_and_rated_posts(harness, sandbox):
    for n in range(3):  # posts within the window, whatever the sandbox's world holds for this account
        sandbox.control.add_media(INDEX, caption=f"recent {n}")
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1, first=INDEX, due=False,
                                        permissions=SCOPES)
    await live_days(harness.database, harness.syncer(), sandbox.control, account_id=account_id, index=INDEX,
                    days=30, followers=followers, skipped=SKIPPED)

    found = await insights.history(harness.database, str(account_id), days=30)
    assert len(found.days) == 30 and found.known_days == 27
    assert found.days[-1].day == harness.database.clock.now().date() and found.days[-1].partial
    assert not any(d.partial for d in found.days[:-1])
    for n, day in enumerate(found.days):
        if n in SKIPPED:  # a gap, never yesterday's value or a zero
            assert (day.followers_count, day.follows_count, day.media_count) == (None, None, None)
        else:
            assert day.followers_count == followers(n) and day.follows_count == 100 + n % 7
            assert day.media_count is not None and day.media_count > 0
    assert (await insights.history(harness.database, str(account_id), days=7)).days == found.days[-7:]

    # Each post's engagement: its latest lifetime values as stored, over its reach.
    assert found.posts, "the window holds the posts added today"
    async with harness.database.read() as session:
        rows = (await session.execute(select(InsightSnapshot).where(
            InsightSnapshot.account_id == account_id, InsightSnapshot.period == "lifetime"))).scalars().all()
    latest: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: r.day):
        latest.setdefault(row.ig_media_id, {})[row.metric] = row.value
    rated = [p for p in found.posts if p.ig_media_id in latest]
    assert rated
    for post in rated:
        stored = latest[post.ig_media_id]
        engagements = sum(stored.get(m, 0) for m in ("likes", "comments", "saved", "shares"))
        assert post.engagements == engagements and post.reach == stored["reach"]
        assert post.rate_basis == "reach" and post.engagement_rate == pytest.approx(engagements / stored["reach"])
        assert post.measured_on == found.days[-1].day

    # The CSV files say what the charts show, cell for cell; an empty cell where there is no value.
    days = list(csv.DictReader(io.StringIO(insights.days_csv(found))))
    assert [r["day"] for r in days] == [d.day.isoformat() for d in found.days]
    assert [r["followers_count"] or None for r in days] == \
        [None if d.followers_count is None else str(d.followers_count) for d in found.days]
    assert days[-1]["partial"] == "yes" and days[10]["followers_count"] == ""
    posts = list(csv.DictReader(io.StringIO(insights.posts_csv(found))))
    assert [r["id"] for r in posts] == [p.ig_media_id for p in found.posts]
    assert all(float(r["engagement_rate"]) == pytest.approx(p.engagement_rate, abs=1e-6)
               for r, p in zip(posts, found.posts, strict=True) if p.engagement_rate is not None)


async def test_without_insights_a_post_is_rated_by_its_counters_over_followers(harness, sandbox):
    sandbox.control.add_media(INDEX + 1, caption="today")
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1, first=INDEX + 1, due=False)
    await live_days(harness.database, harness.syncer(), sandbox.control, account_id=account_id, index=INDEX + 1,
                    days=2, followers=lambda day: 2_000)
    found = await insights.history(harness.database, str(account_id), days=2)
    post = found.posts[0]
    assert post.reach is None and post.saved is None and post.measured_on is None  # no insight rows at all
    assert post.engagements == (post.likes or 0) + (post.comments or 0)
    assert post.rate_basis == "followers" and post.engagement_rate == pytest.approx(post.engagements / 2_000)


async def test_bad_input_is_refused(harness):
    for days in (0, -1, 3661):
        with pytest.raises(errors.InputError, match="--days must be between 1 and 3660"):
            await insights.history(harness.database, "1", days=days)
    with pytest.raises(errors.AccountNotFoundError):
        await insights.history(harness.database, "@nobody_here", days=30)
    assert harness.database.clock.offset == timedelta(0)
