"""When to refresh a long-lived token, on Instagram's rules: never before it is 24 hours old, never after it
expires, by default once fewer than 30 days remain, spread with jitter so accounts connected together do not all
refresh in the same minute."""

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
