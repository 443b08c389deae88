"""graph.facebook.com: the Instagram API with Facebook Login (hashtag reference §2-3; wire reference §6.4).

With a Facebook user token, a client reads the Instagram professional accounts linked to the user's Pages by their
IG user id (``/{ig-user-id}``, ``/media``, ``/{media-id}``, insights, as graph.instagram.com answers them), and,
querying as one of them (``user_id``), searches hashtags and discovers other professional accounts:

    /ig_hashtag_search?user_id=&q=          a tag's static id; counts toward the 30-tags-in-7-days quota
    /{hashtag-id}?fields=id,name
    /{hashtag-id}/recent_media?user_id=     the last 24 hours, 50 a page at most, no ``username``; the ``after``
    /{hashtag-id}/top_media?user_id=        cursor is the same on every page, and still advances
    /{ig-user-id}/recently_searched_hashtags
    /{ig-user-id}?fields=business_discovery.username(x){…,media.after(c).limit(n){…}}   (#110) for a personal or
                                                                                        unknown username
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from filmroll.sandbox import facebook, graph, hashtags
from filmroll.sandbox.fields import FieldSpec
from filmroll.sandbox.graph import Context
from filmroll.sandbox.oauth import resolve_for, token_from_request
from filmroll.sandbox.state import Sandbox
from filmroll.sandbox.wire import WireError, graph_error, json_response, parse_form, parse_query
from filmroll.sandbox.world import Account

HASHTAG_MEDIA_FIELDS = frozenset({"id", "caption", "comments_count", "like_count", "media_type", "media_url",
                                  "permalink", "timestamp", "children", "media_product_type", "thumbnail_url"})
HASHTAG_PAGE_MAX = 50
READ_PERMISSION = "instagram_basic"


def _unsupported(node: str) -> WireError:
    return WireError(graph_error(
        f"Unsupported get request. Object with ID '{node[:100]}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api", 100, subcode=33, error_type="GraphMethodException"))


async def _params(request: Request) -> dict[str, str]:
    try:
        params = parse_query(request.scope["query_string"])
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            params = {**parse_form((await request.body())[:65_536]), **params}
    except ValueError:
        raise WireError(graph_error("(#100) Invalid parameter", 100)) from None
    return params


async def dispatch(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("fb_graph", None, None)
    version, segments = graph.split_version(request)
    params = await _params(request)
    if segments == ["oauth", "access_token"]:
        return await facebook.access_token(request, params)
    if segments == ["debug_token"]:
        return await facebook.debug_token(request, params)
    if not segments or len(segments) > 2:
        raise WireError(graph_error("Unsupported get request.", 100, error_type="GraphMethodException"))
    if request.method not in ("GET", "HEAD"):
        raise _unsupported(segments[0])
    token = resolve_for(request, sandbox, token_from_request(params, request), "fb_graph", "facebook")
    user_id = sandbox.pages.user_id(token.account)
    node, edge = segments[0], (segments[1] if len(segments) == 2 else None)
    if node == "me":
        request.state.call = ("fb_accounts" if edge == "accounts" else "fb_me", user_id, token.app_id)
        await sandbox.traffic.gate(request.state.call[0], user_id)
        if edge == "accounts":
            return json_response(facebook.accounts(sandbox, token, params))
        if edge is None:
            return json_response(facebook.me(sandbox, token, params))
        raise WireError(graph_error(f"Unknown path components: /{edge[:100]}", 2500))
    if READ_PERMISSION not in token.permissions:
        raise WireError(graph_error("(#10) Application does not have permission for this action", 10))
    ctx = Context(sandbox, request, token, version, params, facebook=True)
    if node == "ig_hashtag_search" and edge is None:
        return await _hashtag_search(request, ctx)
    tag = sandbox.hashtags.by_id(node)
    if tag is not None:
        return await _hashtag(request, ctx, tag, edge)
    account = sandbox.world.account_by_ig_id(node)
    if account is not None and sandbox.pages.manages(token.account, account.index):
        return await _ig_user(request, ctx, account, edge)
    media = sandbox.world.media(node)
    child = sandbox.world.child(node) if media is None else None
    owner = media.account if media is not None else \
        (parent.account if child is not None and (parent := sandbox.world.media(child.parent_id)) else None)
    if owner is not None and sandbox.pages.manages(token.account, owner):
        owner_account = sandbox.world.account(owner)
        assert owner_account is not None
        target = media if media is not None else child
        assert target is not None
        endpoint = "fb_" + graph._endpoint_name(target, edge)
        return await _answer(request, ctx, endpoint, owner_account,
                             lambda: graph._read(ctx, target, edge, request.method))
    raise _unsupported(node)


async def _answer(request: Request, ctx: Context, endpoint: str, querying: Account, read: Any) -> Response:
    """Log, gate and count one call against the querying IG account's rate limit, then read."""
    request.state.call = (endpoint, querying.ig_id, ctx.token.app_id)
    await ctx.sandbox.traffic.gate(endpoint, querying.ig_id)
    headers = ctx.sandbox.traffic.account_call(ctx.token.app_id, querying.ig_id, ctx.now)
    return json_response(read(), headers=headers)


def _querying(ctx: Context) -> Account:
    """The IG account a hashtag call is made on behalf of (``user_id``): one linked to the user's Pages."""
    raw = ctx.params.get("user_id", "")
    if not raw:
        raise WireError(graph_error("(#100) The parameter user_id is required", 100))
    account = ctx.sandbox.world.account_by_ig_id(raw)
    if account is None or not ctx.sandbox.pages.manages(ctx.token.account, account.index):
        raise _unsupported(raw)
    return account


def _charge(ctx: Context, querying: Account, tag: hashtags.Tag) -> None:
    frees_at = ctx.sandbox.hashtags.charge(querying.ig_id, hashtags.hashtag_id(tag.name), ctx.now)
    if frees_at is not None:
        raise WireError(graph_error(
            "(#18) This account has reached the limit of 30 unique hashtags it can query within 7 days.", 18,
            error_type="OAuthException"))
    if tag.blocked:
        raise WireError(graph_error("(#24) Cannot retrieve posts for this hashtag.", 24))


async def _hashtag_search(request: Request, ctx: Context) -> Response:
    querying = _querying(ctx)
    q = ctx.params.get("q")
    if not q:
        raise WireError(graph_error("(#100) The parameter q is required", 100))

    def read() -> dict[str, Any]:
        name = hashtags.normalize(q)
        if not hashtags.valid_name(name):
            return {"data": []}
        tag = ctx.sandbox.hashtags.tag(name)
        _charge(ctx, querying, tag)
        return {"data": [{"id": hashtags.hashtag_id(name)}]}

    return await _answer(request, ctx, "hashtag_search", querying, read)


async def _hashtag(request: Request, ctx: Context, tag: hashtags.Tag, edge: str | None) -> Response:
    if edge is None:
        specs = graph._fields(ctx.params)
        for spec in specs:
            if spec.name not in ("id", "name"):
                raise graph._nonexisting(spec.name, "IGHashtag")
        request.state.call = ("hashtag", None, ctx.token.app_id)
        await ctx.sandbox.traffic.gate("hashtag", None)
        known = {"id": hashtags.hashtag_id(tag.name), "name": tag.name}
        return json_response({spec.name: known[spec.name] for spec in specs})
    if edge not in ("recent_media", "top_media"):
        raise WireError(graph_error(f"Unknown path components: /{edge[:100]}", 2500))
    querying = _querying(ctx)
    specs = graph._fields(ctx.params)
    for spec in specs:
        if spec.name not in HASHTAG_MEDIA_FIELDS:
            raise graph._nonexisting(spec.name, "ShadowIGHashtagMedia")
    return await _answer(request, ctx, edge, querying, lambda: _hashtag_page(ctx, querying, tag, edge, specs))


def _hashtag_page(ctx: Context, querying: Account, tag: hashtags.Tag, edge: str,
                  specs: list[FieldSpec]) -> dict[str, Any]:
    _charge(ctx, querying, tag)
    raw_limit = ctx.params.get("limit", "25")
    if not raw_limit.isdigit() or not 0 < int(raw_limit) < 10**6:
        raise WireError(graph_error("(#100) The parameter limit must be a positive integer", 100))
    limit = min(int(raw_limit), HASHTAG_PAGE_MAX)
    store = ctx.sandbox.hashtags
    if edge == "recent_media":
        posts = store.posts(tag, ctx.now - hashtags.RECENT_WINDOW, ctx.now)
    else:  # the most liked of the week, as instagram.com's top posts
        posts = sorted(store.posts(tag, ctx.now - hashtags.TOP_WINDOW, ctx.now),
                       key=lambda m: (-m.like_count, m.key))[:500]
    # One cursor value for every page of this query (observed): where it continues is kept server-side.
    cursor = "QVFIU" + base64.urlsafe_b64encode(hashlib.sha256(
        f"{ctx.token.value}:{tag.name}:{edge}:{querying.ig_id}".encode()).digest()[:18]).decode()
    state_key = (cursor, edge)
    start = 0
    if ctx.params.get("after"):
        if ctx.params["after"] != cursor:
            raise WireError(graph_error("(#100) The after cursor is invalid", 100))
        start = store.cursors.get(state_key, 0)
    page = posts[start:start + limit]
    store.cursors[state_key] = start + len(page)
    body: dict[str, Any] = {"data": [_tag_media(ctx, m, specs) for m in page]}
    if page:
        body["paging"] = {"cursors": {"after": cursor}}
        if start + len(page) < len(posts):
            query = {k: v for k, v in ctx.params.items() if k != "access_token"}
            query.update(after=cursor, limit=str(limit))
            body["paging"]["next"] = f"{ctx.base}/{ctx.version}/{hashtags.hashtag_id(tag.name)}/{edge}?" + \
                urlencode({**query, "access_token": ctx.token.value})
    return body


def _tag_media(ctx: Context, media: hashtags.TagMedia, specs: list[FieldSpec]) -> dict[str, Any]:
    cdn = ctx.sandbox.cdn
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name == "media_url":
            first = media.children[0] if media.children else None
            if first is not None:
                out[name] = cdn.url(ctx.origin, f"{first.id}_n.{'mp4' if first.media_type == 'VIDEO' else 'jpg'}",
                                    ctx.now)
            else:
                out[name] = cdn.url(ctx.origin, f"{media.id}_n.{'mp4' if media.media_type == 'VIDEO' else 'jpg'}",
                                    ctx.now)
        elif name == "thumbnail_url":
            pass  # not given on the hashtag edges: a video comes without its poster
        elif name == "caption":
            if media.caption is not None:
                out[name] = media.caption
        elif name == "timestamp":
            out[name] = graph._timestamp(media.timestamp)
        elif name == "permalink":
            out[name] = f"https://www.instagram.com/p/{media.shortcode}/"
        elif name == "media_product_type":
            out[name] = "FEED"
        elif name == "children":
            if media.children:
                sub = [s.name for s in (spec.subfields or [FieldSpec("id")])]
                out[name] = {"data": [_tag_child(ctx, child, sub) for child in media.children]}
        else:
            out[name] = getattr(media, name)
    return out


def _tag_child(ctx: Context, child: hashtags.TagChild, fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        if name == "id":
            out[name] = child.id
        elif name == "media_type":
            out[name] = child.media_type
        elif name == "media_url":
            suffix = "mp4" if child.media_type == "VIDEO" else "jpg"
            out[name] = ctx.sandbox.cdn.url(ctx.origin, f"{child.id}_n.{suffix}", ctx.now)
        elif name not in HASHTAG_MEDIA_FIELDS:
            raise graph._nonexisting(name, "ShadowIGHashtagMedia")
    return out


async def _ig_user(request: Request, ctx: Context, account: Account, edge: str | None) -> Response:
    if edge == "recently_searched_hashtags":
        def searched() -> dict[str, Any]:
            raw = ctx.params.get("limit", "25")
            limit = min(int(raw), 30) if raw.isdigit() and int(raw) > 0 else 25
            ledger = ctx.sandbox.hashtags.searched(account.ig_id, ctx.now)
            newest = sorted(ledger, key=lambda t: -ledger[t])[:limit]
            return {"data": [{"id": tag_id} for tag_id in newest]}

        return await _answer(request, ctx, "recently_searched_hashtags", account, searched)
    if edge is not None:
        endpoint = "fb_" + graph._endpoint_name(account, edge)
        return await _answer(request, ctx, endpoint, account, lambda: graph._read(ctx, account, edge, "GET"))
    specs = graph._fields(ctx.params)
    discovery = next((s for s in specs if s.name == "business_discovery"), None)
    own = [s for s in specs if s.name != "business_discovery"]

    def read() -> dict[str, Any]:
        body = graph._user(ctx, account, own) if own else {}
        if discovery is not None:
            body["business_discovery"] = _business_discovery(ctx, discovery)
        body.setdefault("id", account.ig_id)
        return body

    return await _answer(request, ctx, "business_discovery" if discovery else "fb_user", account, read)


def _business_discovery(ctx: Context, spec: FieldSpec) -> dict[str, Any]:
    username = spec.modifiers.get("username", "")
    target = ctx.sandbox.world.account_by_username(username.strip().lstrip("@"))
    if target is None or target.account_type == "PERSONAL":
        raise WireError(graph_error("(#110) Invalid user id", 110))
    body = graph._user(ctx, target, spec.subfields or [FieldSpec("id")])
    page = body.get("media")
    if isinstance(page, dict) and isinstance(page.get("paging"), dict):
        # The nested edge pages with field modifiers (media.after(…)), never by URL; no `after` on the last page.
        paging = page["paging"]
        more = paging.pop("next", None) is not None
        paging.pop("previous", None)
        if not more:
            paging["cursors"].pop("after", None)
    return body
