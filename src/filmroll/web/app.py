"""``create_app(settings)``: the FastAPI application. The lifespan opens the database, vault and Instagram client;
nothing is created at import time. Errors become responses here, and only here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filmroll import errors
from filmroll.runtime import Runtime, open_runtime
from filmroll.settings import Settings
from filmroll.web import health, pages, security
from filmroll.worker import run_supervised

TEMPLATES = Path(__file__).parent / "templates"
access_log = logging.getLogger("filmroll.access")


class AccessLog:
    """Method, path and status — never the query string, which carries codes and states on the callback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            access_log.info("%s %s %s %.1fms", scope["method"], scope["path"], status,
                            1000 * (time.monotonic() - started))


async def _callback_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CallbackError)
    status = 401 if exc.code == "no_session" else 400
    title = "Connection cancelled" if isinstance(exc, errors.AuthorizationDeniedError) else "Connection not completed"
    return pages.problem(request, status, title, exc.message, exc.code)


async def _instagram_error(request: Request, exc: Exception) -> Response:
    event_id = getattr(exc, "event_id", None)
    if event_id is not None:
        return RedirectResponse(f"/connections/{event_id}", status_code=303)
    assert isinstance(exc, errors.InstagramError)
    return pages.problem(request, 502, "Instagram did not cooperate", exc.message, "instagram")


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FilmrollError)
    return pages.problem(request, 404, "Not found", exc.message, "not_found")


async def _account_state(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.AccountStateError)
    return pages.problem(request, 409, "Not possible right now", exc.message, exc.status)


async def _filmroll_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FilmrollError)
    return pages.problem(request, 500, "Something went wrong", exc.message, type(exc).__name__)


def create_app(settings: Settings, *, upgrade: bool = True, worker: bool = False) -> FastAPI:
    authorize = urlsplit(settings.instagram.authorize_url)
    authorize_origin = f"{authorize.scheme}://{authorize.netloc}"
    public_url = settings.web.public_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, upgrade=upgrade) as runtime:
            app.state.runtime = runtime
            app.state.web = _context(runtime)
            if not worker:
                yield
                return
            # The embedded worker: one process does everything on a single machine (design §5).
            stop = asyncio.Event()
            task = asyncio.create_task(run_supervised(runtime.worker(), stop))
            try:
                yield
            finally:
                stop.set()
                await task

    def _context(runtime: Runtime) -> pages.WebContext:
        connector = runtime.connector()
        auth = security.AdminAuth(runtime.database, idle=timedelta(minutes=settings.web.session_idle_minutes),
                                  absolute=timedelta(hours=settings.web.session_absolute_hours))
        return pages.WebContext(runtime.database, connector, auth, Jinja2Templates(directory=str(TEMPLATES)),
                                public_url, authorize_origin)

    app = FastAPI(title="filmroll", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stylesheet = (TEMPLATES / "filmroll.css").read_text()
    app.state.embedded_worker = worker
    app.include_router(health.router)
    app.include_router(pages.router)
    callback_path = urlsplit(settings.instagram.redirect_uri).path or "/callback"
    app.add_api_route(callback_path, pages.callback, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(errors.CallbackError, _callback_error)
    app.add_exception_handler(errors.InstagramError, _instagram_error)
    app.add_exception_handler(errors.AccountNotFoundError, _not_found)
    app.add_exception_handler(errors.AccountStateError, _account_state)
    app.add_exception_handler(errors.FilmrollError, _filmroll_error)
    app.add_middleware(security.SecurityHeaders, form_action=authorize_origin,
                       hsts=bool(public_url and public_url.startswith("https://")))
    app.add_middleware(AccessLog)
    return app
