"""Who is calling the management API, and whether they may: the ``Authorization: Bearer`` key checked
(``service/api_keys.py``), counted against its budget a minute, and its scope held against the method. Used by
``web/api_routes.py`` as dependencies; ``web/api.py`` turns :class:`ApiRefused` into the API's error shape."""

from __future__ import annotations

import math
import secrets
import time
from typing import Annotated

from fastapi import Depends, Request

from filmroll.service.api_keys import ApiKeyView, KeyChecker
from filmroll.web.deps import WebContext

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiRefused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class RateLimiter:
    """A fixed one-minute window per key, in this process (a key used through several ``serve`` processes gets
    the budget in each: the limit protects the process, not a global quota)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[int, tuple[int, int]] = {}  # key id -> (window start minute, requests in it)

    def take(self, key_id: int, now: float) -> tuple[bool, dict[str, str]]:
        minute = int(now // 60)
        start, used = self._windows.get(key_id, (minute, 0))
        if start != minute:
            start, used = minute, 0
        allowed = used < self.per_minute
        used += allowed
        self._windows[key_id] = (start, used)
        headers = {"RateLimit-Limit": str(self.per_minute), "RateLimit-Remaining": str(self.per_minute - used),
                   "RateLimit-Reset": str(max(1, math.ceil((minute + 1) * 60 - now)))}
        return allowed, headers


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


def bearer(request: Request) -> str | None:
    """The key an ``Authorization: Bearer …`` header carries, if it carries one (the API's and /metrics')."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


async def caller(request: Request) -> ApiKeyView:
    """The key the request carries, checked, counted against its budget, and allowed to do what is asked."""
    key = bearer(request)
    if key is None:
        raise ApiRefused(401, "unauthorized", "send a management API key: Authorization: Bearer flr_… "
                         "(`filmroll api-keys create NAME --scope read|write`)", {"WWW-Authenticate": "Bearer"})
    checker: KeyChecker = request.app.state.keys
    found = await checker.check(key)
    if found is None:
        raise ApiRefused(401, "unauthorized", "this API key is not valid: mistyped, or revoked",
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    limiter: RateLimiter = request.app.state.limiter
    allowed, headers = limiter.take(found.id, time.time())
    request.state.rate_headers = headers
    if not allowed:
        raise ApiRefused(429, "rate_limited", f"this key made {limiter.per_minute} requests this minute; wait "
                         f"{headers['RateLimit-Reset']} s", {"Retry-After": headers["RateLimit-Reset"]})
    if request.method not in SAFE_METHODS and found.scope != "write":
        raise ApiRefused(403, "forbidden", "this key's scope is read: it may only read (make a write key to "
                         "change things)")
    return found


def actor(key: ApiKeyView) -> str:
    """Who did it, as events record it: the key's id and name, never the key."""
    return f"api:{key.id}:{key.name}"[:100]


def owner(key: ApiKeyView) -> str:
    """A lease owner for work done now on the API's behalf (a refresh, a probe)."""
    return f"api:{key.id}:{secrets.token_hex(3)}"


Caller = Annotated[ApiKeyView, Depends(caller)]
Context = Annotated[WebContext, Depends(context)]


