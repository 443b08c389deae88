"""Facebook Login as Facebook serves it (wire reference §6; hashtag reference §1): the dialog on www.facebook.com,
the code and ``fb_exchange_token`` exchanges on graph.facebook.com, ``debug_token``, ``/me`` and ``/me/accounts``.

The client id is the **Meta** app's (not the Instagram app's), and so is the secret. A code works once, for an hour;
the code gives a short-lived user token, ``fb_exchange_token`` a 60-day one that is never refreshed; the app's data
access ends 90 days after the user last went through the dialog (then every call answers 190/493). Redirects carry
Facebook's ``#_=_`` suffix.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from filmroll.sandbox import auth as tokens
from filmroll.sandbox import oauth
from filmroll.sandbox.oauth import DEAD_TOKEN_MESSAGES, MAX_BODY, resolve_for, token_from_request
from filmroll.sandbox.state import Sandbox
from filmroll.sandbox.wire import WireError, graph_error, json_response, parse_form, parse_query

SCOPES = frozenset({
    "instagram_basic", "pages_show_list", "pages_read_engagement", "business_management",
    "instagram_manage_insights", "instagram_manage_comments", "instagram_content_publish", "ads_management",
    "ads_read", "public_profile", "email",
})
LOGIN_COOKIE = "sandbox_fb_session"


def app_for(sandbox: Sandbox, client_id: str) -> tokens.App | None:
    return next((app for app in sandbox.auth.apps.values() if app.meta_app_id == client_id), None)


# ----- the dialog (www.facebook.com) -----------------------------------------------------------------------------


def _message(request: Request, title: str, text: str, status: int = 400) -> Response:
    return oauth.page(request, "message.html", status, title=title, text=text)


def _scopes(raw: str) -> tuple[str, ...] | str:
    requested = [s for s in raw.replace(",", " ").split(" ") if s]
    bad = [s for s in requested if s not in SCOPES]
    if bad:
        return "Invalid Scopes: " + ", ".join(bad)[:300] + ". This message is only shown to developers."
    return tuple(dict.fromkeys(requested)) or ("public_profile",)


async def dialog(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    if request.method == "POST":
        return await _consent(request, sandbox)
    try:
        params = parse_query(request.scope["query_string"])
    except ValueError:
        return _message(request, "Something went wrong", "The request could not be read.")
    request.state.call = ("fb_dialog", None, params.get("client_id"))
    app = app_for(sandbox, params.get("client_id", ""))
    if app is None:
        known = params.get("client_id") in sandbox.auth.apps
        return _message(request, "Invalid App ID", "The provided app ID does not look like a valid app ID."
                        + (" (It is the Instagram app's ID: Facebook Login takes the Meta app's.)" if known else ""))
    await sandbox.traffic.gate("fb_dialog", None)
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris:
        return _message(request, "URL Blocked", "This redirect failed because the redirect URI is not whitelisted "
                        "in the app's Client OAuth Settings. Make sure Client and Web OAuth Login are on and add "
                        "all your app domains as Valid OAuth Redirect URIs.")
    if params.get("response_type", "code") != "code":
        return _message(request, "Something went wrong", "The sandbox answers response_type=code only.")
    scopes = _scopes(params.get("scope", ""))
    if isinstance(scopes, str):
        return _message(request, "Invalid Scopes", scopes)
    state = params.get("state")
    if sandbox.switches.auto_consent:
        return _issue_code(sandbox, app, sandbox.switches.auto_consent_account, redirect_uri, scopes, state)
    pending = sandbox.auth.new_pending(app.app_id, redirect_uri, scopes, state, sandbox.now())
    reauth = params.get("auth_type") in ("reauthenticate", "reauthorize")
    user = None if reauth else sandbox.auth.fb_sessions.get(request.cookies.get(LOGIN_COOKIE, ""))
    return _dialog_page(request, sandbox, app, pending, user, None)


def _dialog_page(request: Request, sandbox: Sandbox, app: tokens.App, pending: tokens.PendingAuthorization,
                 user: int | None, error: str | None) -> Response:
    account = sandbox.world.account(user) if user is not None else None
    pages = [(page, sandbox.world.account(page.ig_account) if page.ig_account is not None else None)
             for page in sandbox.pages.of(user)] if user is not None else []
    return oauth.page(request, "facebook_dialog.html", app=app, pending=pending, user=account, pages=pages, error=error,
                 action=request.url.path)


def _issue_code(sandbox: Sandbox, app: tokens.App, user: int, redirect_uri: str, scopes: tuple[str, ...],
                state: str | None) -> RedirectResponse:
    now = sandbox.now()
    code = sandbox.auth.issue_code(app.app_id, user, redirect_uri, scopes, now, provider="facebook")
    sandbox.auth.consented(app.app_id, user, now)
    params = {"code": code.value}
    if state is not None:
        params["state"] = state
    return oauth.redirect(redirect_uri, params, "#_=_")


async def _consent(request: Request, sandbox: Sandbox) -> Response:
    try:
        form = parse_form((await request.body())[:MAX_BODY])
    except ValueError:
        form = {}
    request.state.call = ("fb_consent", None, None)
    pending = sandbox.auth.pending.get(form.get("request_id", ""))
    if pending is None:
        return _message(request, "This page has expired", "Go back to the app you were using and start again.")
    app = sandbox.auth.apps[pending.app_id]
    if form.get("action") == "cancel":
        del sandbox.auth.pending[pending.id]
        params = {"error": "access_denied", "error_code": "200", "error_reason": "user_denied",
                  "error_description": "Permissions error"}
        if pending.state is not None:
            params["state"] = pending.state
        return oauth.redirect(pending.redirect_uri, params, "#_=_")
    if form.get("action") != "allow":
        return _message(request, "Something went wrong", "Choose Continue or Cancel.")
    session = request.cookies.get(LOGIN_COOKIE, "")
    user = sandbox.auth.fb_sessions.get(session) if not form.get("username") else None
    if user is None:
        account = sandbox.world.account_by_username(form.get("username", "").strip().lstrip("@"))
        if account is None or not secrets.compare_digest(form.get("password", "").encode(),
                                                         account.password.encode()):
            return _dialog_page(request, sandbox, app, pending, None,
                                "The email or mobile number you entered isn't connected to an account, or the "
                                "password is wrong.")
        user = account.index
        session = secrets.token_urlsafe(24)
        sandbox.auth.fb_sessions[session] = user
    del sandbox.auth.pending[pending.id]
    response = _issue_code(sandbox, app, user, pending.redirect_uri, pending.permissions, pending.state)
    response.set_cookie(LOGIN_COOKIE, session, httponly=True, samesite="lax")
    return response


# ----- tokens (graph.facebook.com) ------------------------------------------------------------------------------


def _oauth_error(message: str, code: int = 100, subcode: int | None = None) -> WireError:
    return WireError(graph_error(message, code, subcode=subcode, error_type="OAuthException"))


def _token_body(token: tokens.Token, now: float) -> Response:
    return json_response({"access_token": token.value, "token_type": "bearer",
                          "expires_in": max(0, int(token.expires_at - now))})


async def access_token(request: Request, params: dict[str, str]) -> Response:
    """``/oauth/access_token``: a code for a short-lived user token, or ``fb_exchange_token`` for a 60-day one."""
    sandbox: Sandbox = request.app.state.sandbox
    grant = params.get("grant_type")
    endpoint = "fb_exchange" if grant == "fb_exchange_token" else "fb_token"
    request.state.call = (endpoint, None, params.get("client_id"))
    for name in ("client_id", "client_secret"):
        if not params.get(name):
            raise _oauth_error(f"Missing {name} parameter.", 101 if name == "client_id" else 1)
    app = app_for(sandbox, params["client_id"])
    if app is None:
        raise _oauth_error("Error validating application. Invalid application ID.", 101)
    if not secrets.compare_digest(params["client_secret"].encode(), app.meta_app_secret.encode()):
        raise _oauth_error("Error validating client secret.", 1)
    now = sandbox.now()
    if grant == "fb_exchange_token":
        short = resolve_for(request, sandbox, params.get("fb_exchange_token"), endpoint, "facebook")
        request.state.call = (endpoint, None, params["client_id"])
        await sandbox.traffic.gate(endpoint, None)
        if short.kind == "long":
            return _token_body(short, now)
        return _token_body(sandbox.auth.issue_token(app.app_id, short.account, "long", short.permissions, now,
                                                    provider="facebook"), now)
    if grant not in (None, "authorization_code"):
        raise _oauth_error("(#100) Invalid grant_type", 100)
    if not params.get("redirect_uri"):
        raise _oauth_error("Missing redirect_uri parameter.")
    code = sandbox.auth.codes.get(params.get("code", ""))
    if code is None or code.provider != "facebook" or code.app_id != app.app_id:
        raise _oauth_error("Invalid verification code format.")
    await sandbox.traffic.gate(endpoint, None)
    if code.used:
        raise _oauth_error("This authorization code has been used.", 100, 36009)
    if now - code.issued_at > tokens.CODE_LIFETIME:
        raise _oauth_error("This authorization code has expired.", 100, 36007)
    if params["redirect_uri"] != code.redirect_uri:
        raise _oauth_error("Error validating verification code. Please make sure your redirect_uri is identical "
                           "to the one you used in the OAuth dialog request", 100, 36008)
    code.used = True
    return _token_body(sandbox.auth.issue_token(app.app_id, code.account, "short", code.permissions, now,
                                                provider="facebook"), now)


async def debug_token(request: Request, params: dict[str, str]) -> Response:
    """What Facebook knows of a token; asked with the app's token ``{app-id}|{app-secret}``."""
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("debug_token", None, None)
    app_id, _, secret = (token_from_request(params, request) or "").partition("|")
    app = app_for(sandbox, app_id)
    if app is None or not secret or not secrets.compare_digest(secret.encode(), app.meta_app_secret.encode()):
        raise _oauth_error("Invalid OAuth access token signature.", 190)
    if not params.get("input_token"):
        raise _oauth_error("(#100) The parameter input_token is required")
    await sandbox.traffic.gate("debug_token", None)
    token = sandbox.auth.tokens.get(params["input_token"])
    if token is None or token.provider != "facebook":
        return json_response({"data": {"error": {"code": 190, "message": "Invalid OAuth access token."},
                                       "is_valid": False, "scopes": []}})
    if token.app_id != app.app_id:
        raise _oauth_error("(#100) The App_id in the input_token did not match the Viewing App")
    request.state.call = ("debug_token", sandbox.pages.user_id(token.account), app_id)
    now = sandbox.now()
    reason = sandbox.auth.dead_reason(token, now)
    data: dict[str, Any] = {
        "app_id": app.meta_app_id, "type": "USER", "application": app.name,
        "data_access_expires_at": int(sandbox.auth.data_access_expires_at(token) or 0),
        "expires_at": int(token.expires_at), "is_valid": reason is None, "issued_at": int(token.issued_at),
        "scopes": list(token.permissions), "user_id": sandbox.pages.user_id(token.account),
    }
    if reason is not None:
        message = DEAD_TOKEN_MESSAGES.get(reason, "Error validating access token: Session has expired.")
        data["error"] = {"code": 190, "message": message.format(app_id=app.meta_app_id), "subcode": reason}
    return json_response({"data": data})


def me(sandbox: Sandbox, token: tokens.Token, params: dict[str, str]) -> dict[str, Any]:
    account = sandbox.world.account(token.account)
    assert account is not None
    fields = [f for f in params.get("fields", "id,name").split(",") if f]
    known = {"id": sandbox.pages.user_id(token.account), "name": account.name}
    for name in fields:
        if name not in known:
            raise WireError(graph_error(f"(#100) Tried accessing nonexisting field ({name[:100]}) on node type "
                                        "(User)", 100, error_type="OAuthException"))
    return {name: known[name] for name in fields}


def accounts(sandbox: Sandbox, token: tokens.Token, params: dict[str, str]) -> dict[str, Any]:
    """``/me/accounts``: the user's Pages; their linked Instagram account when ``fields`` asks for
    ``instagram_business_account`` (expanded as ``{id,username}``)."""
    if "pages_show_list" not in token.permissions:
        raise WireError(graph_error("(#200) Requires pages_show_list permission to manage the object", 200,
                                    error_type="OAuthException"))
    data = []
    for page in sandbox.pages.of(token.account):
        item: dict[str, Any] = {"id": page.id, "name": page.name, "access_token": "EAAPage" + page.id,
                                "category": "Local business", "tasks": ["ANALYZE", "ADVERTISE", "MODERATE",
                                                                        "CREATE_CONTENT", "MANAGE"]}
        linked = sandbox.world.account(page.ig_account) if page.ig_account is not None else None
        if linked is not None and linked.account_type != "PERSONAL" \
                and "instagram_business_account" in params.get("fields", ""):
            item["instagram_business_account"] = {"id": linked.ig_id, "username": linked.username}
        data.append(item)
    return {"data": data, "paging": {"cursors": {"before": "QVFIUbefore", "after": "QVFIUafter"}}}
