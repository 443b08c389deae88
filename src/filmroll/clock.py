"""What time it is, for everything that decides or records a time.

One :class:`Clock` per process, owned by the :class:`~filmroll.store.database.Database` (``database.clock``), so the
store, the services and the Instagram client read the same time. It is this machine's clock (:meth:`Clock.wall`),
plus a ``correction`` towards the database server's clock, plus an ``offset``.

* ``correction``: zero on SQLite (one machine, one clock). On PostgreSQL, lease and due-time decisions come from the
  server (``SELECT now()``), and every such reading also measures how far the server's clock is ahead of this
  machine's, so the times a worker writes (next sync, next probe, a retry) agree with the claims of every other
  worker even when this machine's clock is minutes off.
* ``offset``: zero in production; a simulation moves it forward with :meth:`Clock.advance` to live months in minutes,
  in step with the sandbox's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset
        self.correction = timedelta(0)  # the database server's clock minus this machine's, as last measured

    def wall(self) -> datetime:
        """This machine's clock."""
        return datetime.now(UTC)

    def now(self) -> datetime:
        return self.wall() + self.correction + self.offset

    def advance(self, by: timedelta) -> None:
        if by < timedelta(0):
            raise ValueError("time only moves forward")
        self.offset += by
