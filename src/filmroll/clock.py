"""What time it is, for everything that decides or records a time.

One :class:`Clock` per process, owned by the :class:`~filmroll.store.database.Database` (``database.clock``), so the
store, the services and the Instagram client read the same time. It is the system clock plus an ``offset``: zero in
production; a simulation moves it forward with :meth:`Clock.advance` to live months in minutes, in step with the
sandbox's clock. On PostgreSQL, lease and due-time decisions still come from the server (``SELECT now()``) plus the
same offset, so workers on machines with skewed clocks agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        if by < timedelta(0):
            raise ValueError("time only moves forward")
        self.offset += by
