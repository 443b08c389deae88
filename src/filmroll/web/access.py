"""The access log: method, path, status and time, never the query string (the callback's carries codes and states).

A request is noted on the event loop as a tuple in a deque (under a microsecond); a thread of the log's own formats
the lines and writes them in batches, a few times a second, in the form of filmroll's other log lines. Python's
``logging`` on the event loop cost ~16 µs a line, more than answering a current feed, and took the default server
from 0.88x to 0.27x the rate of a raw ASGI app (docs/benchmarks.md).

:class:`AccessLog` wraps the routed app; :class:`~filmroll.web.feeds.FeedFastPath` answers outside it and notes its
requests in the same :class:`RequestLog`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NAME = "filmroll.access"  # the logger name the lines carry, as filmroll's other log lines carry theirs


class RequestLog:
    """Requests noted on the event loop, written by a thread of its own. Disabled (``enabled=False``), noting is a
    no-op. ``start()`` and ``close()`` belong to the app's lifespan: nothing runs before the app starts, and what is
    noted before it stops is written."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self._noted: deque[tuple[float, str, str, int, float]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, scope: Scope, status: int, started: float) -> None:
        if self.enabled:  # deque.append is atomic: the writer thread takes from the other end
            self._noted.append((time.time(), scope["method"], scope["path"], status, time.monotonic() - started))

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="filmroll access log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        lines: list[str] = []
        second, stamp = -1, ""
        while self._noted:
            at, method, path, status, took = self._noted.popleft()
            if int(at) != second:  # one strftime a second, not a line
                second = int(at)
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            lines.append(f"{stamp},{int(at * 1000) % 1000:03d} INFO {NAME}: {method} {path} {status} "
                         f"{took * 1000:.1f}ms\n")
        if lines:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # a closed or full stream: the log is lost, never the request
                pass


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
    def __init__(self, app: ASGIApp, *, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.enabled:
            await self.app(scope, receive, send)
            return
        started, watched = time.monotonic(), Watched(send)
        try:
            await self.app(scope, receive, watched)
        finally:
            self.log.note(scope, watched.status, started)
