"""The public mount: what anyone on the internet may fetch without signing in (content-addressed media and health
here; the feeds and the widget in ``web/feeds.py``, on the same audience; Meta's callbacks next). Its routes render
errors as problem+json, may be cached, and carry the public audience's headers (``web/security.py``)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from filmroll.store import files as file_store
from filmroll.vocabulary import FileRole
from filmroll.web import health
from filmroll.web.deps import Web
from filmroll.web.rendering import Audience, problem, route_class

# accounts/<id>/sha256/ab/cd/<sha256>.<ext> (an original) or …/<sha256>/<width>.<format> (a variant)
_KEY = re.compile(r"accounts/(?P<account>[0-9]{1,12})/sha256/[0-9a-f]{2}/[0-9a-f]{2}/(?P<sha>[0-9a-f]{64})"
                  r"(?:\.[a-z0-9]{2,4}|/(?P<variant>[0-9]{1,5}\.(?:webp|avif|jpg)))")
# The address is the content: it never changes, so browsers and CDNs may keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
SERVED = timedelta(days=1)  # how stale a variant's served_at may be before a request writes it again


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.PUBLIC))
    routes.add_api_route("/healthz", health.healthz, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/readyz", health.readyz, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/media/{key:path}", media_file, methods=["GET"], include_in_schema=False)
    return routes


async def media_file(request: Request, web: Web, key: str) -> Response:
    """A stored picture by its storage key; a variant never made (or evicted) is rendered on this first request."""
    match = _KEY.fullmatch(key)
    if match is None:
        return problem(request, 404, "Not found", "There is no such file.", "not_found")
    etag = f'"{match["sha"][:32]}{match["variant"] or ""}"'
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
    if data is None and match["variant"]:
        made = await web.runtime.mirror("web").variant(int(match["account"]), match["sha"], match["variant"], now)
        data, content_type = made if made else (None, "")
    if data is None:
        return problem(request, 404, "Not found", "There is no such file.", "not_found")
    return Response(data, media_type=content_type, headers={"ETag": etag, "Cache-Control": IMMUTABLE,
                                                            "Cross-Origin-Resource-Policy": "cross-origin"})
