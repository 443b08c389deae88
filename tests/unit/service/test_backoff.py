"""Backoff: capped exponential growth, jitter over the upper half of each step above a floor, no pile-up."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from filmroll.service.policy import Backoff


@given(failures=st.integers(min_value=0, max_value=10_000), seed=st.integers(), base=st.integers(1, 600),
       cap=st.integers(1, 86_400), floor=st.integers(0, 120))
def test_a_delay_stays_between_the_floor_and_the_capped_ceiling(failures, seed, base, cap, floor):
    backoff = Backoff(base=timedelta(seconds=base), cap=timedelta(seconds=cap), floor=timedelta(seconds=floor))
    delay = backoff.delay(failures, random.Random(seed)).total_seconds()
    ceiling = min(cap, base * 2**failures)
    assert max(floor, ceiling / 2) <= delay <= max(floor, ceiling)


def test_the_ceiling_doubles_with_each_failure_until_the_cap():
    backoff, rng = Backoff(), random.Random(1)
    draws = [[backoff.delay(failures, rng).total_seconds() / 60 for _ in range(2_000)] for failures in range(10)]
    assert [round(max(d)) for d in draws[:5]] == [3, 6, 12, 24, 48]
    assert [round(min(d)) for d in draws[:5]] == [2, 3, 6, 12, 24]  # 1.5 min rounds to 2
    assert 59 < max(draws[5]) <= max(draws[-1]) <= 60  # the hour's cap
    assert min(draws[-1]) >= 30  # half the cap
    assert max(backoff.delay(20, rng, cap=timedelta(minutes=20)) for _ in range(2_000)) <= timedelta(minutes=20)


def test_accounts_that_failed_together_do_not_retry_together():
    """The first retries of 10 000 accounts that failed in the same second: no second of the spread holds more than
    two percent of them (a floor applied by clamping would put about a quarter at exactly the floor)."""
    backoff, rng = Backoff(), random.Random(7)
    seconds = Counter(int(backoff.delay(0, rng).total_seconds()) for _ in range(10_000))
    assert min(seconds) >= 90 and max(seconds) <= 180
    assert max(seconds.values()) <= 200


@given(seed=st.integers())
def test_a_ten_minute_outage_costs_at_most_three_attempts(seed):
    """The n-th retry comes no sooner than base · (2^n - 1) / 2 after the first failure: the fourth attempt is
    10.5 minutes away at the earliest, whatever the draws (a sync's cap of two 10-minute intervals included)."""
    rng = random.Random(seed)
    for cap in (None, timedelta(minutes=20)):
        elapsed = sum((Backoff().delay(failures, rng, cap=cap) for failures in range(3)), timedelta())
        assert elapsed >= timedelta(minutes=10)
