"""When to do things, written once: refresh a token (:class:`RefreshPolicy`), sync an account (:class:`SyncPolicy`),
try again after a failure (:class:`Backoff`). Pure values and arithmetic; the composition root builds them from
settings and hands them to the services and the worker.

A long-lived token is refreshed on Instagram's rules: never before it is 24 hours old, never after it expires, by
default once fewer than 30 days remain, spread with jitter so accounts connected together do not all refresh in the
same minute."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class RefreshPolicy:
    window: timedelta = timedelta(days=30)  # refresh once less than this remains
    jitter: timedelta = timedelta(hours=6)
    probe_interval: timedelta = timedelta(days=1)  # a cheap /me per token catches revocations within a day

    def next_probe_at(self, now: datetime, rng: random.Random | None = None) -> datetime:
        # Spread only ever earlier, so "a revoked token is found within one probe interval" holds exactly.
        spread = (rng or random).uniform(-0.2, 0) * self.probe_interval.total_seconds()
        return now + self.probe_interval + timedelta(seconds=spread)

    def next_refresh_at(self, issued_at: datetime, expires_at: datetime, rng: random.Random | None = None) -> datetime:
        earliest = issued_at + MIN_AGE
        due = max(earliest, expires_at - self.window)
        spread = (rng or random).uniform(0, self.jitter.total_seconds())
        # Jitter only ever moves the refresh later within the window, never past a day before expiry.
        latest = max(earliest, expires_at - timedelta(days=1))
        return min(due + timedelta(seconds=spread), latest)


@dataclass(frozen=True)
class SyncPolicy:
    interval: timedelta = timedelta(minutes=10)  # for accounts without an interval of their own
    page_size: int = 25
    full_interval: timedelta = timedelta(hours=24)
    max_pages: int = 400  # 10 000 media at 25 a page: Instagram's own ceiling
    slow_down_above: int = 75  # percent of the rate-limit budget
    insights_interval: timedelta = timedelta(hours=24)
    insights_media: int = 10  # lifetime metrics for this many of the newest posts
    # A full pass marks the posts it did not see deleted only when its listing was whole: paging ended on a page
    # without `next` and the count agrees with the profile's media_count within Instagram's own count lag. Even
    # then no more than this share of the account's posts (at least 3) goes without asking Instagram about each one
    # by id; so does every missing post of a listing that was not whole, up to `confirm_limit` a pass.
    count_lag: int = 2
    unconfirmed_share: float = 0.1
    confirm_limit: int = 100


@dataclass(frozen=True)
class MirrorPolicy:
    """What the media mirror stores and when (``FILMROLL_MIRROR__*``, ``FILMROLL_STORAGE__*``)."""

    widths: tuple[int, ...] = (320, 640, 1080)
    formats: tuple[str, ...] = ("webp", "avif")
    eager_posts: int = 24  # the newest posts of each account get their variants at once; the rest on first request
    videos: bool = False  # the video file itself (a video's poster is always stored)
    max_image_bytes: int = 30_000_000
    max_video_bytes: int = 200_000_000
    max_pixels: int = 40_000_000
    posts_per_pass: int = 50  # then the lease is given back and the account is due again at once
    max_attempts: int = 5  # a post whose pictures failed this often waits for the daily sweep's reset
    sweep_interval: timedelta = timedelta(days=1)  # the profile picture, failed posts, the collector
    retention: timedelta = timedelta(days=30)  # files of deleted posts and of disconnected accounts, then removed
    expiry_margin: timedelta = timedelta(minutes=10)  # a URL this close to its `oe` is read afresh by id first
    variant_budget_bytes: int = 0  # 0: no limit; else the least recently served variants go first


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter over the upper half of each step ("equal jitter" in AWS's "Exponential
    Backoff and Jitter"), above a floor. Full jitter, drawn from zero, lets an unlucky account draw several short
    waits in a row: a ten-minute outage cost some accounts 5-7 attempts. With half of each step fixed, the n-th retry
    comes no sooner than base · (2^n - 1) / 2 after the first failure, so a ten-minute outage costs at most three
    attempts, and the accounts that failed together are still spread over half a step (90 s for the first retry).
    The cap is an hour: even a days-long outage then costs little (only due work is retried), and once Instagram is
    back every account recovers within the hour."""

    base: timedelta = timedelta(minutes=3)
    cap: timedelta = timedelta(hours=1)
    floor: timedelta = timedelta(seconds=30)  # never sooner than this, whatever the draw

    def delay(self, failures: int, rng: random.Random, *, cap: timedelta | None = None) -> timedelta:
        """Uniform in [ceiling / 2, ceiling] with ceiling = min(cap, base · 2^failures), the tighter of the two caps
        if one is given, and never under the floor. Drawn above the floor, not clamped to it: a clamp puts every
        short draw at the same instant, and the accounts that failed together would retry together."""
        limit = min(self.cap, cap) if cap is not None else self.cap
        ceiling = min(limit.total_seconds(), self.base.total_seconds() * 2 ** min(failures, 30))
        floor = self.floor.total_seconds()
        return timedelta(seconds=rng.uniform(max(floor, ceiling / 2), max(floor, ceiling)))
