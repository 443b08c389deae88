"""When to refresh and probe, on Instagram's rules: never before 24 hours, never after expiry, jitter only later."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from filmroll.service.policy import MIN_AGE, RefreshPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(lifetime_days=st.floats(min_value=1.5, max_value=60), window_days=st.integers(2, 58),
       jitter_hours=st.floats(min_value=0, max_value=48), seed=st.integers())
def test_a_refresh_is_never_before_24_hours_nor_later_than_a_day_before_expiry(lifetime_days, window_days,
                                                                              jitter_hours, seed):
    policy = RefreshPolicy(window=timedelta(days=window_days), jitter=timedelta(hours=jitter_hours))
    expires = T0 + timedelta(days=lifetime_days)
    due = policy.next_refresh_at(T0, expires, random.Random(seed))
    assert due >= T0 + MIN_AGE
    assert due <= max(T0 + MIN_AGE, expires - timedelta(days=1))


def test_a_fresh_60_day_token_is_refreshed_once_30_days_remain_spread_over_the_jitter():
    policy = RefreshPolicy()
    expires = T0 + timedelta(days=60)
    rng = random.Random(3)
    dues = [policy.next_refresh_at(T0, expires, rng) for _ in range(500)]
    assert min(dues) >= T0 + timedelta(days=30) and max(dues) <= T0 + timedelta(days=30, hours=6)
    assert max(dues) - min(dues) > timedelta(hours=5)  # spread, not all in one minute


def test_a_token_with_little_life_left_is_refreshed_once_instagram_allows_and_before_its_last_day():
    policy = RefreshPolicy()
    due = policy.next_refresh_at(T0, T0 + timedelta(days=10), random.Random(1))
    assert T0 + MIN_AGE <= due <= T0 + MIN_AGE + policy.jitter
    squeezed = policy.next_refresh_at(T0, T0 + MIN_AGE + timedelta(days=1, hours=2), random.Random(1))
    assert squeezed <= T0 + MIN_AGE + timedelta(hours=2)  # jitter never pushes it past the last safe day


@given(seed=st.integers(), interval_hours=st.floats(min_value=0.5, max_value=24 * 14))
def test_a_probe_comes_within_one_probe_interval_never_later(seed, interval_hours):
    policy = RefreshPolicy(probe_interval=timedelta(hours=interval_hours))
    at = policy.next_probe_at(T0, random.Random(seed))
    assert T0 + 0.8 * policy.probe_interval <= at <= T0 + policy.probe_interval
