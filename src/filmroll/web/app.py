"""``create_app(settings)``: the FastAPI application, by audience (``web/rendering.py``):

    admin    web/admin.py    sign-in, accounts, Connect, Sync now, a connection's summary
             web/feed_editor.py   the feeds: list, editor with a live preview, hide and pin
    owner    web/oauth.py    the OAuth callback and the owner's reconnect link
    public   web/public.py   health and media; web/feeds.py: feeds and the widget; web/meta.py: Meta's callbacks

The lifespan opens the runtime (and, for ``serve``, the embedded worker); nothing is created at import time.
Errors become responses here, and only here, each in its audience's form.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from filmroll import __version__, errors
from filmroll.passwords import PasswordChecker
from filmroll.runtime import Runtime, open_runtime
from filmroll.service import feed_documents
from filmroll.service.metrics import Metrics
from filmroll.settings import Settings
from filmroll.web import (
    admin,
    api,
    api_keys_page,
    feed_editor,
    feeds,
    insights,
    meta,
    moderation,
    oauth,
    public,
    security,
)
from filmroll.web.access import NAME as ACCESS
from filmroll.web.access import AccessLog, RequestLog
from filmroll.web.deps import FormRejected, SignInRequired, WebContext
from filmroll.web.limits import ErrorBoundary, RequestLimits, bounds
from filmroll.web.rendering import Audience, problem
from filmroll.web.throttle import SignInThrottle, parse_networks
from filmroll.worker import run_supervised

TEMPLATES = Path(__file__).parent / "templates"


async def _sign_in(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _form_rejected(request: Request, exc: Exception) -> Response:
    return problem(request, 403, "Please try again", "That button press came from an expired page or another site. "
                   "Reload the page and press the button again.", "csrf")


async def _callback_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CallbackError)
    status = 401 if exc.code == "no_session" else 400
    title = "Connection cancelled" if isinstance(exc, errors.AuthorizationDeniedError) else "Connection not completed"
    return problem(request, status, title, exc.message, exc.code)


async def _instagram_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.InstagramError)
    if exc.event_id is not None:  # a failed connect: its summary page says what happened
        return RedirectResponse(f"/connections/{exc.event_id}", status_code=303)
    return problem(request, 502, "Instagram did not cooperate", exc.message, "instagram")


async def _signed_request(request: Request, exc: Exception) -> Response:
    return problem(request, 400, "Request refused", "The signed request is not valid.", "invalid_signed_request")


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FilmrollError)
    return problem(request, 404, "Not found", exc.message, "not_found")


async def _account_state(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.AccountStateError)
    return problem(request, 409, "Not possible right now", exc.message, exc.status)


async def _filmroll_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FilmrollError)
    return problem(request, 500, "Something went wrong", exc.message, type(exc).__name__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return problem(request, 404, "Not found", "There is no page at this address.", "not_found")
    if exc.status_code == 405:
        response = problem(request, 405, "Method not allowed", "This address does not take that method.",
                           "method_not_allowed")
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return problem(request, exc.status_code, "Request refused", str(exc.detail), "http")


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # A path parameter that is not a number (/accounts/abc/sync) names no page; anything else is a bad request.
    assert isinstance(exc, RequestValidationError)
    in_path = any(error.get("loc", ("",))[0] == "path" for error in exc.errors())
    if in_path:
        return problem(request, 404, "Not found", "There is no page at this address.", "not_found")
    return problem(request, 400, "Request refused", "The request's parameters are not valid.", "invalid_request")


class _FilmrollApp(FastAPI):
    """FastAPI, with :class:`~filmroll.web.feeds.FeedFastPath` in front of all it does per request: a current feed
    document is answered from memory before FastAPI's telemetry check, routing, dependencies or middleware run."""

    _front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._front is None:  # made at the first call (the lifespan's), as Starlette makes its middleware stack
            self._front = feeds.FeedFastPath(super().__call__, state=self.state,
                                             headers=self.state.fast_path_headers, log=self.state.access)
        await self._front(scope, receive, send)


def create_app(settings: Settings, *, upgrade: bool = True, worker: bool = False, freeze_gc: bool = False) -> FastAPI:
    """The app; ``worker`` embeds a worker (``filmroll serve``). ``freeze_gc``: once started, move every object made
    so far (modules, the runtime, the rendered feeds) out of the cyclic collector's reach, so its full collections
    stop walking them: under load they stalled every request in flight (p99 at 256 connections halved,
    ``bench/feeds.py``). For a server process only: objects frozen are never collected, so tests that make many apps
    in one process leave it off."""
    trusted_proxies = parse_networks(settings.web.trusted_proxies)  # a bad entry stops start-up, saying which
    authorize = urlsplit(settings.instagram.authorize_url)
    authorize_origin = f"{authorize.scheme}://{authorize.netloc}"
    public_url = settings.web.public_url
    # On where the setting and the log level ask for it (`filmroll serve` logs at INFO): an app made elsewhere (a
    # test, a benchmark's baseline) at the default WARNING writes no line, as with any other INFO line.
    requests = RequestLog(enabled=settings.web.access_log and logging.getLogger(ACCESS).isEnabledFor(logging.INFO))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        requests.start()
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(requests.close)
            runtime = await stack.enter_async_context(open_runtime(settings, upgrade=upgrade))
            app.state.runtime = runtime
            app.state.web = context = _context(runtime)
            api.bind(management, context)
            stop = asyncio.Event()
            tasks = [asyncio.create_task(context.feeds.run(stop))]
            engine = runtime.worker() if worker else None
            if engine is not None:  # the embedded worker: one process does everything on a single machine (§5)
                tasks.append(asyncio.create_task(run_supervised(engine, stop)))
            app.state.metrics = Metrics(runtime.database, jobs=(lambda: engine.stats.jobs) if engine else None,
                                        answered=context.feeds.answered,
                                        database_gauges=settings.metrics.database_gauges,
                                        cache_seconds=settings.metrics.cache_seconds,
                                        max_attempts=runtime.mirror_policy.max_attempts)
            if freeze_gc:
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                stop.set()
                await asyncio.gather(*tasks)
                context.auth.checker.close()

    def _context(runtime: Runtime) -> WebContext:
        secret = runtime.vault.keyring.derive("web")
        throttle = SignInThrottle(runtime.database, secret, per_account=settings.web.login_attempts_per_account,
                                  per_client=settings.web.login_attempts_per_client,
                                  lockout=timedelta(seconds=settings.web.login_lockout_seconds))
        auth = security.AdminAuth(runtime.database, idle=timedelta(minutes=settings.web.session_idle_minutes),
                                  absolute=timedelta(hours=settings.web.session_absolute_hours), throttle=throttle,
                                  checker=PasswordChecker(at_once=settings.web.password_checks,
                                                          priority=settings.web.password_check_priority))
        documents = runtime.document_settings()
        base_url = (settings.feeds.base_url or public_url or "").rstrip("/")
        cache = feeds.FeedCache(runtime.database, documents, base_url=base_url,
                                poll_seconds=settings.feeds.poll_seconds)
        caching = feeds.Caching(settings.feeds.max_age_seconds, settings.feeds.stale_while_revalidate_seconds,
                                settings.feeds.stale_if_error_seconds)
        return WebContext(runtime, runtime.connector(), auth, security.Csrf(secret),
                          # the admin pages draw post types with the feeds' icons (feed_assets/icons.html)
                          Jinja2Templates(directory=[TEMPLATES, feed_documents.ASSETS]), public_url,
                          authorize_origin, cache, caching, trusted_proxies,
                          public.OnDemand(at_once=settings.mirror.processes))

    # redirect_slashes off: Starlette built that redirect from the Host header (Location: http://evil.example/…).
    app = _FilmrollApp(title="filmroll", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                       redirect_slashes=False, openapi_url="/openapi.json")
    app.state.stylesheet = (TEMPLATES / "filmroll.css").read_text()
    app.state.editor_script = feed_editor.SCRIPT.read_text()
    app.state.embedded_worker = worker
    app.include_router(public.router())
    app.include_router(feeds.router())
    app.include_router(admin.router())
    app.include_router(feed_editor.router())
    app.include_router(moderation.router())
    app.include_router(insights.router())
    app.include_router(api_keys_page.router())
    app.include_router(oauth.router(urlsplit(settings.instagram.redirect_uri).path or "/callback"))
    app.include_router(meta.router(settings))
    management = app.state.api = api.create_api(settings.api.requests_per_minute)
    app.state.return_origins = management.state.return_origins = list(settings.api.return_origins)
    management.state.public_origin = settings.public_origin()
    app.mount("/api/v1", management)
    for error, handler in ((SignInRequired, _sign_in), (FormRejected, _form_rejected),
                           (errors.CallbackError, _callback_error), (errors.InstagramError, _instagram_error),
                           (errors.SignedRequestError, _signed_request),
                           (errors.AccountNotFoundError, _not_found), (errors.FeedNotFoundError, _not_found),
                           (errors.AccountStateError, _account_state),
                           (errors.FilmrollError, _filmroll_error), (HTTPException, _http_error),
                           (RequestValidationError, _invalid_request)):
        app.add_exception_handler(error, handler)
    dialog = urlsplit(settings.facebook.dialog_url)
    sign_ins = " ".join(dict.fromkeys([authorize_origin, f"{dialog.scheme}://{dialog.netloc}"]))
    headers = security.SecurityHeaders.for_audiences(form_action=sign_ins,
                                                     hsts=bool(public_url and public_url.startswith("https://")))
    # Innermost first: the error boundary inside the limits, both inside the headers and the access log, so every
    # answer, refusals and failures included, carries its mount's headers and is logged with its real status.
    app.add_middleware(ErrorBoundary)
    app.add_middleware(security.SameOrigin, public_url=public_url)
    app.add_middleware(RequestLimits, bounds=bounds(settings.web))
    app.add_middleware(security.SecurityHeaders, headers=headers)
    app.state.fast_path_headers = headers[Audience.PUBLIC]
    app.state.access = requests
    app.add_middleware(AccessLog, log=requests)
    return app
