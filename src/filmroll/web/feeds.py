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
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import brotli
from fastapi import APIRouter, Request
from fastapi.responses import Response

from filmroll.service import feed_documents
from filmroll.service.feed_documents import Documents, DocumentSettings
from filmroll.store import feeds as feed_store
from filmroll.store.database import Database, is_unavailable
from filmroll.web import feed_schema
from filmroll.web.access import RequestLog
from filmroll.web.deps import Web, WebContext
from filmroll.web.rendering import Audience, problem, route_class

if TYPE_CHECKING:
    from starlette.datastructures import State
    from starlette.types import ASGIApp, Receive, Scope, Send

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
    replies: dict[tuple[str, str, str, str], Any] = field(default_factory=dict)  # FeedFastPath's, made once

    @cached_property
    def last_modified(self) -> str:
        return format_datetime(max(d for d in self.version if d is not None), usegmt=True)

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
        self.answered: Counter[int] = Counter()  # feed documents answered, by status (200, 304): /metrics reads it
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

    def current(self, slug: str) -> Entry | None:
        """The feed's documents if they are rendered and current, without waiting for anything (the fast path's
        question); ``None`` sends the request the long way (:meth:`entry`)."""
        entry = self.entries.get(slug)
        if entry is None or self.versions is None or self.versions.get(slug) != entry.version:
            return None
        return entry

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
    routes.add_api_route("/widget.js", widget, methods=["GET"], summary="The <filmroll-feed> web component",
                         response_class=Response, responses=feed_schema.SCRIPT_RESPONSES)
    routes.add_api_route("/feeds/feed.css", stylesheet, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/feeds/{slug}.json", feed_json, methods=["GET"], summary="A feed (first page)",
                         response_class=Response, responses=feed_schema.JSON_RESPONSES)
    routes.add_api_route("/feeds/{slug}.html", feed_html, methods=["GET"], summary="A feed as an HTML fragment",
                         response_class=Response, responses=feed_schema.HTML_RESPONSES)
    routes.add_api_route("/feeds/{slug}/after-{after}.json", feed_page, methods=["GET"],
                         summary="The page of a feed after a post (a feed's 'next')", response_class=Response,
                         responses=feed_schema.JSON_RESPONSES)
    routes.add_api_route("/feeds/{slug}/after-{after}.html", feed_html_page, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/feeds/{slug}/embed", feed_embed, methods=["GET"], summary="A feed as a page for an iframe",
                         response_class=Response, responses=feed_schema.HTML_RESPONSES)
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
    entry = await web.feeds.entry(slug)
    if entry is None:
        return problem(request, 404, "Not found", "There is no such feed.", "not_found")
    found = feed_reply(request.headers, entry, kind, after, web)
    if found is None:
        return problem(request, 404, "Not found", "That post is not in this feed (any more): start again from the "
                       "feed's first page.", "not_found")
    status, headers, body = found
    web.feeds.answered[status] += 1
    return Response(body, status_code=status, headers=headers)


def _send(request: Request, document: Encoded, media_type: str, headers: dict[str, str]) -> Response:
    status, headers, body = encoded_reply(request.headers, document, media_type, headers)
    return Response(body, status_code=status, headers=headers)


Reply = tuple[int, dict[str, str], bytes]


def feed_reply(asked: Mapping[str, str], entry: Entry, kind: str, after: str | None,
               web: WebContext) -> Reply | None:
    """A feed document's answer (status, headers, body) to a request with these headers (lower-case names); ``None``
    when the feed has no such page. The routed handlers and :class:`FeedFastPath` both answer with it."""
    document = entry.get(kind, after)
    if document is None:
        return None
    headers = {"Cache-Control": web.caching.header(), "Last-Modified": entry.last_modified}
    headers.update(_cross_origin(asked.get("origin"), entry.documents.origins, kind, web.feeds.base_url))
    return encoded_reply(asked, document, MEDIA_TYPES[kind], headers)


def encoded_reply(asked: Mapping[str, str], document: Encoded, media_type: str, headers: dict[str, str]) -> Reply:
    """The encoding the client takes best (brotli, gzip, none), its ETag, and 304 when the client has it."""
    accepted = asked.get("accept-encoding", "")
    encoding = "br" if "br" in accepted else "gzip" if "gzip" in accepted else None
    etag = f'"{document.etag}{ {"br": "-br", "gzip": "-gz", None: ""}[encoding]}"'
    headers = {**headers, "ETag": etag}
    headers["Vary"] = ", ".join(["Accept-Encoding", *([headers["Vary"]] if "Vary" in headers else [])])
    if _matches(asked.get("if-none-match"), etag):
        return 304, headers, b""
    body = document.identity if encoding is None else document.br if encoding == "br" else document.gzip
    if encoding:
        headers["Content-Encoding"] = encoding
    headers["Content-Type"] = media_type
    return 200, headers, body


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _cross_origin(origin: str | None, origins: tuple[str, ...], kind: str, base_url: str) -> dict[str, str]:
    """CORS from the feed's allowed origins: ``*`` is sent as is (no Vary); a list echoes a listed Origin and
    varies on it. The embed page says who may frame it."""
    headers: dict[str, str] = {}
    if "*" in origins:
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Vary"] = "Origin"
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


# The routes' paths, as one pattern: /feeds/{slug}.json|.html, /feeds/{slug}/after-{id}.json|.html,
# /feeds/{slug}/embed[/after-{id}]
_DOCUMENT = re.compile(r"/feeds/(?P<slug>[a-z0-9][a-z0-9-]{0,63})(?:/after-(?P<after>[0-9A-Za-z_]{1,64}))?"
                       r"(?:\.(?P<ext>json|html)|/embed(?:/after-(?P<embed_after>[0-9A-Za-z_]{1,64}))?)\Z")
_KINDS = {"json": "pages", "html": "html", None: "embed"}
_ASKED = frozenset((b"accept-encoding", b"if-none-match", b"origin"))


class FeedFastPath:
    """Answers a feed document that is rendered and current straight from memory, in front of everything FastAPI
    does per request (its routing, dependency injection and middleware cost ~10x the answer itself, by
    ``bench/feeds.py``; its native telemetry's check for an OpenTelemetry provider alone ~10 µs, timed in process),
    with the public audience's security headers and an access-log line, as the routed answer has. Anything else (a
    feed not rendered yet or changed since, a query string, another path or method) goes on to the app, whose routes
    answer the same way through :func:`feed_reply`. A feed answered here makes no OpenTelemetry span; routed
    requests do.

    The answer is :func:`feed_reply`'s, made once per document, encoding and allowed origin and kept with the
    rendered feed (``Entry.replies``): a request then costs a dictionary lookup and an ETag comparison."""

    def __init__(self, app: ASGIApp, *, state: State, headers: list[tuple[bytes, bytes]], log: RequestLog) -> None:
        self.app = app
        self.log = log
        self.state = state  # the app's: ``web`` is there once the lifespan has started
        self.headers = [h for h in headers if h[0] != b"cache-control"]  # the public audience's (web/security.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"] \
                and (match := _DOCUMENT.match(scope["path"])) is not None \
                and not (match["ext"] is None and match["after"]):
            started = time.monotonic()
            web: WebContext | None = getattr(self.state, "web", None)
            entry = web.feeds.current(match["slug"]) if web is not None else None
            if web is not None and entry is not None:
                asked = {name: value.decode("latin-1") for name, value in scope["headers"] if name in _ASKED}
                reply = self._reply(web, entry, match, asked)
                if reply is not None:
                    fresh = _matches(asked.get(b"if-none-match"), reply.etag)
                    await send({"type": "http.response.start", "status": 304 if fresh else 200,
                                "headers": reply.not_modified if fresh else reply.headers})
                    await send({"type": "http.response.body", "body": b"" if fresh else reply.body})
                    self.log.note(scope, 304 if fresh else 200, started)
                    web.feeds.answered[304 if fresh else 200] += 1
                    return
        await self.app(scope, receive, send)

    def _reply(self, web: WebContext, entry: Entry, match: re.Match[str],
               asked: dict[bytes, str]) -> _Prepared | None:
        accepted = asked.get(b"accept-encoding", "")
        encoding = "br" if "br" in accepted else "gzip" if "gzip" in accepted else ""
        origin = asked.get(b"origin")
        if origin is not None and origin.lower() not in entry.documents.origins:
            origin = None  # one cached answer for every origin that is not allowed (bounded by the feed's list)
        key = (match["ext"] or "", match["after"] or match["embed_after"] or "", encoding, origin or "")
        found = entry.replies.get(key)
        if found is None:
            kind, after = _KINDS[match["ext"]], match["after"] or match["embed_after"]
            request = {"accept-encoding": encoding, **({"origin": origin} if origin else {})}
            made = feed_reply(request, entry, kind, after, web)
            if made is None:
                return None
            _, headers, body = made
            not_modified = feed_reply({**request, "if-none-match": headers["ETag"]}, entry, kind, after, web)
            assert not_modified is not None and not_modified[0] == 304
            found = entry.replies[key] = _Prepared(
                headers["ETag"], body, [*_raw(headers), (b"content-length", str(len(body)).encode()), *self.headers],
                [*_raw(not_modified[1]), *self.headers])
        return found


@dataclass(frozen=True)
class _Prepared:
    etag: str
    body: bytes
    headers: list[tuple[bytes, bytes]]
    not_modified: list[tuple[bytes, bytes]]


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
