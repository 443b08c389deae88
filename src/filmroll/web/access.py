"""The access log: method, path, status and time, never the query string (the callback's carries codes and states).

:class:`AccessLog` wraps the routed app; :class:`~filmroll.web.feeds.FeedFastPath` answers outside it and logs
through :func:`record` in the same form.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("filmroll.access")


def record(scope: Scope, status: int, started: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info("%s %s %s %.1fms", scope["method"], scope["path"], status, 1000 * (time.monotonic() - started))


class Watched:
    """``send``, remembering the status once the response has started (0 until then: an error can still be
    answered)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, watched = time.monotonic(), Watched(send)
        try:
            await self.app(scope, receive, watched)
        finally:
            record(scope, watched.status, started)
