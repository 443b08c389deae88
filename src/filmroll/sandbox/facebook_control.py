"""The control API's Facebook half, under ``/_sandbox/``: Facebook users' Pages, their data access, their tokens,
and hashtags (their posts, their rate, the quota ledger). Never part of Facebook.

    GET   /_sandbox/facebook                          the Meta app's id and secret, the dialog and Graph URLs
    GET   /_sandbox/facebook/users/{account}          a Facebook user: id, Pages, data access per app
    POST  /_sandbox/facebook/users/{account}/pages    {"account": …}: link another IG account through a new Page
    POST  /_sandbox/facebook/users/{account}/data-access   {"expires_in": seconds}: 0 ends data access now
    POST  /_sandbox/facebook/tokens                   {"account": …, "kind", "permissions"}: a user token, no dialog
    GET   /_sandbox/hashtags                          the tags known so far
    GET, PATCH /_sandbox/hashtags/{name}              {"posts_per_day", "blocked"}
    POST  /_sandbox/hashtags/{name}/media             {"count", "media_type", "caption", "age_seconds", "children"}
    GET   /_sandbox/hashtags/quota/{account}          the IG account's 7-day ledger
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filmroll.sandbox import hashtags
from filmroll.sandbox.auth import LONG_LIFETIME
from filmroll.sandbox.control import ControlError, _account, _Body, _body, _sandbox
from filmroll.sandbox.facebook import SCOPES
from filmroll.sandbox.state import Sandbox
from filmroll.sandbox.wire import json_response

DEFAULT_PERMISSIONS = ["instagram_basic", "pages_show_list", "pages_read_engagement", "business_management",
                       "instagram_manage_insights"]


class PageLink(_Body):
    account: str | int


class DataAccess(_Body):
    expires_in: float = Field(ge=0)


class FacebookMint(_Body):
    account: str | int = 0
    kind: Literal["short", "long"] = "long"
    permissions: list[str] = Field(default_factory=lambda: list(DEFAULT_PERMISSIONS))
    age_seconds: float = Field(default=0, ge=0, le=LONG_LIFETIME)


class TagChange(_Body):
    posts_per_day: int | None = Field(default=None, ge=0, le=100_000)
    blocked: bool | None = None


class TagPosts(_Body):
    count: int = Field(default=1, ge=1, le=10_000)
    media_type: Literal["IMAGE", "VIDEO", "CAROUSEL_ALBUM"] = "IMAGE"
    caption: str | None = Field(default=None, max_length=2200)
    age_seconds: float = Field(default=0, ge=0)
    children: list[Literal["IMAGE", "VIDEO"]] = Field(default_factory=list, max_length=10)


def _user_json(sandbox: Sandbox, user: int) -> dict[str, Any]:
    pages = []
    for page in sandbox.pages.of(user):
        linked = sandbox.world.account(page.ig_account) if page.ig_account is not None else None
        pages.append({"id": page.id, "name": page.name,
                      "instagram": None if linked is None else {"id": linked.ig_id, "username": linked.username}})
    access = {app_id: at for (app_id, who), at in sandbox.auth.data_access.items() if who == user}
    return {"account": user, "id": sandbox.pages.user_id(user), "pages": pages, "data_access_expires_at": access}


async def summary(request: Request) -> Response:
    sandbox = _sandbox(request)
    app = sandbox.default_app
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return json_response({"app_id": app.meta_app_id, "app_secret": app.meta_app_secret,
                          "dialog_url": f"{origin}/www.facebook.com/v25.0/dialog/oauth",
                          "graph_url": f"{origin}/graph.facebook.com", "redirect_uris": app.redirect_uris})


async def user(request: Request) -> Response:
    sandbox = _sandbox(request)
    return json_response(_user_json(sandbox, _account(sandbox, request.path_params["ref"]).index))


async def link_page(request: Request) -> Response:
    sandbox = _sandbox(request)
    who = _account(sandbox, request.path_params["ref"])
    spec = await _body(request, PageLink)
    sandbox.pages.link(who.index, _account(sandbox, spec.account).index)
    return json_response(_user_json(sandbox, who.index), 201)


async def data_access(request: Request) -> Response:
    sandbox = _sandbox(request)
    who = _account(sandbox, request.path_params["ref"])
    spec = await _body(request, DataAccess)
    sandbox.auth.data_access[(sandbox.default_app.app_id, who.index)] = sandbox.now() + spec.expires_in
    return json_response(_user_json(sandbox, who.index))


async def mint(request: Request) -> Response:
    sandbox = _sandbox(request)
    spec = await _body(request, FacebookMint)
    who = _account(sandbox, spec.account)
    unknown = [p for p in spec.permissions if p not in SCOPES]
    if unknown:
        raise ControlError(f"unknown Facebook permissions: {', '.join(unknown)[:200]}")
    app = sandbox.default_app
    issued_at = sandbox.now() - spec.age_seconds
    if (app.app_id, who.index) not in sandbox.auth.data_access:
        sandbox.auth.consented(app.app_id, who.index, issued_at)
    token = sandbox.auth.issue_token(app.app_id, who.index, spec.kind, tuple(spec.permissions), issued_at,
                                     provider="facebook")
    return json_response({"access_token": token.value, "account": who.index, "user_id": sandbox.pages.user_id(
        who.index), "ig_id": who.ig_id, "kind": token.kind, "permissions": list(token.permissions),
        "issued_at": token.issued_at, "expires_at": token.expires_at,
        "data_access_expires_at": sandbox.auth.data_access_expires_at(token)}, 201)


def _tag_json(sandbox: Sandbox, tag: hashtags.Tag) -> dict[str, Any]:
    now = sandbox.now()
    return {"name": tag.name, "id": hashtags.hashtag_id(tag.name), "posts_per_day": tag.posts_per_day,
            "blocked": tag.blocked, "added": len(tag.added),
            "recent": len(sandbox.hashtags.posts(tag, now - hashtags.RECENT_WINDOW, now))}


def _tag(sandbox: Sandbox, name: str) -> hashtags.Tag:
    if not hashtags.valid_name(hashtags.normalize(name)):
        raise ControlError(f"{name[:60]!r} is not a hashtag Instagram would find")
    return sandbox.hashtags.tag(name)


async def tags(request: Request) -> Response:
    sandbox = _sandbox(request)
    return json_response({"data": [_tag_json(sandbox, t) for t in sandbox.hashtags.known()]})


async def tag(request: Request) -> Response:
    sandbox = _sandbox(request)
    found = _tag(sandbox, request.path_params["name"])
    if request.method == "PATCH":
        change = await _body(request, TagChange)
        if change.posts_per_day is not None:
            found.posts_per_day = change.posts_per_day
        if change.blocked is not None:
            found.blocked = change.blocked
    return json_response(_tag_json(sandbox, found))


async def tag_media(request: Request) -> Response:
    sandbox = _sandbox(request)
    found = _tag(sandbox, request.path_params["name"])
    spec = await _body(request, TagPosts)
    if (spec.media_type == "CAROUSEL_ALBUM") != bool(spec.children):
        raise ControlError("children are given for a CAROUSEL_ALBUM, and only for one")
    newest = int(sandbox.now() - spec.age_seconds)
    added = [sandbox.hashtags.add(found, timestamp=newest - n, media_type=spec.media_type, caption=spec.caption,
                                  children=list(spec.children)) for n in range(spec.count)]
    return json_response({"data": [{"id": m.id, "timestamp": m.timestamp} for m in added],
                          "tag": _tag_json(sandbox, found)}, 201)


async def quota(request: Request) -> Response:
    sandbox = _sandbox(request)
    account = _account(sandbox, request.path_params["ref"])
    ledger = sandbox.hashtags.searched(account.ig_id, sandbox.now())
    return json_response({"limit": hashtags.QUOTA_TAGS, "used": len(ledger),
                          "tags": [{"id": t, "first_queried_at": at, "frees_at": at + hashtags.QUOTA_WINDOW}
                                   for t, at in sorted(ledger.items(), key=lambda kv: kv[1])]})


routes = [
    Route("/facebook", summary, methods=["GET"]),
    Route("/facebook/users/{ref}", user, methods=["GET"]),
    Route("/facebook/users/{ref}/pages", link_page, methods=["POST"]),
    Route("/facebook/users/{ref}/data-access", data_access, methods=["POST"]),
    Route("/facebook/tokens", mint, methods=["POST"]),
    Route("/hashtags", tags, methods=["GET"]),
    Route("/hashtags/quota/{ref}", quota, methods=["GET"]),
    Route("/hashtags/{name}", tag, methods=["GET", "PATCH"]),
    Route("/hashtags/{name}/media", tag_media, methods=["POST"]),
]
