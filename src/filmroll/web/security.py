"""Admin authentication for the web UI: server-side sessions, CSRF tokens, sign-in (throttled by ``web/throttle.py``,
passwords checked off the event loop by ``filmroll/passwords.py``), and the security headers every response carries.

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
from filmroll.web.limits import send_problem
from filmroll.web.rendering import Audience, audience_of
from filmroll.web.throttle import SignInThrottle


def cookie_names(secure: bool) -> tuple[str, str]:
    prefix = "__Host-" if secure else ""
    return f"{prefix}filmroll_session", f"{prefix}filmroll_login"


class Csrf:
    """CSRF tokens: an HMAC of the browser's binding (its session id, or its sign-in form's cookie) under a server
    secret, so a cookie planted over plain HTTP does not come with a token that matches it."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, binding: str) -> str:
        return hmac.new(self._secret, b"csrf\0" + binding.encode(), hashlib.sha256).hexdigest()

    def ok(self, binding: str | None, submitted: str | None) -> bool:
        if not binding or not submitted:
            return False
        # As bytes: compare_digest refuses non-ASCII text, and a form field can hold anything.
        return hmac.compare_digest(self.token(binding).encode(), submitted.encode("utf-8", "surrogateescape"))


def is_secure(request: Request, public_url: str | None) -> bool:
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax")


@dataclass(frozen=True)
class LoginOutcome:
    admin: Admin | None = None
    retry_after: int | None = None  # seconds, when throttled
    busy: bool = False  # too many sign-ins waiting for a password check


class AdminAuth:
    def __init__(self, database: Database, *, idle: timedelta, absolute: timedelta, throttle: SignInThrottle,
                 checker: passwords.PasswordChecker) -> None:
        self.database = database
        self.idle = idle
        self.absolute = absolute
        self.throttle = throttle
        self.checker = checker

    async def login(self, username: str, password: str, client: str) -> LoginOutcome:
        username = username.strip()[:64]
        retry_after = await self.throttle.attempt(username, client)  # counted before the check, whatever it finds
        if retry_after is not None:
            return LoginOutcome(retry_after=retry_after)
        async with self.database.read() as session:
            admin = await admins.find(session, username)
        try:
            verified = await self.checker.verify(admin.password_hash if admin else None, password)
        except passwords.Busy:
            return LoginOutcome(busy=True)
        if not verified or admin is None:
            return LoginOutcome()
        await self.throttle.succeeded(username, client)
        if passwords.needs_rehash(admin.password_hash):
            fresh_hash = await self.checker.rehash(password)
            async with self.database.transaction() as session:
                fresh = await session.get(Admin, admin.id)
                assert fresh is not None
                await admins.set_password_hash(session, fresh, fresh_hash, self.database.clock.now())
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


HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """Each audience's headers on every response (``web/rendering.py`` says whose a response is); a header the
    handler set itself wins.

    * every response: ``nosniff``, ``no-referrer``, HSTS when served over HTTPS (``PUBLIC_URL`` says so, or
      filmroll terminates TLS itself);
    * admin and owner pages: a CSP that allows only our own styles and forms (``form_action`` must allow Instagram's
      authorize origin: browsers apply form-action to the redirect after our Connect button), never framed, never
      stored in a cache;
    * public responses: embeddable and fetchable from other origins (``Cross-Origin-Resource-Policy:
      cross-origin``); their caching is the handler's to say, ``no-cache`` if it says nothing.
    """

    def __init__(self, app: ASGIApp, *, headers: dict[Audience, list[tuple[bytes, bytes]]]) -> None:
        self.app = app
        self.headers = headers
        # filmroll terminating TLS itself (`serve --tls-cert`): HSTS on every response, whatever PUBLIC_URL says.
        self.over_tls = {audience: [*listed, HSTS] if HSTS not in listed else listed
                         for audience, listed in headers.items()}

    @staticmethod
    def for_audiences(*, form_action: str, hsts: bool) -> dict[Audience, list[tuple[bytes, bytes]]]:
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if hsts:
            common.append(HSTS)
        csp = ("default-src 'none'; style-src 'self'; img-src 'self' data: https:; script-src 'self'; "
               "frame-src 'self'; connect-src 'self'; "
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
                listed = (self.over_tls if scope.get("scheme") == "https" else self.headers)[audience_of(scope)]
                message["headers"] = list(message.get("headers", [])) + [h for h in listed if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SameOrigin:
    """State-changing requests to the admin and owner pages must come from filmroll's own pages: a browser's
    ``Sec-Fetch-Site`` (or, from older browsers, ``Origin``) naming another site is refused before any handler runs,
    a second line behind the CSRF tokens. Requests without either header are not a browser's cross-site request
    (scripts, curl) and meet the CSRF check alone. Public routes (Meta's server-to-server callbacks) are exempt."""

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.public_origin = public_url.rstrip("/").lower() if public_url else None

    def _cross_site(self, scope: Scope) -> bool:
        headers = {name: value for name, value in scope["headers"] if name in (b"sec-fetch-site", b"origin",
                                                                                 b"host")}
        site = headers.get(b"sec-fetch-site")
        if site is not None:
            return site not in (b"same-origin", b"none")
        origin = headers.get(b"origin")
        if origin is None:
            return False
        said = origin.decode("latin-1").lower()
        own = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}".lower()
        return said not in (own, self.public_origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] not in SAFE_METHODS
                and audience_of(scope) is not Audience.PUBLIC and self._cross_site(scope)):
            await send_problem(scope, send, 403, "Please try again", "That request came from another site. Open "
                               "filmroll's page and press the button there.", "cross_site")
            return
        await self.app(scope, receive, send)
