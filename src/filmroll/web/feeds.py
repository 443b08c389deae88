"""Feeds on the public mount: ``/feeds/{slug}.json`` (and each page after it), ``.html``, ``/embed``.

A :class:`FeedCache` per process holds every feed's documents, rendered once per change and compressed once (gzip
and brotli): a request is a dictionary lookup, never a database query, never a call to Instagram. The cache polls
``feeds.changed_at`` (one small query every ``poll_seconds``) and renders a feed again when it moved; while the
database is unreachable it goes on serving what it has (the last good feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import brotli
from fastapi import APIRouter, Request
from fastapi.responses import Response

from filmroll.service import feed_documents
from filmroll.service.feed_documents import Documents, DocumentSettings
from filmroll.store import feeds as feed_store
from filmroll.store.database import Database, is_unavailable
from filmroll.web.deps import Web, WebContext
from filmroll.web.rendering import Audience, problem, route_class

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """One document in each encoding, with a strong ETag for each (RFC 9110: one per representation)."""

    identity: bytes
    gzip: bytes
    br: bytes
    etag: str  # of the identity bytes; "-gz"/"-br" inside the quotes for the others

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        return cls(body, gzip.compress(body, 9, mtime=0), brotli.compress(body, quality=11),
                   hashlib.sha256(body).hexdigest()[:32])


Version = tuple[datetime, datetime | None]  # store.feeds.versions


@dataclass
class Entry:
    version: Version
    documents: Documents
    encoded: dict[tuple[str, str | None], Encoded] = field(default_factory=dict)

    def get(self, kind: str, after: str | None) -> Encoded | None:
        found = self.encoded.get((kind, after))
        if found is None:
            source: Mapping[str | None, bytes] = getattr(self.documents, kind)
            if after not in source:
                return None
            found = self.encoded[(kind, after)] = Encoded.of(source[after])
        return found


class FeedCache:
    def __init__(self, database: Database, settings: DocumentSettings, *, base_url: str, poll_seconds: float) -> None:
        self.database = database
        self.settings = settings
        self.base_url = base_url
        self.poll_seconds = poll_seconds
        self.versions: dict[str, Version] | None = None  # None until the first poll answered
        self.entries: dict[str, Entry] = {}
        self.renders = 0  # how many times a feed was rendered (tests and benchmarks read it)
        self._locks: dict[str, asyncio.Lock] = {}
        self._polling = asyncio.Lock()
        self._polled_at = -1e9
        self._failing = False
        self._assets: dict[str, Encoded] = {}

    def asset(self, path: Path) -> Encoded:
        """The widget's or the fragment stylesheet's bytes, read and compressed on first use."""
        found = self._assets.get(path.name)
        if found is None:
            found = self._assets[path.name] = Encoded.of(path.read_bytes())
        return found

    async def poll(self) -> None:
        async with self._polling:
            self._polled_at = time.monotonic()
            async with self.database.read() as session:
                versions = await feed_store.versions(session)
        self.versions = versions
        for slug in [s for s in self.entries if s not in versions]:
            del self.entries[slug]
        for slug, entry in list(self.entries.items()):
            if entry.version != versions[slug]:
                await self._render(slug)  # before anyone asks: no visitor waits for a render

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; an unreachable database is logged once per outage and waited out."""
        while not stop.is_set():
            try:
                await self.poll()
                if self._failing:
                    log.info("feeds: the database answers again")
                self._failing = False
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("feeds: polling failed")
                elif not self._failing:
                    log.warning("feeds: the database is unreachable; serving the feeds as last rendered")
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def entry(self, slug: str) -> Entry | None:
        """The feed's current documents; while the database is unreachable, the last ones rendered (never an
        error for a feed that was served before)."""
        if self.versions is None or (slug not in self.versions and time.monotonic() - self._polled_at > 1):
            try:
                await self.poll()  # a feed made a moment ago; unknown names cost one small query a second at most
            except Exception as exc:
                if not is_unavailable(exc) or self.versions is None:
                    raise
        assert self.versions is not None
        changed = self.versions.get(slug)
        if changed is None:
            return None
        entry = self.entries.get(slug)
        if entry is not None and entry.version == changed:
            return entry
        try:
            return await self._render(slug)
        except Exception as exc:
            if entry is None or not is_unavailable(exc):
                raise
            return entry  # last known good

    async def _render(self, slug: str) -> Entry | None:
        lock = self._locks.setdefault(slug, asyncio.Lock())
        async with lock:  # one render per change, however many requests arrive meanwhile
            wanted = (self.versions or {}).get(slug)
            current = self.entries.get(slug)
            if current is not None and current.version == wanted:
                return current
            data = await feed_documents.gather(self.database, slug, self.settings)
            if data is None or wanted is None:
                self.entries.pop(slug, None)
                return None
            self.renders += 1
            entry = Entry(wanted, feed_documents.render(data, self.settings, base_url=self.base_url))
            self.entries[slug] = entry
            return entry


@dataclass(frozen=True)
class Caching:
    max_age: int
    stale_while_revalidate: int
    stale_if_error: int

    def header(self) -> str:
        return (f"public, max-age={self.max_age}, stale-while-revalidate={self.stale_while_revalidate}, "
                f"stale-if-error={self.stale_if_error}")


MEDIA_TYPES = {"pages": "application/json", "html": "text/html; charset=utf-8", "embed": "text/html; charset=utf-8"}


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.PUBLIC))
    routes.add_api_route("/widget.js", widget, methods=["GET"], summary="The <filmroll-feed> web component")
    routes.add_api_route("/feeds/feed.css", stylesheet, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/feeds/{slug}.json", feed_json, methods=["GET"], summary="A feed (first page)")
    routes.add_api_route("/feeds/{slug}.html", feed_html, methods=["GET"], summary="A feed as an HTML fragment")
    routes.add_api_route("/feeds/{slug}/after-{after}.json", feed_page, methods=["GET"],
                         summary="The page of a feed after a post (a feed's 'next')")
    routes.add_api_route("/feeds/{slug}/after-{after}.html", feed_html_page, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/feeds/{slug}/embed", feed_embed, methods=["GET"], summary="A feed as a page for an iframe")
    routes.add_api_route("/feeds/{slug}/embed/after-{after}", feed_embed, methods=["GET"], include_in_schema=False)
    return routes


async def feed_json(request: Request, web: Web, slug: str, after: str | None = None) -> Response:
    return await _answer(request, web, slug, "pages", after)


async def feed_page(request: Request, web: Web, slug: str, after: str) -> Response:
    return await _answer(request, web, slug, "pages", after)


async def feed_html(request: Request, web: Web, slug: str, after: str | None = None) -> Response:
    return await _answer(request, web, slug, "html", after)


async def feed_html_page(request: Request, web: Web, slug: str, after: str) -> Response:
    return await _answer(request, web, slug, "html", after)


async def feed_embed(request: Request, web: Web, slug: str, after: str | None = None) -> Response:
    return await _answer(request, web, slug, "embed", after)


async def widget(request: Request, web: Web) -> Response:
    return _send(request, web.feeds.asset(feed_documents.WIDGET), "text/javascript; charset=utf-8",
                 {"Cache-Control": "public, max-age=3600, stale-while-revalidate=86400",
                  "Access-Control-Allow-Origin": "*"})  # a module script from another origin is a CORS fetch


async def stylesheet(request: Request, web: Web) -> Response:
    return _send(request, web.feeds.asset(feed_documents.STYLESHEET), "text/css; charset=utf-8",
                 {"Cache-Control": "public, max-age=3600, stale-while-revalidate=86400",
                  "Access-Control-Allow-Origin": "*"})


async def _answer(request: Request, web: WebContext, slug: str, kind: str, after: str | None) -> Response:
    cache = web.feeds
    entry = await cache.entry(slug)
    if entry is None:
        return problem(request, 404, "Not found", "There is no such feed.", "not_found")
    document = entry.get(kind, after)
    if document is None:
        return problem(request, 404, "Not found", "That post is not in this feed (any more): start again from the "
                       "feed's first page.", "not_found")
    headers = {"Cache-Control": web.caching.header(),
               "Last-Modified": format_datetime(max(d for d in entry.version if d is not None), usegmt=True)}
    headers.update(_cross_origin(request, entry.documents.origins, kind, cache.base_url))
    return _send(request, document, MEDIA_TYPES[kind], headers)


def _send(request: Request, document: Encoded, media_type: str, headers: dict[str, str]) -> Response:
    """The encoding the client takes best (brotli, gzip, none), its ETag, and 304 when the client has it."""
    accepted = request.headers.get("accept-encoding", "")
    encoding = "br" if "br" in accepted else "gzip" if "gzip" in accepted else None
    etag = f'"{document.etag}{ {"br": "-br", "gzip": "-gz", None: ""}[encoding]}"'
    headers = {**headers, "ETag": etag}
    headers["Vary"] = ", ".join(["Accept-Encoding", *([headers["Vary"]] if "Vary" in headers else [])])
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body = document.identity if encoding is None else document.br if encoding == "br" else document.gzip
    if encoding:
        headers["Content-Encoding"] = encoding
    return Response(body, media_type=media_type, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _cross_origin(request: Request, origins: tuple[str, ...], kind: str, base_url: str) -> dict[str, str]:
    """CORS from the feed's allowed origins: ``*`` is sent as is (no Vary); a list echoes a listed Origin and
    varies on it. The embed page says who may frame it."""
    headers: dict[str, str] = {}
    if "*" in origins:
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Vary"] = "Origin"
        origin = request.headers.get("origin")
        if origin and origin.lower() in origins:
            headers["Access-Control-Allow-Origin"] = origin
    if kind == "embed":
        media = urlsplit(base_url)
        images = f"'self' {media.scheme}://{media.netloc}" if media.netloc else "'self'"
        ancestors = "*" if "*" in origins else " ".join(origins)
        headers["Content-Security-Policy"] = (
            f"default-src 'none'; img-src {images}; style-src {images}; style-src-attr 'unsafe-inline'; "
            f"frame-ancestors {ancestors}; base-uri 'none'; form-action 'none'")
    return headers
