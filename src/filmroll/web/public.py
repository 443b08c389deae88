"""The public mount: what anyone on the internet may fetch without signing in (content-addressed media and health
here; the feeds and the widget in ``web/feeds.py``, on the same audience; Meta's callbacks next). Its routes render
errors as problem+json, may be cached, and carry the public audience's headers (``web/security.py``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from filmroll.service import pictures
from filmroll.storage import parse as parse_key
from filmroll.store import files as file_store
from filmroll.vocabulary import FileRole
from filmroll.web import health
from filmroll.web.deps import Web
from filmroll.web.rendering import Audience, problem, route_class
from filmroll.web.throttle import client_of

# The address is the content: it never changes, so browsers and CDNs may keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
SERVED = timedelta(days=1)  # how stale a variant's served_at may be before a request writes it again


class Busy(Exception):
    """More variants are being rendered than the budget allows (overall, or for this client)."""


class OnDemand:
    """Variants rendered on first request, bounded: one render per variant at a time (concurrent requests for it
    wait for that one); ``at_once`` renders run (the rendering processes), up to ``most`` in all wait for them, and
    ``per_client`` of those for one client; beyond that :class:`Busy` (503 with Retry-After) instead of queueing
    CPU and memory the mirror needs. Anyone on the internet can ask: 16 requests for one missing variant were 16
    renders, and six 6300 px ones took 17.5 s of CPU and 1.5 GB. A waiting request holds no picture in memory (the
    original is read once its render has a slot), and the bounds leave a page's worth of pictures room: a browser
    does not ask again for a picture that got a 503."""

    def __init__(self, *, at_once: int, most: int = 64, per_client: int = 32) -> None:
        self.most = most
        self.per_client = per_client
        self._slots = asyncio.Semaphore(at_once)
        self._running: dict[str, asyncio.Task[tuple[bytes, str] | None]] = {}
        self._clients: Counter[str] = Counter()

    async def get(self, key: str, client: str,
                  make: Callable[[], Awaitable[tuple[bytes, str] | None]]) -> tuple[bytes, str] | None:
        task = self._running.get(key)
        if task is None:
            if len(self._running) >= self.most or self._clients[client] >= self.per_client:
                raise Busy
            task = asyncio.ensure_future(self._slotted(make))
            self._running[key] = task
            self._clients[client] += 1

            def done(_: object, key: str = key, client: str = client) -> None:
                self._running.pop(key, None)
                self._clients[client] -= 1
                if self._clients[client] <= 0:
                    del self._clients[client]

            task.add_done_callback(done)
        # Shielded: a client that goes away does not cancel the render others wait for.
        return await asyncio.shield(task)

    async def _slotted(self, make: Callable[[], Awaitable[tuple[bytes, str] | None]]) -> tuple[bytes, str] | None:
        async with self._slots:
            return await make()


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.PUBLIC))
    routes.add_api_route("/healthz", health.healthz, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/readyz", health.readyz, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/metrics", health.metrics, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/media/{key:path}", media_file, methods=["GET"], include_in_schema=False)
    return routes


async def media_file(request: Request, web: Web, key: str) -> Response:
    """A stored picture by its storage key; a variant never made (or evicted) is rendered on this first request."""
    parsed = parse_key(key)
    if parsed is None:
        return problem(request, 404, "Not found", "There is no such file.", "not_found")
    etag = f'"{parsed.sha256[:32]}{parsed.variant or ""}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    async with web.database.read() as session:
        row = await file_store.by_key(session, key)
    now = web.database.clock.now()
    if row is not None and row.role == FileRole.VARIANT and (row.served_at is None or now - row.served_at > SERVED):
        async with web.database.transaction() as session:  # what the byte budget evicts by; once a day at most
            await file_store.served(session, row.id, now)
    data = await web.runtime.storage.get(key) if row is not None else None
    content_type = row.content_type if row is not None else ""
    if data is None and parsed.variant:
        try:
            made = await web.renders.get(key, client_of(request, web.trusted_proxies), partial(
                web.runtime.mirror("web").variant, parsed.prefix, parsed.sha256, parsed.variant, now))
        except Busy:
            busy = problem(request, 503, "Busy", "Pictures are being prepared; try again in a moment.", "busy")
            busy.headers["Retry-After"] = "2"
            return busy
        data, content_type = made if made else (None, "")
    if data is None:
        return problem(request, 404, "Not found", "There is no such file.", "not_found")
    if row is not None and row.role in (FileRole.ORIGINAL, FileRole.POSTER):
        data = pictures.public_copy(data)  # kept byte for byte (the export has it); served without its metadata
    return Response(data, media_type=content_type, headers={"ETag": etag, "Cache-Control": IMMUTABLE,
                                                            "Cross-Origin-Resource-Policy": "cross-origin"})
