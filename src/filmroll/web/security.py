"""Admin authentication for the web UI: server-side sessions, CSRF tokens, login throttling (passwords are checked by
``filmroll/passwords.py``), and the security headers every response carries.

Session cookie: ``HttpOnly; SameSite=Lax; Path=/`` and, over HTTPS, ``Secure`` with the ``__Host-`` prefix. Lax,
not Strict: Instagram's redirect back to ``/callback`` is a cross-site top-level GET, and a Strict cookie would not
come with it, which would break binding the ``state`` to the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filmroll import passwords
from filmroll.store import admins
from filmroll.store.database import Database
from filmroll.store.tables import Admin
from filmroll.web.rendering import Audience, audience_of

THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)


def cookie_names(secure: bool) -> tuple[str, str]:
    prefix = "__Host-" if secure else ""
    return f"{prefix}filmroll_session", f"{prefix}filmroll_login"


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"filmroll csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_id: str | None, submitted: str | None) -> bool:
    if not session_id or not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_id), submitted)


def is_secure(request: Request, public_url: str | None) -> bool:
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax")


@dataclass(frozen=True)
class LoginOutcome:
    admin: Admin | None = None
    retry_after: int | None = None  # seconds, when throttled


class AdminAuth:
    def __init__(self, database: Database, *, idle: timedelta, absolute: timedelta) -> None:
        self.database = database
        self.idle = idle
        self.absolute = absolute

    async def login(self, username: str, password: str, client: str) -> LoginOutcome:
        now = self.database.clock.now()
        username = username.strip()[:64]
        async with self.database.read() as session:
            failures = await admins.count_failures(session, username, client, now - THROTTLE_WINDOW)
            if failures >= THROTTLE_FAILURES:
                oldest = await admins.oldest_failure(session, username, client, now - THROTTLE_WINDOW)
                wait = (oldest + THROTTLE_WINDOW - now).total_seconds() if oldest else THROTTLE_WINDOW.seconds
                return LoginOutcome(retry_after=max(1, int(wait) + 1))
            admin = await admins.find(session, username)
        verified = passwords.verify(admin.password_hash if admin else None, password)
        async with self.database.transaction() as session:
            if not verified or admin is None:
                await admins.add_failure(session, username, client, now)
                return LoginOutcome()
            await admins.clear_failures(session, username, client)
            if passwords.needs_rehash(admin.password_hash):
                fresh = await session.get(Admin, admin.id)
                assert fresh is not None
                await admins.set_password_hash(session, fresh, passwords.hash_password(password), now)
        return LoginOutcome(admin=admin)

    async def open(self, admin: Admin) -> str:
        """A new session id at every login (never reuse a pre-login id)."""
        session_id = secrets.token_urlsafe(32)
        async with self.database.transaction() as session:
            await admins.open_session(session, admin.id, session_id, self.database.clock.now(), self.absolute)
        return session_id

    async def current(self, session_id: str | None) -> Admin | None:
        if not session_id or len(session_id) > 100:
            return None
        now = self.database.clock.now()
        async with self.database.read() as session:
            found = await admins.live_session(session, session_id, now, self.idle)
        if found is None:
            return None
        row, admin = found
        if now - row.last_seen_at > timedelta(seconds=60):  # write at most once a minute per session
            async with self.database.transaction() as session:
                await admins.touch_session(session, session_id, now)
        return admin

    async def close(self, session_id: str) -> None:
        async with self.database.transaction() as session:
            await admins.close_session(session, session_id, self.database.clock.now())


class SecurityHeaders:
    """Each audience's headers on every response (``web/rendering.py`` says whose a response is); a header the
    handler set itself wins.

    * every response: ``nosniff``, ``no-referrer``, HSTS when served over HTTPS;
    * admin and owner pages: a CSP that allows only our own styles and forms (``form_action`` must allow Instagram's
      authorize origin: browsers apply form-action to the redirect after our Connect button), never framed, never
      stored in a cache;
    * public responses: embeddable and fetchable from other origins (``Cross-Origin-Resource-Policy:
      cross-origin``); their caching is the handler's to say, ``no-cache`` if it says nothing.
    """

    def __init__(self, app: ASGIApp, *, headers: dict[Audience, list[tuple[bytes, bytes]]]) -> None:
        self.app = app
        self.headers = headers

    @staticmethod
    def for_audiences(*, form_action: str, hsts: bool) -> dict[Audience, list[tuple[bytes, bytes]]]:
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if hsts:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        csp = ("default-src 'none'; style-src 'self'; img-src 'self' data: https:; script-src 'self'; "
               "frame-src 'self'; "
               f"form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
        pages = [*common, (b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY"),
                 (b"cross-origin-opener-policy", b"same-origin"), (b"cache-control", b"no-store")]
        public = [*common, (b"cross-origin-resource-policy", b"cross-origin"), (b"cache-control", b"no-cache")]
        return {Audience.ADMIN: pages, Audience.OWNER: pages, Audience.PUBLIC: public}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in self.headers[audience_of(scope)] if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
