"""The admin pages and the OAuth callback. Handlers stay thin: parse, call a use-case, render or redirect."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from filmroll import errors
from filmroll.service import accounts as account_service
from filmroll.service.connect import Connector
from filmroll.store import events
from filmroll.store.database import Database
from filmroll.store.tables import Account, Admin
from filmroll.web import security

RETURN_TARGETS = frozenset({"next", "redirect", "redirect_to", "redirect_uri", "return", "return_to", "returnto",
                            "url", "continue", "dest", "destination", "goto"})
STYLESHEET_PATH = "/static/filmroll.css"


@dataclass
class WebContext:
    database: Database
    connector: Connector
    auth: security.AdminAuth
    templates: Jinja2Templates
    public_url: str | None
    authorize_origin: str


router = APIRouter()


def _web(request: Request) -> WebContext:
    return request.app.state.web


def _secure(request: Request) -> bool:
    return security.is_secure(request, _web(request).public_url)


def _session_id(request: Request) -> str | None:
    return request.cookies.get(security.cookie_names(_secure(request))[0])


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("admin", None)
    response = _web(request).templates.TemplateResponse(request, template, {"stylesheet": STYLESHEET_PATH,
                                                                            **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def problem(request: Request, status: int, title: str, message: str, code: str) -> HTMLResponse:
    return page(request, "problem.html", status, title=title, message=message, code=code)


async def _admin(request: Request) -> Admin | None:
    return await _web(request).auth.current(_session_id(request))


async def _form(request: Request) -> dict[str, str]:
    if len(await request.body()) > 16_384:
        raise errors.CallbackError("The form is too large.", code="oversized_form")
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # python-multipart raises several unrelated types for a broken body
        raise errors.CallbackError("The form could not be read.", code="bad_form") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.get(STYLESHEET_PATH, include_in_schema=False)
async def stylesheet(request: Request) -> Response:
    return Response(request.app.state.stylesheet, media_type="text/css",
                    headers={"Cache-Control": "max-age=3600"})


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/accounts" if await _admin(request) else "/login", status_code=303)


@router.get("/login")
async def login_form(request: Request) -> Response:
    login_id = secrets.token_urlsafe(24)
    response = page(request, "login.html", csrf_token=security.csrf_token(login_id), error=None)
    security.set_cookie(response, security.cookie_names(_secure(request))[1], login_id, secure=_secure(request),
                        max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    secure = _secure(request)
    session_name, login_name = security.cookie_names(secure)
    login_id = request.cookies.get(login_name)
    if not security.csrf_ok(login_id, form.get("csrf_token")):
        return problem(request, 403, "Please try again", "The sign-in form expired or came from another site. "
                       "Reload the sign-in page and try again.", "csrf")
    client = request.client.host if request.client else "unknown"
    outcome = await _web(request).auth.login(form.get("username", ""), form.get("password", ""), client)
    if outcome.retry_after is not None:
        response = page(request, "login.html", 429, csrf_token=security.csrf_token(login_id or ""),
                        error=f"Too many failed attempts. Try again in {outcome.retry_after // 60 + 1} minutes.")
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    if outcome.admin is None:
        return page(request, "login.html", 401, csrf_token=security.csrf_token(login_id or ""),
                    error="Wrong username or password.")
    session_id = await _web(request).auth.open(outcome.admin)
    signed_in = RedirectResponse("/accounts", status_code=303)
    security.set_cookie(signed_in, session_name, session_id, secure=secure, max_age=None)
    signed_in.delete_cookie(login_name, path="/", secure=secure, httponly=True, samesite="lax")
    return signed_in


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    session_id = _session_id(request)
    if session_id and security.csrf_ok(session_id, form.get("csrf_token")):
        await _web(request).auth.close(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.cookie_names(_secure(request))[0], path="/", secure=_secure(request),
                           httponly=True, samesite="lax")
    return response


@router.get("/accounts")
async def accounts_page(request: Request) -> Response:
    admin = await _admin(request)
    if admin is None:
        return RedirectResponse("/login", status_code=303)
    listing = await account_service.listing(_web(request).database)
    return page(request, "accounts.html", admin=admin, accounts=listing, now=_web(request).database.clock.now(),
                csrf_token=security.csrf_token(_session_id(request) or ""))


@dataclass
class AdminForm:
    admin: Admin
    session_id: str
    fields: dict[str, str]


async def _admin_form(request: Request, button: str) -> AdminForm | Response:
    """A form an admin posted from a page of ours: signed in, and the CSRF token matches their session. Anything
    else gets the response to send instead (to the sign-in page, or a 403 naming the ``button`` to press again)."""
    admin = await _admin(request)
    session_id = _session_id(request)
    fields = await _form(request)
    if admin is None or session_id is None:
        return RedirectResponse("/login", status_code=303)
    if not security.csrf_ok(session_id, fields.get("csrf_token")):
        return problem(request, 403, "Please try again", "That button press came from an expired page or another "
                       f"site. Reload the accounts page and press {button} again.", "csrf")
    return AdminForm(admin, session_id, fields)


@router.post("/accounts/{account_id}/sync")
async def sync_soon(request: Request, account_id: int) -> Response:
    """*Sync now*: the account becomes due, and the next free worker (embedded or not) syncs it."""
    form = await _admin_form(request, "Sync now")
    if isinstance(form, Response):
        return form
    await account_service.sync_soon(_web(request).database, account_id, actor=f"admin:{form.admin.username}")
    return RedirectResponse("/accounts", status_code=303)


@router.post("/connect")
async def connect(request: Request) -> Response:
    form = await _admin_form(request, "Connect")
    if isinstance(form, Response):
        return form
    url = await _web(request).connector.begin(flow="web", session_id=form.session_id,
                                              force_reauth=form.fields.get("force_reauth") == "1")
    return RedirectResponse(url, status_code=303)  # a full-page redirect: Instagram's login breaks in popups


async def callback(request: Request) -> Response:
    """Where Instagram sends the owner back. Nothing is exchanged unless every check passes first."""
    try:
        query = request.scope["query_string"].decode("ascii")
    except UnicodeDecodeError:
        raise errors.CallbackError("The redirect's address is not valid.", code="bad_encoding") from None
    names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    if names & RETURN_TARGETS:
        raise errors.CallbackError("This redirect names a place to go next; filmroll never follows those.",
                                   code="return_target")
    state = next((value for name, value in parse_qsl(query) if name == "state"), "")
    if state and await _web(request).connector.flow_of(state) == "reconnect":
        return await _finish_reconnect(request, query)
    session_id = _session_id(request)
    admin = await _admin(request)
    if admin is None or session_id is None:
        raise errors.CallbackError("Sign in to filmroll first, then press Connect again; this redirect can only "
                                   "finish a connection started from your signed-in browser.", code="no_session")
    connected = await _web(request).connector.complete(query, flow="web", session_id=session_id,
                                                       actor=admin.username)
    return RedirectResponse(f"/connections/{connected.event_id}", status_code=303)


@router.get("/connections/{event_id}")
async def connection_summary(request: Request, event_id: int) -> Response:
    admin = await _admin(request)
    if admin is None:
        return RedirectResponse("/login", status_code=303)
    async with _web(request).database.read() as session:
        event = await events.get(session, event_id)
        account = await session.get(Account, event.account_id) if event and event.account_id else None
    if event is None or not event.kind.startswith(("account.", "connect.")):
        return problem(request, 404, "Not found", "There is no such connection.", "not_found")
    return page(request, "connection.html", admin=admin, event=event, account=account,
                ok=event.kind != "connect.failed")


# ----- an owner's reconnect link: no admin login; the browser is bound to the sign-in by its own cookie ----------

RECONNECT_COOKIE_AGE = 600  # as long as the OAuth state it guards


def _reconnect_cookie(request: Request) -> str:
    return ("__Host-" if _secure(request) else "") + "filmroll_reconnect"


def _owner_problem(request: Request, status: int, title: str, exc: errors.FilmrollError) -> HTMLResponse:
    code = getattr(exc, "code", None) or type(exc).__name__
    return page(request, "problem.html", status, title=title, message=exc.message, code=code, owner=True)


@router.get("/reconnect")
async def reconnect_page(request: Request) -> Response:
    """What the webhook's link opens. A GET changes nothing (mail scanners and link previews fetch it too)."""
    secret = request.query_params.get("link", "")
    try:
        link, account = await _web(request).connector.check_link(secret)
    except errors.CallbackError as exc:
        return _owner_problem(request, 404 if exc.code == "unknown_link" else 410, "This link cannot be used", exc)
    return page(request, "reconnect.html", account=account, link=secret, expires_at=link.expires_at)


@router.post("/reconnect")
async def reconnect(request: Request) -> Response:
    form = await _form(request)
    binding = secrets.token_urlsafe(32)
    try:
        url = await _web(request).connector.begin_reconnect(form.get("link", ""), session_id=binding)
    except errors.CallbackError as exc:
        return _owner_problem(request, 410, "This link cannot be used", exc)
    response = RedirectResponse(url, status_code=303)
    security.set_cookie(response, _reconnect_cookie(request), binding, secure=_secure(request),
                        max_age=RECONNECT_COOKIE_AGE)
    return response


async def _finish_reconnect(request: Request, query: str) -> Response:
    binding = request.cookies.get(_reconnect_cookie(request))
    try:
        await _web(request).connector.complete(query, flow="reconnect", session_id=binding, actor="owner")
    except errors.CallbackError as exc:
        title = "Reconnect cancelled" if isinstance(exc, errors.AuthorizationDeniedError) else "Not reconnected"
        return _owner_problem(request, 400, title, exc)
    except errors.InstagramError as exc:
        return _owner_problem(request, 502, "Instagram did not cooperate", exc)
    return RedirectResponse("/reconnected", status_code=303)  # a reload must not replay the callback


@router.get("/reconnected")
async def reconnected(request: Request) -> Response:
    binding = request.cookies.get(_reconnect_cookie(request))
    account = await _web(request).connector.reconnected(binding) if binding else None
    if account is None:
        return page(request, "problem.html", 404, title="Nothing to show", code="no_reconnect", owner=True,
                    message="This browser has not finished a reconnect recently.")
    return page(request, "reconnected.html", account=account)
