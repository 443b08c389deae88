"""The sandbox clock: wall time plus an offset that tests and demos move forward.

Everything in the sandbox that depends on time (code, token and CDN-URL expiry, the 24 h refresh rule, rate-limit
windows, media timestamps) reads this clock, so a test can jump 59 days ahead without waiting.
"""

from __future__ import annotations

import time


class SandboxClock:
    def __init__(self, start: float | None = None) -> None:
        self._offset = 0.0 if start is None else start - time.time()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds
        return self.now()

    def set(self, timestamp: float) -> float:
        if timestamp < self.now():
            raise ValueError("the sandbox clock only moves forward")
        self._offset = timestamp - time.time()
        return self.now()
