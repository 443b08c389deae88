"""The admin pages: sign-in, the accounts, *Connect*, *Sync now*, *Refresh now* and *Copy reconnect link*, a
connection's summary. Handlers stay thin:
parse, call a use-case, render or redirect; signing in and CSRF are dependencies (``web/deps.py``)."""

from __future__ import annotations

import math
import re
import secrets
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from filmroll import errors
from filmroll.service import accounts as account_service
from filmroll.service import deletion
from filmroll.service import media as media_service
from filmroll.service.alerts import mint_link
from filmroll.store import events
from filmroll.store.accounts import STATUS_ORDER
from filmroll.store.tables import Account
from filmroll.vocabulary import AccountStatus, Outcome, Provider
from filmroll.web import insights, security
from filmroll.web.deps import CheckedForm, CurrentAdmin, FormFields, OptionalAdmin, RowId, Web, secure, session_id
from filmroll.web.rendering import STYLESHEET_PATH, Audience, page, problem, route_class
from filmroll.web.throttle import client_of


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.ADMIN), include_in_schema=False)
    routes.add_api_route(STYLESHEET_PATH, stylesheet, methods=["GET"])
    routes.add_api_route(COPY_SCRIPT_PATH, copy_script, methods=["GET"])
    routes.add_api_route("/", home, methods=["GET"])
    routes.add_api_route("/login", login_form, methods=["GET"])
    routes.add_api_route("/login", login, methods=["POST"])
    routes.add_api_route("/logout", logout, methods=["POST"])
    routes.add_api_route("/accounts", accounts_page, methods=["GET"])
    routes.add_api_route("/accounts/{account_id}", account_page, methods=["GET"])
    routes.add_api_route("/accounts/{account_id}/sync", sync_soon, methods=["POST"])
    routes.add_api_route("/accounts/{account_id}/refresh", refresh_now, methods=["POST"])
    routes.add_api_route("/accounts/{account_id}/reconnect-link", reconnect_link, methods=["POST"])
    routes.add_api_route("/accounts/{account_id}/delete", delete_account, methods=["POST"])
    routes.add_api_route("/connect", connect, methods=["POST"])
    routes.add_api_route("/connections/{event_id}", connection_summary, methods=["GET"])
    return routes


async def stylesheet(request: Request) -> Response:
    return Response(request.app.state.stylesheet, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


POSTS_PER_PAGE = 24  # the account page's posts a page
COPY_SCRIPT_PATH = "/static/copy-link.js"
_COPY_SCRIPT = (Path(__file__).parent / "templates" / "copy-link.js").read_bytes


async def copy_script() -> Response:
    return Response(_COPY_SCRIPT(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "max-age=3600"})


async def home(admin: OptionalAdmin) -> Response:
    return RedirectResponse("/accounts" if admin else "/login", status_code=303)


async def login_form(request: Request, web: Web) -> Response:
    login_id = secrets.token_urlsafe(24)
    response = page(request, "login.html", csrf_token=web.csrf.token(login_id), error=None)
    security.set_cookie(response, security.cookie_names(secure(request, web))[1], login_id,
                        secure=secure(request, web), max_age=3600)
    return response


async def login(request: Request, web: Web, form: FormFields) -> Response:
    is_secure = secure(request, web)
    session_name, login_name = security.cookie_names(is_secure)
    login_id = request.cookies.get(login_name)
    if not web.csrf.ok(login_id, form.get("csrf_token")):
        return problem(request, 403, "Please try again", "The sign-in form expired or came from another site. "
                       "Reload the sign-in page and try again.", "csrf")
    client = client_of(request, web.trusted_proxies)
    outcome = await web.auth.login(form.get("username", ""), form.get("password", ""), client)
    if outcome.retry_after is not None or outcome.busy:
        wait = outcome.retry_after or 5
        said = f"{wait} seconds" if wait < 120 else f"{math.ceil(wait / 60)} minutes"
        error = (f"Too many sign-in attempts. Try again in {said}." if outcome.retry_after is not None else
                 f"filmroll is busy checking other sign-ins. Try again in {said}.")
        response = page(request, "login.html", 429 if outcome.retry_after is not None else 503,
                        csrf_token=web.csrf.token(login_id or ""), error=error)
        response.headers["Retry-After"] = str(wait)
        return response
    if outcome.admin is None:
        return page(request, "login.html", 401, csrf_token=web.csrf.token(login_id or ""),
                    error="Wrong username or password.")
    new_session = await web.auth.open(outcome.admin)
    signed_in = RedirectResponse("/accounts", status_code=303)
    security.set_cookie(signed_in, session_name, new_session, secure=is_secure, max_age=None)
    signed_in.delete_cookie(login_name, path="/", secure=is_secure, httponly=True, samesite="lax")
    return signed_in


async def logout(request: Request, web: Web, form: FormFields) -> Response:
    """Signs out whatever the form carries: the cookie goes either way, so the session it names must go too (a
    stolen copy of the cookie would otherwise stay valid). The same-origin check still stands before it."""
    current = session_id(request, web)
    if current:
        await web.auth.close(current)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.cookie_names(secure(request, web))[0], path="/", secure=secure(request, web),
                           httponly=True, samesite="lax")
    return response


PAGE_SIZE = 50
_AFTER = re.compile(r"(needs_reauth|revoked|active|disconnected):([0-9]{1,12})")
_SEARCH = re.compile(r"[A-Za-z0-9._]{0,64}")


async def accounts_page(request: Request, web: Web, admin: CurrentAdmin, refreshed: RowId | None = None,
                        status: str | None = None, q: str = "", after: str | None = None) -> Response:
    """The accounts, 50 a page: those that need their owner first, then by id; by status and username."""
    cursor = _AFTER.fullmatch(after) if after is not None else None
    if (after is not None and cursor is None) or not _SEARCH.fullmatch(q) or (
            status is not None and status not in {s.value for s in AccountStatus}):
        return problem(request, 400, "Not a page of accounts", "That status, search or page is not one this list "
                       "makes; start again from the accounts page.", "invalid")
    found = await account_service.in_status_order(
        web.database, after=(cursor[1], int(cursor[2])) if cursor else None, limit=PAGE_SIZE, status=status,
        username=q or None)
    return page(request, "accounts.html", admin=admin, accounts=found.accounts, counts=found.counts,
                statuses=[s.value for s in STATUS_ORDER], filtered=status, q=q, first_page=after is None,
                next_after=f"{found.next_after[0]}:{found.next_after[1]}" if found.next_after else None,
                now=web.database.clock.now(), csrf_token=web.csrf.token(session_id(request, web) or ""),
                refreshed=refreshed)


async def refresh_now(request: Request, web: Web, form: CheckedForm, account_id: RowId) -> Response:
    """*Refresh now*: the same leased, crash-marked refresh as `filmroll token refresh` and the workers."""
    refresher = web.runtime.refresher(f"web:{form.admin.username}:{secrets.token_hex(3)}")
    try:
        report = await account_service.refresh_now(refresher, str(account_id))
    except errors.AccountNotFoundError:
        return problem(request, 404, "Not found", "There is no such account, or it holds no token.", "not_found")
    except errors.AccountStateError as exc:
        return problem(request, 409, "Not refreshed", exc.message, exc.status)
    if report.outcome not in (Outcome.REFRESHED, Outcome.LOST_RACE):
        reason = report.account.status_reason or report.account.refresh_error or "Instagram did not answer as expected"
        return problem(request, 502, "Not refreshed", f"@{report.account.username}'s token was not refreshed: "
                       f"{reason}. The workers try again by themselves.", str(report.outcome))
    return RedirectResponse(f"/accounts?refreshed={account_id}", status_code=303)


async def reconnect_link(request: Request, web: Web, form: CheckedForm, account_id: RowId) -> Response:
    """*Copy reconnect link*: a single-use link to send the owner, shown once (it is a credential)."""
    async with web.database.read() as session:
        account = await session.get(Account, account_id)
    if account is None:
        return problem(request, 404, "Not found", "There is no such account.", "not_found")
    settings = web.runtime.settings
    secret, link = await mint_link(web.database, account_id, timedelta(days=settings.alerts.reconnect_link_days))
    url = f"{settings.public_origin()}/reconnect?link={secret}"
    if "application/json" in request.headers.get("accept", ""):  # copy-link.js copies it where it was asked for
        return JSONResponse({"username": account.username, "url": url, "expires_at": link.expires_at.isoformat()},
                            headers={"Cache-Control": "no-store"})
    response = page(request, "reconnect_link.html", admin=form.admin, account=account, url=url,
                    expires_at=link.expires_at)
    response.headers["Cache-Control"] = "no-store"
    return response


async def account_page(request: Request, web: Web, admin: CurrentAdmin, account_id: RowId, page_number: int = Query(
        1, alias="page", ge=1, le=100_000)) -> Response:
    """One account: its profile, its numbers, and its posts from the mirror, a page of ``POSTS_PER_PAGE`` at a time
    (each picture as stored, with its type, caption, date and mirror state)."""
    try:
        account, shown = await media_service.posts(web.database, str(account_id), limit=POSTS_PER_PAGE,
                                                   offset=(page_number - 1) * POSTS_PER_PAGE)
    except errors.AccountNotFoundError:
        return problem(request, 404, "Not found", "There is no such account.", "not_found")
    total, mirrored = await media_service.post_counts(web.database, account)
    avatar, mirror_error = await media_service.profile_picture(web.database, account.id)
    found = await insights.history(web, account.id)
    numbers = insights.context(found, await account_service.describe(web.database, str(account.id)),
                               web.database.clock.now())
    engaged = [e.ig_media_id for e in found.posts]  # the engagement's posts, drawn with their pictures
    pictured = (await media_service.posts(web.database, str(account.id), ids=engaged))[1] if engaged else []
    pages = max(1, -(-total // POSTS_PER_PAGE))
    return page(request, "account.html", admin=admin, account=account, posts=shown, total=total, mirrored=mirrored,
                avatar=avatar, mirror_error=mirror_error, page_number=page_number, pages=pages,
                first_shown=(page_number - 1) * POSTS_PER_PAGE + 1,
                csrf_token=web.csrf.token(session_id(request, web) or ""),
                by_id={p.ig_media_id: p for p in pictured}, **numbers)


async def sync_soon(web: Web, form: CheckedForm, account_id: RowId) -> Response:
    """*Sync now*: the account becomes due, and the next free worker (embedded or not) syncs it."""
    await account_service.sync_soon(web.database, account_id, actor=f"admin:{form.admin.username}")
    return RedirectResponse("/accounts", status_code=303)


async def delete_account(request: Request, web: Web, form: CheckedForm, account_id: RowId) -> Response:
    """The admin's deletion: recorded as a deletion request, done by the next free worker (``service/deletion.py``)."""
    if form.fields.get("confirm") != "yes":
        return problem(request, 400, "Not deleted", "Tick the box to confirm the deletion.", "unconfirmed")
    async with web.database.read() as session:
        if await session.get(Account, account_id) is None:
            return problem(request, 404, "Not found", "There is no such account.", "not_found")
    await deletion.request_deletion(web.database, account_id=account_id)
    return RedirectResponse("/accounts", status_code=303)


async def connect(web: Web, form: CheckedForm) -> Response:
    provider = Provider.FACEBOOK if form.fields.get("provider") == Provider.FACEBOOK else Provider.INSTAGRAM_LOGIN
    url = await web.connector.begin(flow="web", session_id=form.session_id, provider=provider,
                                    force_reauth=form.fields.get("force_reauth") == "1")
    return RedirectResponse(url, status_code=303)  # a full-page redirect: Instagram's login breaks in popups


async def connection_summary(request: Request, web: Web, admin: CurrentAdmin, event_id: RowId) -> Response:
    async with web.database.read() as session:
        event = await events.get(session, event_id)
        account = await session.get(Account, event.account_id) if event and event.account_id else None
        if event is None or not event.kind.startswith(("account.", "connect.")):
            return problem(request, 404, "Not found", "There is no such connection.", "not_found")
        # One Facebook sign-in connects every account of the user's Pages: its events share their moment and actor.
        together = await events.same_moment(session, event)
        others = [a for e in together if e.account_id and e.account_id != event.account_id
                  and (a := await session.get(Account, e.account_id)) is not None]
    return page(request, "connection.html", admin=admin, event=event, account=account, others=others,
                ok=event.kind != "connect.failed")
