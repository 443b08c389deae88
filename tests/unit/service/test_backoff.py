"""Backoff: capped exponential growth, full jitter above a floor, and no pile-up at the floor."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from filmroll.service.refresh import Backoff


@given(failures=st.integers(min_value=0, max_value=10_000), seed=st.integers(), base=st.integers(1, 600),
       cap=st.integers(1, 86_400), floor=st.integers(0, 120))
def test_a_delay_stays_between_the_floor_and_the_capped_ceiling(failures, seed, base, cap, floor):
    backoff = Backoff(base=timedelta(seconds=base), cap=timedelta(seconds=cap), floor=timedelta(seconds=floor))
    delay = backoff.delay(failures, random.Random(seed)).total_seconds()
    assert floor <= delay <= max(floor, min(cap, base * 2**failures))


def test_the_ceiling_doubles_with_each_failure_until_the_cap():
    backoff, rng = Backoff(), random.Random(1)
    ceilings = [max(backoff.delay(failures, rng) for _ in range(2_000)) for failures in range(10)]
    minutes = [c.total_seconds() / 60 for c in ceilings]
    assert [round(m) for m in minutes[:5]] == [2, 4, 8, 16, 32]
    assert 59 < minutes[5] <= minutes[-1] <= 60  # the hour's cap
    assert max(backoff.delay(20, rng, cap=timedelta(minutes=20)) for _ in range(2_000)) <= timedelta(minutes=20)


def test_accounts_that_failed_together_do_not_retry_together():
    """The first retries of 10 000 accounts that failed in the same second: no second of the spread holds more than
    two percent of them (a floor applied by clamping would put about a quarter at exactly the floor)."""
    backoff, rng = Backoff(), random.Random(7)
    seconds = Counter(int(backoff.delay(0, rng).total_seconds()) for _ in range(10_000))
    assert min(seconds) >= 30 and max(seconds) <= 120
    assert max(seconds.values()) <= 200
