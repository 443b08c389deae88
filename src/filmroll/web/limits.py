"""The edge's bounds on a request, applied before anything of it is read into memory, and the last word on errors.

    :class:`RequestLimits`   URL length (414), header count and size (431), body size per route (413, from the
                             announced length before reading, else while streaming), a deadline for the whole body
                             (408): each refused in the mount's own form, with its headers, and the connection closed
    :class:`ErrorBoundary`   an exception no handler took becomes a 500 in the mount's own form (never a bare one
                             outside the security headers and the access log)

Granian already refuses what does not fit its read buffer (``filmroll serve`` sizes it from the same settings);
these are the finer, configurable limits, and the same on any ASGI server.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filmroll.settings import WebSettings
from filmroll.web.access import Watched
from filmroll.web.rendering import STYLESHEET_PATH, Audience, audience_of

log = logging.getLogger("filmroll.web")


@dataclass(frozen=True)
class Bounds:
    form_bytes: int = 16_384
    editor_bytes: int = 262_144
    callback_bytes: int = 65_536
    header_bytes: int = 16_384
    headers: int = 64
    url_bytes: int = 8_192
    body_seconds: float = 10.0

    def body_bytes(self, path: str) -> int:
        """The largest body a route takes: its handler reads it whole (a form, Meta's JSON), so it is bounded."""
        if path.startswith("/admin/feeds"):
            return self.editor_bytes
        if path.startswith("/meta/"):
            return self.callback_bytes
        return self.form_bytes


def bounds(web: WebSettings) -> Bounds:
    return Bounds(form_bytes=web.max_form_bytes, editor_bytes=web.max_editor_bytes,
                  callback_bytes=web.max_callback_bytes, header_bytes=web.max_header_bytes, headers=web.max_headers,
                  url_bytes=web.max_url_bytes, body_seconds=web.body_timeout_seconds)


class Refused(Exception):
    """A request outside the bounds: answered ``status`` and the connection closed."""

    def __init__(self, status: int, title: str, detail: str, code: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.code = status, title, detail, code


def too_large(limit: int) -> Refused:
    return Refused(413, "Request too large", f"This address takes at most {limit} bytes of body.", "body_too_large")


async def send_problem(scope: Scope, send: Send, status: int, title: str, detail: str, code: str, *,
                       close: bool = False) -> None:
    """An error as its mount says errors look: problem+json for the public, a small page for people. Written
    without templates: it must work when the app itself is what failed."""
    headers = [(b"cache-control", b"no-store")]
    if close:
        headers.append((b"connection", b"close"))
    if audience_of(scope) is Audience.PUBLIC:
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                           "code": code}).encode()
        headers.append((b"content-type", b"application/problem+json"))
    else:
        title, detail = html.escape(title), html.escape(detail)
        # The shape of templates/problem.html, without Jinja: this must work when the app itself is what failed.
        body = ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f'<title>{title} · filmroll</title>\n<link rel="stylesheet" href="{STYLESHEET_PATH}">\n</head>\n'
                f'<body>\n<header><strong>filmroll</strong></header>\n<main>\n<div class="card">\n'
                f'  <h1 class="error" id="problem-title">{title}</h1>\n  <p id="problem-message">{detail}</p>\n'
                f'  <p class="muted">Reason code: <code id="problem-code">{code}</code></p>\n</div>\n</main>\n'
                '</body>\n</html>\n').encode()
        headers.append((b"content-type", b"text/html; charset=utf-8"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    def __init__(self, app: ASGIApp, *, bounds: Bounds) -> None:
        self.app = app
        self.bounds = bounds

    def _check_head(self, scope: Scope) -> int:
        """Refuse what the request line and headers alone show is out of bounds; returns the body limit."""
        b = self.bounds
        if len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) > b.url_bytes:
            raise Refused(414, "Address too long", f"Addresses here are at most {b.url_bytes} bytes long.",
                          "uri_too_long")
        headers = scope["headers"]
        if len(headers) > b.headers or sum(len(k) + len(v) + 4 for k, v in headers) > b.header_bytes:
            raise Refused(431, "Request headers too large", f"A request here carries at most {b.headers} header "
                          f"lines and {b.header_bytes} bytes of them.", "headers_too_large")
        limit = b.body_bytes(scope["path"])
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    raise Refused(400, "Request refused", "The Content-Length header is not a number.",
                                  "bad_content_length")
                if int(value) > limit:
                    raise too_large(limit)
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = Watched(send)
        try:
            limit = self._check_head(scope)
            await self.app(scope, _bounded(receive, limit, self.bounds.body_seconds), watched)
        except Refused as refused:
            if watched.status:
                raise
            await send_problem(scope, send, refused.status, refused.title, refused.detail, refused.code,
                               close=True)


def _bounded(receive: Receive, limit: int, seconds: float) -> Receive:
    """``receive`` that refuses a body past ``limit`` bytes or still arriving ``seconds`` after it began."""
    received = 0
    deadline: float | None = None  # on the event loop's clock
    done = False

    async def bounded_receive() -> Message:
        nonlocal received, deadline, done
        if done:  # the body is in: what comes next is the client leaving, however long that takes
            return await receive()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise Refused(408, "Request too slow", f"A request's body must arrive within {seconds:g} s.",
                          "body_timeout") from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
            done = not message.get("more_body", False)
        return message

    return bounded_receive


class ErrorBoundary:
    """Innermost of filmroll's own middleware: a handler's unexpected exception becomes a 500 in its mount's form,
    inside the security headers and the access log (Starlette's own catch-all sits outside both)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = Watched(send)
        try:
            await self.app(scope, receive, watched)
        except (Refused, asyncio.CancelledError):
            raise
        except Exception:
            # Never the query string (the callback's carries codes); database errors carry no values
            # (store/database.py hides statement parameters).
            log.exception("%s %s failed", scope["method"], scope["path"])
            if watched.status:
                raise
            await send_problem(scope, send, 500, "Something went wrong", "filmroll could not answer this request; "
                               "the error is in its log.", "internal_error")
