"""Is the Meta app still alive? Meta switches off an app after 90 days without logins, API calls or webhook
deliveries, and every token it holds dies with it (restoring the app does not bring them back; reference
meta-callbacks §5). A running worker keeps the app active by itself (refreshes, daily probes, syncs); this notices
when nothing has, long before the switch-off: `filmroll doctor` checks it and the worker logs it.

    activity(database)      an :class:`Activity`: how many tokens are held, when one of them last reached Instagram
                            (a connect, refresh, probe or sync) or Meta last delivered a webhook; ``quiet(warn_after)``
    ActivityWatch           the worker's side task: a warning in its log on start and once a day while quiet
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from filmroll.store import accounts, webhooks
from filmroll.store.database import Database, is_unavailable

log = logging.getLogger("filmroll.activity")
SWITCH_OFF = timedelta(days=90)


@dataclass(frozen=True)
class Activity:
    tokens: int
    last: datetime | None  # None: no sign of any call at all
    now: datetime

    def quiet(self, warn_after: timedelta) -> bool:
        return self.tokens > 0 and (self.last is None or self.now - self.last > warn_after)

    def describe(self) -> str:
        since = "no call has ever reached Instagram" if self.last is None else (
            f"no call has reached Instagram for {(self.now - self.last).days} days (last {self.last:%Y-%m-%d})")
        left = "" if self.last is None else f", {max((self.last + SWITCH_OFF - self.now).days, 0)} days from now"
        return (f"{since} while {self.tokens} token(s) are held: Meta switches off an app after 90 days without "
                f"activity{left}, and every token dies with it. Run a worker (`filmroll worker` or `filmroll "
                "serve`), which refreshes, probes and syncs")


async def activity(database: Database) -> Activity:
    async with database.read() as session:
        tokens, last = await accounts.last_instagram_activity(session)
        delivered = await webhooks.last_received(session)
    if delivered is not None and (last is None or delivered > last):
        last = delivered
    return Activity(tokens, last, database.clock.now())


class ActivityWatch:
    """Checks on start, then every ``every``; a warning each time it finds the app quiet (at most daily)."""

    name = "app activity watch"

    def __init__(self, database: Database, warn_after: timedelta, *, every: timedelta = timedelta(days=1)) -> None:
        self.database = database
        self.warn_after = warn_after
        self.every = every

    async def __call__(self) -> None:
        while True:
            try:
                found: Activity | None = await activity(self.database)
            except Exception as exc:  # an outage: the worker says so already; look again next time
                if not is_unavailable(exc):
                    raise
                found = None
            if found is not None and found.quiet(self.warn_after):
                log.warning("the Meta app may be switched off soon: %s", found.describe())
            await asyncio.sleep(self.every.total_seconds())
