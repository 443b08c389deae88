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


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            record(scope, status, started)
