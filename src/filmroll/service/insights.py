"""Followers and engagement a person can read: an account's profile counts a day at a time, and its recent posts'
engagement, from the history the sync keeps (``insight_snapshots``; Instagram itself answers for 30 days at most).

Nothing is invented: a day without a snapshot is a gap (``None``), not the day before's value or a zero; today is
marked ``partial`` (its counts may still move); a metric Instagram did not give a post is ``None``. A post's
engagement rate is its engagements (likes, comments, saves and shares, as many as were given) over its reach, or,
where the reach is missing, over the account's followers, and ``rate_basis`` says which. Used by ``filmroll
insights`` and the admin UI's account page (its charts and their CSV files)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from filmroll import errors
from filmroll.service.accounts import find
from filmroll.store import insights as insight_store
from filmroll.store import sources as source_store
from filmroll.store.database import Database
from filmroll.store.tables import MediaItem

PROFILE_COUNTS = ("followers_count", "follows_count", "media_count")  # the sync's HISTORY_COLUMNS
POST_METRICS = ("likes", "comments", "saved", "shares", "reach", "views")
ENGAGEMENTS = ("likes", "comments", "saved", "shares")
MAX_DAYS = 3660
MAX_POSTS = 60


@dataclass(frozen=True)
class Day:
    day: date
    followers_count: int | None
    follows_count: int | None
    media_count: int | None
    partial: bool  # today: the day is not over, its counts may still move


@dataclass(frozen=True)
class PostEngagement:
    ig_media_id: str
    timestamp: datetime | None
    media_type: str | None
    caption: str | None
    permalink: str | None
    likes: int | None
    comments: int | None
    saved: int | None
    shares: int | None
    reach: int | None
    views: int | None
    engagements: int | None
    engagement_rate: float | None  # engagements ÷ rate_basis's count, e.g. 0.0412
    rate_basis: str | None  # "reach", "followers", or None (neither known)
    measured_on: date | None  # the day the insight values were taken; None: the counters on the post only


@dataclass(frozen=True)
class Insights:
    account_id: int
    username: str | None
    days: list[Day]  # every day of the window, oldest first, gaps included
    posts: list[PostEngagement]  # the window's posts, newest first

    @property
    def known_days(self) -> int:
        return sum(d.followers_count is not None for d in self.days)

    def as_json(self) -> dict[str, object]:
        """The JSON `filmroll insights --json` prints and ``/api/v1/accounts/{id}/insights`` answers."""
        from pydantic import TypeAdapter  # the API's serializer, so both say the same

        return dict(TypeAdapter(Insights).dump_python(self, mode="json"))


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise errors.InputError(f"--days must be between 1 and {MAX_DAYS} (it was {days})")
    return days


async def history(database: Database, ref: str, *, days: int = 90, posts: int = 30) -> Insights:
    """The last ``days`` days (today included) of ``ref``'s profile counts, and its newest ``posts`` posts of
    that window with their engagement."""
    check_days(days)
    account = await find(database, ref)
    today = database.clock.now().date()
    first = today - timedelta(days=days - 1)
    async with database.read() as session:
        rows = await insight_store.account_days(session, account.id, PROFILE_COUNTS, first.isoformat())
        source = await source_store.of_account(session, account.id)
        media = [] if source is None else list((await session.execute(
            select(MediaItem).where(MediaItem.source_id == source.id, MediaItem.deleted_at.is_(None),
                                    MediaItem.timestamp >= datetime.combine(first, time(), tzinfo=UTC))
            .order_by(MediaItem.timestamp.desc(), MediaItem.id.desc()).limit(min(posts, MAX_POSTS)))).scalars())
        values = await insight_store.latest_post_values(session, account.id, [m.ig_media_id for m in media])
    series = []
    for n in range(days):
        day = first + timedelta(days=n)
        counts = rows.get(day.isoformat(), {})
        series.append(Day(day, counts.get("followers_count"), counts.get("follows_count"), counts.get("media_count"),
                          partial=day == today))
    # A post without its reach is rated by the followers: the last day's known, else the profile's as last read.
    followers = next((d.followers_count for d in reversed(series) if d.followers_count is not None),
                     account.followers_count)
    return Insights(account.id, account.username, series,
                    [_engagement(m, values.get(m.ig_media_id), followers) for m in media])


def _engagement(post: MediaItem, measured: tuple[str, dict[str, int]] | None,
                followers: int | None) -> PostEngagement:
    taken, metrics = measured if measured else (None, {})
    # Without insights (no permission, or a post from before the business conversion) the post's own counters are
    # what Instagram gave: likes (None where the owner hides them) and comments.
    given: dict[str, int | None] = {"likes": post.like_count, "comments": post.comments_count} if not metrics else {}
    value: dict[str, int | None] = {m: metrics.get(m, given.get(m)) for m in POST_METRICS}
    parts = [v for m in ENGAGEMENTS if (v := value[m]) is not None]
    engagements = sum(parts) if parts else None
    rate, basis = None, None
    if engagements is not None and value["reach"]:
        rate, basis = engagements / value["reach"], "reach"
    elif engagements is not None and followers:
        rate, basis = engagements / followers, "followers"
    return PostEngagement(post.ig_media_id, post.timestamp, post.media_type, post.caption, post.permalink,
                          value["likes"], value["comments"], value["saved"], value["shares"], value["reach"],
                          value["views"], engagements, rate, basis,
                          date.fromisoformat(taken) if taken else None)


def days_csv(insights: Insights) -> str:
    """The follower chart's numbers, a row a day; an empty cell is a day without a snapshot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", *PROFILE_COUNTS, "partial"])
    for d in insights.days:
        writer.writerow([d.day.isoformat(), *("" if v is None else v for v in
                                               (d.followers_count, d.follows_count, d.media_count)),
                         "yes" if d.partial else ""])
    return out.getvalue()


def posts_csv(insights: Insights) -> str:
    """The engagement chart's numbers, a row a post; an empty cell is a metric Instagram did not give."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "timestamp", *POST_METRICS, "engagements", "engagement_rate", "rate_basis", "measured_on"])
    for p in insights.posts:
        writer.writerow([p.ig_media_id, p.timestamp.isoformat() if p.timestamp else "",
                         *("" if v is None else v for v in (p.likes, p.comments, p.saved, p.shares, p.reach,
                                                            p.views, p.engagements)),
                         "" if p.engagement_rate is None else f"{p.engagement_rate:.6f}", p.rate_basis or "",
                         p.measured_on.isoformat() if p.measured_on else ""])
    return out.getvalue()
