"""Instagram Login as Instagram serves it: the authorize page, the code exchange, long-lived tokens, refresh.

Hosts in real life: ``www.instagram.com/oauth/authorize`` (HTML), ``api.instagram.com/oauth/access_token`` (flat
error envelope), ``graph.instagram.com/access_token`` and ``/refresh_access_token`` (Graph error envelope).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from filmroll.sandbox import auth as tokens
from filmroll.sandbox.state import Sandbox
from filmroll.sandbox.wire import WireError, flat_error, graph_error, json_response, parse_form, parse_query

SCOPES = (
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_manage_insights",
)
REQUIRED_SCOPE = "instagram_business_basic"
LOGIN_COOKIE = "sandbox_sessionid"
MAX_BODY = 65_536
_PACIFIC = ZoneInfo("America/Los_Angeles")

DEAD_TOKEN_MESSAGES = {
    tokens.APP_REMOVED: "Error validating access token: The user has not authorized application {app_id}.",
    tokens.PASSWORD_CHANGED: "Error validating access token: The session has been invalidated because the user "
    "changed their password or Facebook has changed the session for security reasons.",
    tokens.LOGGED_OUT: "Error validating access token: The session is invalid because the user logged out.",
    tokens.DATA_ACCESS_EXPIRED: "The access token is invalid since the user hasn't engaged the app in longer than "
    "90 days.",
}


def _pacific(ts: float) -> str:
    # Graph words expiry in Pacific time: "Tuesday, 01-Dec-25 06:00:00 PST"
    return datetime.fromtimestamp(ts, _PACIFIC).strftime("%A, %d-%b-%y %H:%M:%S %Z")


def invalid_token() -> WireError:
    return WireError(graph_error("Invalid OAuth access token - Cannot parse access token", 190))


def resolve_token(sandbox: Sandbox, value: str | None, provider: str = "instagram") -> tokens.Token:
    """The live token named by ``value``, or the Graph error Instagram answers for it. A token of the other
    provider (a Facebook user token on graph.instagram.com) cannot be parsed there."""
    if not value:
        raise WireError(graph_error(
            "An active access token must be used to query information about the current user.", 2500))
    token = sandbox.auth.tokens.get(value)
    if token is None or token.provider != provider:
        raise invalid_token()
    now = sandbox.now()
    reason = sandbox.auth.dead_reason(token, now)
    if reason is None:
        return token
    if reason == tokens.EXPIRED:
        message = (f"Error validating access token: Session has expired on {_pacific(token.expires_at)}. "
                   f"The current time is {_pacific(now)}.")
    else:
        message = DEAD_TOKEN_MESSAGES[reason].format(app_id=token.app_id)
    raise WireError(graph_error(message, 190, subcode=reason))


def resolve_for(request: Request, sandbox: Sandbox, value: str | None, endpoint: str,
                provider: str = "instagram") -> tokens.Token:
    """``resolve_token``, but a refused token that the sandbox issued is still logged against its account, so
    tests can count every call an account made, the failed ones included."""
    try:
        return resolve_token(sandbox, value, provider)
    except WireError:
        known = sandbox.auth.tokens.get(value or "")
        if known is not None:
            request.state.call = (endpoint, sandbox.world.ids.ig_user.encode(known.account), known.app_id)
        raise


def token_from_request(params: dict[str, str], request: Request) -> str | None:
    if "access_token" in params:
        return params["access_token"]
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


# ----- authorize page (www.instagram.com) ----------------------------------------------------------------------


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    templates = request.app.state.templates
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"  # Instagram refuses to be framed; popups/iframes break
    return response


def _unavailable(request: Request) -> Response:
    return page(request, "message.html", 404, title="Sorry, this page isn't available.",
                 text="The link you followed may be broken, or the page may have been removed.")


def _scopes(raw: str) -> tuple[str, ...] | str:
    requested = [s for s in raw.replace(",", " ").split(" ") if s]
    if not requested:
        return "Invalid scope: the scope parameter is required"
    bad = [s for s in requested if s not in SCOPES]
    if bad:
        return "Invalid scope field(s): " + ",".join(bad)[:300]
    if REQUIRED_SCOPE not in requested:
        return f"Invalid scope: {REQUIRED_SCOPE} is required"
    return tuple(dict.fromkeys(requested))


def redirect(redirect_uri: str, params: dict[str, str], suffix: str = "") -> RedirectResponse:
    """Back to the app: ``suffix`` is what the provider appends (Instagram's ``#_`` on a code, Facebook's ``#_=_``)."""
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params) + suffix, status_code=302)


async def authorize(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    if request.method == "POST":
        return await _consent(request, sandbox)
    try:
        params = parse_query(request.scope["query_string"])
    except ValueError:
        return page(request, "message.html", 400, title="Something went wrong",
                     text="The request could not be read. Go back to the app and try again.")
    request.state.call = ("authorize", None, params.get("client_id"))
    app = sandbox.auth.apps.get(params.get("client_id", ""))
    if app is None:
        if params.get("client_id") in {a.meta_app_id for a in sandbox.auth.apps.values()}:
            return flat_error("Invalid platform app")
        return _unavailable(request)
    await sandbox.traffic.gate("authorize", None)
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        return flat_error("You must include a valid redirect_uri")
    if redirect_uri not in app.redirect_uris:
        return flat_error("Invalid redirect_uri")
    if params.get("response_type") != "code":
        return flat_error('Only response type "code" is allowed')
    scopes = _scopes(params.get("scope", ""))
    if isinstance(scopes, str):
        return flat_error(scopes)
    state = params.get("state")
    if sandbox.switches.auto_consent:
        account = sandbox.world.account(sandbox.switches.auto_consent_account)
        assert account is not None
        return _issue_code(sandbox, app.app_id, account.index, redirect_uri, scopes, state)
    pending = sandbox.auth.new_pending(app.app_id, redirect_uri, scopes, state, sandbox.now())
    force = params.get("force_reauth", "").lower() in ("true", "1") or params.get("force_authentication") == "1"
    logged_in = None if force else sandbox.auth.sessions.get(request.cookies.get(LOGIN_COOKIE, ""))
    account = sandbox.world.account(logged_in) if logged_in is not None else None
    return page(request, "authorize.html", app=app, pending=pending, account=account, error=None,
                 show_facebook=params.get("enable_fb_login", "true").lower() not in ("false", "0"))


def _issue_code(sandbox: Sandbox, app_id: str, account: int, redirect_uri: str, scopes: tuple[str, ...],
                state: str | None) -> RedirectResponse:
    code = sandbox.auth.issue_code(app_id, account, redirect_uri, scopes, sandbox.now())
    params = {"code": code.value}
    if state is not None:
        params["state"] = state
    return redirect(redirect_uri, params, "#_")


async def _consent(request: Request, sandbox: Sandbox) -> Response:
    body = await request.body()
    try:
        form = parse_form(body[:MAX_BODY])
    except ValueError:
        form = {}
    request.state.call = ("consent", None, None)
    pending = sandbox.auth.pending.get(form.get("request_id", ""))
    if pending is None:
        return page(request, "message.html", 400, title="This page has expired",
                     text="Go back to the app you were using and start again.")
    app = sandbox.auth.apps[pending.app_id]
    if form.get("action") == "cancel":
        del sandbox.auth.pending[pending.id]
        params = {"error": "access_denied", "error_reason": "user_denied",
                  "error_description": "The user denied your request"}
        if pending.state is not None:
            params["state"] = pending.state
        return redirect(pending.redirect_uri, params)
    if form.get("action") != "allow":
        return page(request, "message.html", 400, title="Something went wrong", text="Choose Allow or Cancel.")
    session = request.cookies.get(LOGIN_COOKIE, "")
    account_index = sandbox.auth.sessions.get(session) if not form.get("username") else None
    if account_index is None:
        account = sandbox.world.account_by_username(form.get("username", "").strip().lstrip("@"))
        if account is None:
            return page(request, "authorize.html", 200, app=app, pending=pending, account=None,
                         error="The username you entered doesn't belong to an account. Please check your "
                         "username and try again.", show_facebook=True)
        if not secrets.compare_digest(form.get("password", "").encode(), account.password.encode()):
            return page(request, "authorize.html", 200, app=app, pending=pending, account=None,
                         error="Sorry, your password was incorrect. Please double-check your password.",
                         show_facebook=True)
        account_index = account.index
        session = secrets.token_urlsafe(24)
        sandbox.auth.sessions[session] = account_index
    del sandbox.auth.pending[pending.id]
    response = _issue_code(sandbox, app.app_id, account_index, pending.redirect_uri, pending.permissions,
                           pending.state)
    response.set_cookie(LOGIN_COOKIE, session, httponly=True, samesite="lax")
    return response


# ----- code exchange (api.instagram.com) ---------------------------------------------------------------------


async def _form_body(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if len(await request.body()) > MAX_BODY:
        raise WireError(flat_error("Request body too large", 413))
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=50)
        except Exception:  # python-multipart raises several unrelated types for a broken body
            raise WireError(flat_error("Invalid multipart request body")) from None
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            return parse_form(await request.body())
        except ValueError:
            raise WireError(flat_error("Invalid request body")) from None
    return {}


async def exchange_code(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("token", None, None)
    if request.method != "POST":
        return flat_error(f"Unsupported request - method type: {request.method.lower()}")
    form = await _form_body(request)
    client_id = form.get("client_id", "")
    request.state.call = ("token", None, client_id or None)
    if not client_id:
        return flat_error("You must provide a client_id")
    app = sandbox.auth.apps.get(client_id)
    if app is None:
        return flat_error("Invalid platform app")
    if not form.get("client_secret"):
        return flat_error("You must provide a client_secret")
    if not secrets.compare_digest(form["client_secret"].encode(), app.app_secret.encode()):
        return flat_error("Error validating client secret.")
    if form.get("grant_type") != "authorization_code":
        return flat_error("Invalid grant_type: only authorization_code is supported")
    if not form.get("redirect_uri"):
        return flat_error("You must provide a redirect_uri")
    if not form.get("code"):
        return flat_error("You must provide a code")
    code = sandbox.auth.codes.get(form["code"])
    if code is None or code.app_id != app.app_id or code.provider != "instagram":
        return flat_error("Matching code was not found or was already used")
    request.state.call = ("token", sandbox.world.ids.ig_user.encode(code.account), client_id)
    await sandbox.traffic.gate("token", sandbox.world.ids.ig_user.encode(code.account))
    now = sandbox.now()
    if code.used:
        return flat_error("This authorization code has been used")
    if now - code.issued_at > tokens.CODE_LIFETIME:
        return flat_error("This authorization code has expired")
    if form["redirect_uri"] != code.redirect_uri:
        return flat_error("Error validating verification code. Please make sure your redirect_uri is identical "
                          "to the one you used in the OAuth dialog request")
    code.used = True
    token = sandbox.auth.issue_token(app.app_id, code.account, "short", code.permissions, now)
    scoped_id = sandbox.world.ids.scoped.encode(code.account)
    if sandbox.switches.token_response == "data":
        return json_response({"data": [{"access_token": token.value, "user_id": scoped_id,
                                        "permissions": ",".join(token.permissions)}]})
    return json_response({"access_token": token.value, "user_id": int(scoped_id),
                          "permissions": list(token.permissions)})


# ----- long-lived exchange and refresh (graph.instagram.com) ------------------------------------------------


def _unsupported_method(method: str) -> WireError:
    return WireError(graph_error(f"Unsupported request - method type: {method.lower()}", 100,
                                 error_type="IGApiException"))


async def _graph_params(request: Request) -> dict[str, str]:
    try:
        params = parse_query(request.scope["query_string"])
    except ValueError:
        raise WireError(graph_error("(#100) Invalid parameter", 100)) from None
    if request.method == "POST":
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            try:
                params = {**parse_form(body[:MAX_BODY]), **params}
            except ValueError:
                raise WireError(graph_error("(#100) Invalid parameter", 100)) from None
    return params


def _token_body(token: tokens.Token, now: float) -> Response:
    return json_response({"access_token": token.value, "token_type": "bearer",
                          "expires_in": max(0, int(token.expires_at - now))})


async def exchange_long_lived(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("exchange", None, None)
    allowed = sandbox.switches.exchange_method
    if request.method not in ("GET", "POST") or (allowed != "both" and request.method != allowed):
        raise _unsupported_method(request.method)
    params = await _graph_params(request)
    if params.get("grant_type") != "ig_exchange_token":
        raise WireError(graph_error("(#100) Param grant_type must be ig_exchange_token", 100))
    if not params.get("client_secret"):
        raise WireError(graph_error("(#100) The parameter client_secret is required", 100))
    token = resolve_for(request, sandbox, params.get("access_token"), "exchange")
    account = sandbox.world.ids.ig_user.encode(token.account)
    request.state.call = ("exchange", account, token.app_id)
    await sandbox.traffic.gate("exchange", account)
    app = sandbox.auth.apps[token.app_id]
    if not secrets.compare_digest(params["client_secret"].encode(), app.app_secret.encode()):
        raise WireError(graph_error("Error validating client secret.", 1, is_transient=False))
    now = sandbox.now()
    if token.kind == "long":
        return _token_body(token, now)
    return _token_body(sandbox.auth.issue_token(app.app_id, token.account, "long", token.permissions, now), now)


async def refresh(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("refresh", None, None)
    if request.method != "GET":
        raise _unsupported_method(request.method)
    params = await _graph_params(request)
    if params.get("grant_type") != "ig_refresh_token":
        raise WireError(graph_error("(#100) Param grant_type must be ig_refresh_token", 100))
    token = resolve_for(request, sandbox, token_from_request(params, request), "refresh")
    account = sandbox.world.ids.ig_user.encode(token.account)
    request.state.call = ("refresh", account, token.app_id)
    await sandbox.traffic.gate("refresh", account)
    now = sandbox.now()
    # Re-check after the gate: a hang fault may have let the clock or a revocation move on meanwhile.
    token = resolve_token(sandbox, token.value)
    if token.kind != "long":
        raise WireError(graph_error("(#100) Only long-lived access tokens can be refreshed", 100))
    if now - token.issued_at < tokens.REFRESH_MIN_AGE:
        if sandbox.switches.refresh_too_early == "noop":
            return _token_body(token, now)
        raise WireError(graph_error(
            "(#100) The access token must be at least 24 hours old before it can be refreshed", 100))
    if sandbox.switches.refresh_token_string == "same":
        token.issued_at, token.expires_at = now, now + tokens.LONG_LIFETIME
        return _token_body(token, now)
    fresh = sandbox.auth.issue_token(token.app_id, token.account, "long", token.permissions, now)
    if sandbox.switches.old_token_after_refresh == "revoked":
        del sandbox.auth.tokens[token.value]
    return _token_body(fresh, now)
