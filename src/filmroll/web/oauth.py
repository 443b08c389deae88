"""Where Instagram sends people back, and the account owner's reconnect flow (no admin login: the browser is bound
to the sign-in by a cookie of its own). Nothing is exchanged unless every check passes first."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from filmroll import errors
from filmroll.service import connect_links
from filmroll.web import security
from filmroll.web.deps import FormFields, Web, optional_admin, secure, session_id
from filmroll.web.rendering import AUDIENCE_KEY, Audience, page, problem, route_class

RETURN_TARGETS = frozenset({"next", "redirect", "redirect_to", "redirect_uri", "return", "return_to", "returnto",
                            "url", "continue", "dest", "destination", "goto"})
RECONNECT_COOKIE_AGE = 600  # as long as the OAuth state it guards


def router(callback_path: str) -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.OWNER), include_in_schema=False)
    routes.add_api_route(callback_path, callback, methods=["GET"])
    routes.add_api_route("/reconnect", reconnect_page, methods=["GET"])
    routes.add_api_route("/reconnect", reconnect, methods=["POST"])
    routes.add_api_route("/reconnected", reconnected, methods=["GET"])
    routes.add_api_route("/connect-link", connect_link_page, methods=["GET"])
    routes.add_api_route("/connect-link", connect_link, methods=["POST"])
    routes.add_api_route("/connect-link/done", connect_link_done, methods=["GET"])
    return routes


async def callback(request: Request, web: Web) -> Response:
    # Until the state says it is an owner's reconnect, this is an admin's connection: errors render as admin pages.
    request.scope[AUDIENCE_KEY] = Audience.ADMIN
    try:
        query = request.scope["query_string"].decode("ascii")
    except UnicodeDecodeError:
        raise errors.CallbackError("The redirect's address is not valid.", code="bad_encoding") from None
    names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    if names & RETURN_TARGETS:
        raise errors.CallbackError("This redirect names a place to go next; filmroll never follows those.",
                                   code="return_target")
    state = next((value for name, value in parse_qsl(query) if name == "state"), "")
    flow = await web.connector.flow_of(state) if state else None
    if flow == "reconnect":
        return await _finish_reconnect(request, web, query)
    if flow == "connect_link":
        return await _finish_connect_link(request, web, query, state)
    current = session_id(request, web)
    admin = await optional_admin(request, web)  # only now: the checks above touch neither database nor network
    if admin is None or current is None:
        raise errors.CallbackError("Sign in to filmroll first, then press Connect again; this redirect can only "
                                   "finish a connection started from your signed-in browser.", code="no_session")
    connection = await web.connector.complete(query, flow="web", session_id=current, actor=admin.username)
    return RedirectResponse(f"/connections/{connection.first.event_id}", status_code=303)


def _reconnect_cookie(request: Request, web: Web) -> str:
    return ("__Host-" if secure(request, web) else "") + "filmroll_reconnect"


async def reconnect_page(request: Request, web: Web) -> Response:
    """What the webhook's link opens. A GET changes nothing (mail scanners and link previews fetch it too)."""
    secret = request.query_params.get("link", "")
    try:
        link, account = await web.connector.check_link(secret)
    except errors.CallbackError as exc:
        return problem(request, 404 if exc.code == "unknown_link" else 410, "This link cannot be used", exc.message,
                       exc.code)
    return page(request, "reconnect.html", account=account, link=secret, expires_at=link.expires_at)


async def reconnect(request: Request, web: Web, form: FormFields) -> Response:
    binding = secrets.token_urlsafe(32)
    try:
        url = await web.connector.begin_reconnect(form.get("link", ""), session_id=binding)
    except errors.CallbackError as exc:
        return problem(request, 410, "This link cannot be used", exc.message, exc.code)
    response = RedirectResponse(url, status_code=303)
    security.set_cookie(response, _reconnect_cookie(request, web), binding, secure=secure(request, web),
                        max_age=RECONNECT_COOKIE_AGE)
    return response


async def _finish_reconnect(request: Request, web: Web, query: str) -> Response:
    request.scope[AUDIENCE_KEY] = Audience.OWNER
    binding = request.cookies.get(_reconnect_cookie(request, web))
    try:
        await web.connector.complete(query, flow="reconnect", session_id=binding, actor="owner")
    except errors.CallbackError as exc:
        title = "Reconnect cancelled" if isinstance(exc, errors.AuthorizationDeniedError) else "Not reconnected"
        return problem(request, 400, title, exc.message, exc.code)
    except errors.InstagramError as exc:
        return problem(request, 502, "Instagram did not cooperate", exc.message, type(exc).__name__)
    return RedirectResponse("/reconnected", status_code=303)  # a reload must not replay the callback


async def reconnected(request: Request, web: Web) -> Response:
    binding = request.cookies.get(_reconnect_cookie(request, web))
    account = await web.connector.reconnected(binding) if binding else None
    if account is None:
        return problem(request, 404, "Nothing to show", "This browser has not finished a reconnect recently.",
                       "no_reconnect")
    return page(request, "reconnected.html", account=account)


# ----- an agency's connect link (service/connect_links.py) ----------------------------------------------------------

def _connect_cookie(request: Request, web: Web) -> str:
    return ("__Host-" if secure(request, web) else "") + "filmroll_connect_link"


async def connect_link_page(request: Request, web: Web) -> Response:
    """What the agency's link opens. A GET changes nothing (mail scanners and link previews fetch it too)."""
    secret = request.query_params.get("link", "")
    try:
        link = await connect_links.usable(web.database, secret)
    except errors.CallbackError as exc:
        return problem(request, 404 if exc.code == "unknown_link" else 410, "This link cannot be used", exc.message,
                       exc.code)
    return page(request, "connect_link.html", link=link, secret=secret)


async def connect_link(request: Request, web: Web, form: FormFields) -> Response:
    binding = secrets.token_urlsafe(32)
    try:
        link = await connect_links.usable(web.database, form.get("link", ""))
    except errors.CallbackError as exc:
        return problem(request, 410, "This link cannot be used", exc.message, exc.code)
    # force_reauth: the browser may be signed in to an account other than the client's; let them choose.
    url = await web.connector.begin(flow="connect_link", session_id=binding, force_reauth=True,
                                    connect_link_id=link.id, provider=link.provider)
    response = RedirectResponse(url, status_code=303)
    security.set_cookie(response, _connect_cookie(request, web), binding, secure=secure(request, web),
                        max_age=RECONNECT_COOKIE_AGE)
    return response


async def _finish_connect_link(request: Request, web: Web, query: str, state: str) -> Response:
    request.scope[AUDIENCE_KEY] = Audience.OWNER
    binding = request.cookies.get(_connect_cookie(request, web))
    link = await web.connector.connect_link_of(state)
    allowed = request.app.state.return_origins
    try:
        connection = await web.connector.complete(query, flow="connect_link", session_id=binding,
                                                  actor=f"connect link {link.id}" if link else "connect link")
    except (errors.CallbackError, errors.InstagramError) as exc:
        code = exc.code if isinstance(exc, errors.CallbackError) else type(exc).__name__
        back = connect_links.landing(link, allowed, outcome=code) if link else None
        if back:
            return RedirectResponse(back, status_code=303)
        if isinstance(exc, errors.CallbackError):
            title = "Not connected" if not isinstance(exc, errors.AuthorizationDeniedError) else "Connect cancelled"
            return problem(request, 400, title, exc.message, exc.code)
        return problem(request, 502, "Instagram did not cooperate", exc.message, code)
    first = f"@{connection.first.username}"
    back = connect_links.landing(link, allowed, outcome="connected", account=first) if link else None
    # A page of its own either way: a reload must not replay the callback.
    return RedirectResponse(back or "/connect-link/done", status_code=303)


async def connect_link_done(request: Request, web: Web) -> Response:
    binding = request.cookies.get(_connect_cookie(request, web))
    found = await web.connector.connected_through_link(binding) if binding else []
    if not found:
        return problem(request, 404, "Nothing to show", "This browser has not finished a connect link recently.",
                       "no_connect_link")
    return page(request, "connect_link_done.html", accounts=[f"@{a.username}" for a in found])
