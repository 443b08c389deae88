"""Graph reads on graph.instagram.com: ``/[vNN.0/]{node}[/{edge}]`` for the IG user, media and album children.

Without ``fields`` a node answers only ``id``. Optional fields disappear the way Instagram drops them (no
``caption`` when there is none, no ``media_url`` for copyrighted media, ``thumbnail_url`` only on video, no
aggregate counters on album children). Media lists page newest-first with opaque keyset cursors, so a post added
while a client pages never shifts what the client sees, and only the 10 000 most recent media are reachable.
"""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from filmroll.sandbox import insights, oauth
from filmroll.sandbox.auth import Token
from filmroll.sandbox.fields import FieldSpec, FieldSyntaxError, parse_fields
from filmroll.sandbox.state import LATEST_GRAPH_VERSION, OLDEST_GRAPH_VERSION, Sandbox
from filmroll.sandbox.wire import WireError, graph_error, json_response, parse_query
from filmroll.sandbox.world import MEDIA_CAP, Account, Child, Media, Timeline

_VERSION = re.compile(r"v(\d{1,3})\.0")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
USER_FIELDS = frozenset({"id", "user_id", "username", "name", "account_type", "profile_picture_url",
                         "followers_count", "follows_count", "media_count", "biography", "media"})
MEDIA_FIELDS = frozenset({"id", "alt_text", "caption", "comments_count", "is_comment_enabled",
                          "is_shared_to_feed", "legacy_instagram_media_id", "like_count", "media_product_type",
                          "media_type", "media_url", "owner", "permalink", "shortcode", "thumbnail_url",
                          "timestamp", "username", "view_count", "children"})
_CHILD_OMITS = frozenset({"caption", "permalink", "like_count", "comments_count", "children",
                          "is_comment_enabled", "is_shared_to_feed"})
_DOC_ACCOUNT_TYPES = {"BUSINESS": "Business", "MEDIA_CREATOR": "Media_Creator"}


class Context:
    """One Graph request: who is asking, and how to write URLs back to this server."""

    def __init__(self, sandbox: Sandbox, request: Request, token: Token, version: str,
                 params: dict[str, str], *, facebook: bool = False) -> None:
        self.sandbox = sandbox
        # graph.facebook.com: an IG user's ``id`` is its IG user id (no app-scoped id, no ``user_id`` field)
        self.facebook = facebook
        self.token = token
        self.version = version
        self.params = params
        self.origin = f"{request.url.scheme}://{request.url.netloc}"  # the CDN host is served from the root
        # This host's root (its mount, when reached under its name): paging links stay on it.
        self.base = self.origin + str(request.scope.get("root_path", "")).rstrip("/")
        self.now = sandbox.now()

    def url(self, path: str, params: dict[str, str]) -> str:
        return f"{self.base}/{self.version}/{path}?{urlencode({**params, 'access_token': self.token.value})}"


def _unsupported(method: str, node: str) -> WireError:
    return WireError(graph_error(
        f"Unsupported {method.lower()} request. Object with ID '{node[:100]}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api", 100, subcode=33,
        error_type="IGApiException"))


def _nonexisting(field: str, node_type: str) -> WireError:
    return WireError(graph_error(
        f"(#100) Tried accessing nonexisting field ({field[:100]}) on node type ({node_type})", 100))


def _fields(params: dict[str, str]) -> list[FieldSpec]:
    raw = params.get("fields")
    if raw is None or raw == "":
        return [FieldSpec("id")]
    try:
        return parse_fields(raw)
    except FieldSyntaxError as exc:
        raise WireError(graph_error(str(exc), 2500)) from None


def split_version(request: Request) -> tuple[str, list[str]]:
    """The Graph version a path names (the latest when none) and its other segments, within this host's table."""
    segments = [s for s in str(request.path_params.get("path", "")).split("/") if s]
    version = f"v{LATEST_GRAPH_VERSION}.0"
    if segments and segments[0].startswith("v") and "." in segments[0]:
        match = _VERSION.fullmatch(segments[0])
        if match is None or int(match.group(1)) > LATEST_GRAPH_VERSION:
            raise WireError(graph_error(f"Unknown path components: /{segments[0][:40]}", 2500))
        if int(match.group(1)) < OLDEST_GRAPH_VERSION:
            raise WireError(graph_error(
                f"(#2635) You are calling a deprecated version of the Graph API. Please update to the latest "
                f"version: v{LATEST_GRAPH_VERSION}.0.", 2635))
        version = segments.pop(0)
    return version, segments


async def dispatch(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request.state.call = ("graph", None, None)
    version, segments = split_version(request)
    if segments in (["access_token"], ["refresh_access_token"]):
        handler = oauth.exchange_long_lived if segments[0] == "access_token" else oauth.refresh
        return await handler(request)
    if not segments:
        raise WireError(graph_error("Unsupported get request.", 100, error_type="IGApiException"))
    if len(segments) > 2:
        raise WireError(graph_error(f"Unknown path components: /{'/'.join(segments[2:])[:100]}", 2500))
    node = segments[0]
    edge = segments[1] if len(segments) == 2 else None
    if request.method not in ("GET", "HEAD") and not (request.method == "POST" and edge == "subscribed_apps"):
        raise _unsupported(request.method, node)
    try:
        params = parse_query(request.scope["query_string"])
    except ValueError:
        raise WireError(graph_error("(#100) Invalid parameter", 100)) from None
    guess = ("user" if node == "me" or sandbox.world.account_by_ig_id(node) else "media") if edge is None else \
        {"media": "media_list", "insights": "user_insights" if node == "me" else "media_insights"}.get(edge, edge)
    token = oauth.resolve_for(request, sandbox, oauth.token_from_request(params, request), guess)
    owner = sandbox.world.account(token.account)
    assert owner is not None
    request.state.call = (f"graph:{edge or 'node'}", owner.ig_id, token.app_id)
    ctx = Context(sandbox, request, token, version, params)
    target = _resolve(sandbox, node, owner)
    if target is None:
        raise _unsupported(request.method, node)
    endpoint = _endpoint_name(target, edge)
    request.state.call = (endpoint, owner.ig_id, token.app_id)
    await sandbox.traffic.gate(endpoint, owner.ig_id)
    headers = sandbox.traffic.account_call(token.app_id, owner.ig_id, ctx.now)
    body = _read(ctx, target, edge, request.method)
    return json_response(body, headers=headers)


def _endpoint_name(target: Account | Media | Child, edge: str | None) -> str:
    if isinstance(target, Account):
        return {None: "user", "media": "media_list", "insights": "user_insights"}.get(edge, f"user_{edge}")
    return {None: "media", "children": "children", "insights": "media_insights"}.get(edge, f"media_{edge}")


def _resolve(sandbox: Sandbox, node: str, owner: Account) -> Account | Media | Child | None:
    if node == "me" or node == owner.ig_id:
        return owner
    media = sandbox.world.media(node)
    if media is not None:
        return media if media.account == owner.index else None
    child = sandbox.world.child(node)
    if child is not None:
        parent = sandbox.world.media(child.parent_id)
        return child if parent is not None and parent.account == owner.index else None
    return None  # another account, an app-scoped id (not queryable), or nothing at all


def _read(ctx: Context, target: Account | Media | Child, edge: str | None, method: str) -> dict[str, Any]:
    world = ctx.sandbox.world
    if isinstance(target, Account):
        if edge is None:
            body = _user(ctx, target, _fields(ctx.params))
            if ctx.sandbox.switches.me_response == "data":
                return {"data": [body]}
            return body
        if edge == "media":
            return _media_page(ctx, target, _fields(ctx.params), ctx.params)
        if edge == "stories":
            return {"data": []}  # stories live 24 h; the sandbox's accounts post none
        if edge == "subscribed_apps":
            return {"success": True} if method == "POST" else {"data": []}
        if edge == "insights":
            body = insights.account_insights(target, ctx.params, ctx.token.permissions, ctx.now)
            body["paging"] = {k: ctx.base + f"/{ctx.version}" + v + "&access_token=" + ctx.token.value
                              for k, v in body["paging"].items()}
            return body
        raise WireError(graph_error(f"Unknown path components: /{edge[:100]}", 2500))
    if isinstance(target, Child):
        if edge == "insights":
            raise WireError(graph_error("(#100) Insights are not available for album children", 100))
        if edge is not None:
            raise WireError(graph_error(f"Unknown path components: /{edge[:100]}", 2500))
        parent = world.media(target.parent_id)
        assert parent is not None
        return _child(ctx, target, parent, _fields(ctx.params))
    if edge is None:
        return _media(ctx, target, _fields(ctx.params))
    if edge == "children":
        specs = _fields(ctx.params)
        return {"data": [_child(ctx, c, target, specs) for c in target.children]}
    if edge == "insights":
        return insights.media_insights(target, ctx.params, ctx.token.permissions)
    raise WireError(graph_error(f"Unknown path components: /{edge[:100]}", 2500))


def _user(ctx: Context, account: Account, specs: list[FieldSpec]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name not in USER_FIELDS:
            raise _nonexisting(name, "User")
        if name == "id":
            out["id"] = account.ig_id if ctx.facebook else account.scoped_id
        elif name == "user_id":
            if ctx.facebook:
                raise _nonexisting(name, "IGUser")
            out["user_id"] = account.ig_id
        elif name == "account_type":
            doc = ctx.sandbox.switches.account_type_case == "doc"
            out[name] = _DOC_ACCOUNT_TYPES[account.account_type] if doc else account.account_type
        elif name == "profile_picture_url":
            out[name] = ctx.sandbox.cdn.url(ctx.origin, f"{account.ig_id}_profile.jpg", ctx.now)
        elif name == "media_count":
            out[name] = ctx.sandbox.world.media_count(account.index)
        elif name == "media":
            params = {"limit": spec.modifiers.get("limit", str(DEFAULT_LIMIT))}
            for key in ("after", "before", "since", "until"):
                if key in spec.modifiers:
                    params[key] = spec.modifiers[key]
            out[name] = _media_page(ctx, account, spec.subfields or [FieldSpec("id")], params)
        else:
            out[name] = getattr(account, name)
    return out


def _timestamp(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


def _media(ctx: Context, media: Media, specs: list[FieldSpec]) -> dict[str, Any]:
    account = ctx.sandbox.world.account(media.account)
    assert account is not None
    cdn = ctx.sandbox.cdn
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name not in MEDIA_FIELDS:
            raise _nonexisting(name, "Media")
        if name == "caption":
            if media.caption is not None:
                out[name] = media.caption
        elif name == "alt_text":
            if media.alt_text is not None:
                out[name] = media.alt_text
        elif name == "media_url":
            if not media.copyrighted:
                if media.media_type == "VIDEO":
                    out[name] = cdn.url(ctx.origin, f"{media.id}_n.mp4", ctx.now)
                elif media.media_type == "CAROUSEL_ALBUM" and media.children:
                    out[name] = _child_url(ctx, media.children[0])
                else:
                    out[name] = cdn.url(ctx.origin, f"{media.id}_n.jpg", ctx.now)
        elif name == "thumbnail_url":
            if media.media_type == "VIDEO":
                out[name] = cdn.url(ctx.origin, f"{media.id}_poster.jpg", ctx.now)
        elif name == "is_shared_to_feed":
            if media.is_shared_to_feed is not None:
                out[name] = media.is_shared_to_feed
        elif name == "view_count":
            pass  # Business Discovery only; absent on an owner's read
        elif name == "children":
            if media.media_type == "CAROUSEL_ALBUM":
                sub = spec.subfields or [FieldSpec("id")]
                out[name] = {"data": [_child(ctx, c, media, sub) for c in media.children]}
        else:
            out[name] = _simple(media, account, name)
    return out


def _simple(media: Media, account: Account, name: str) -> Any:
    if name == "media_product_type":
        return media.product_type
    if name == "permalink":
        kind = "reel" if media.product_type == "REELS" else "p"
        return f"https://www.instagram.com/{kind}/{media.shortcode}/"
    if name == "timestamp":
        return _timestamp(media.timestamp)
    if name == "username":
        return account.username
    if name == "owner":
        return {"id": account.ig_id}
    if name == "legacy_instagram_media_id":
        return str(int(media.id) * 7 % 10**19)
    return getattr(media, name)


def _child_url(ctx: Context, child: Child) -> str:
    suffix = "mp4" if child.media_type == "VIDEO" else "jpg"
    return ctx.sandbox.cdn.url(ctx.origin, f"{child.id}_n.{suffix}", ctx.now)


def _child(ctx: Context, child: Child, parent: Media, specs: list[FieldSpec]) -> dict[str, Any]:
    account = ctx.sandbox.world.account(parent.account)
    assert account is not None
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name not in MEDIA_FIELDS:
            raise _nonexisting(name, "Media")
        if name in _CHILD_OMITS or name in ("alt_text", "view_count"):
            continue
        if name == "id":
            out[name] = child.id
        elif name == "media_type":
            out[name] = child.media_type
        elif name == "media_product_type":
            out[name] = "FEED"
        elif name == "media_url":
            if not parent.copyrighted:
                out[name] = _child_url(ctx, child)
        elif name == "thumbnail_url":
            if child.media_type == "VIDEO":
                out[name] = ctx.sandbox.cdn.url(ctx.origin, f"{child.id}_poster.jpg", ctx.now)
        elif name == "timestamp":
            out[name] = _timestamp(child.timestamp)
        elif name == "shortcode":
            out[name] = parent.shortcode + str(parent.children.index(child))
        else:
            out[name] = _simple(parent, account, name)
    return out


# ----- paging ---------------------------------------------------------------------------------------------------

_CURSOR_PREFIX = "QVFI"


def _cursor(key: tuple[int, int], seed: int) -> str:
    raw = struct.pack(">qq", key[0], key[1])
    raw += struct.pack(">I", zlib.crc32(raw + str(seed).encode()))
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(value: str, seed: int, which: str) -> tuple[int, int]:
    error = WireError(graph_error(f"(#100) The {which} cursor is invalid", 100))
    if not value.startswith(_CURSOR_PREFIX) or len(value) > 64:
        raise error
    try:
        raw = base64.urlsafe_b64decode(value[len(_CURSOR_PREFIX):] + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise error from None
    if len(raw) != 20 or struct.unpack(">I", raw[16:])[0] != zlib.crc32(raw[:16] + str(seed).encode()):
        raise error
    first, second = struct.unpack(">qq", raw[:16])
    return first, second


def _instant(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if raw.lstrip("-").isdigit() and len(raw) < 12:
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise WireError(graph_error(f"(#100) The parameter {name} must be a Unix timestamp or a date", 100)) \
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise WireError(graph_error("(#100) The parameter limit must be a positive integer", 100))
    return min(int(raw), MAX_LIMIT)


def _media_page(ctx: Context, account: Account, specs: list[FieldSpec], params: dict[str, str]) -> dict[str, Any]:
    for spec in specs:
        if spec.name not in MEDIA_FIELDS:
            raise _nonexisting(spec.name, "Media")
    limit = _limit(params.get("limit"))
    since, until = _instant(params.get("since"), "since"), _instant(params.get("until"), "until")
    seed = ctx.sandbox.config.seed
    timeline: Timeline = ctx.sandbox.world.timeline(account.index)
    keys = timeline.keys[:MEDIA_CAP]
    low = 0 if until is None else Timeline(0, keys).position_before((-until, -(2**62)))
    high = len(keys) if since is None else Timeline(0, keys).position_after((-since, 2**62))
    if params.get("after"):
        key = _uncursor(params["after"], seed, "after")
        position = timeline.position_after(key)
        if position > MEDIA_CAP:
            raise WireError(graph_error(
                "(#100) The After Cursor specified exceeds the max limit supported by this endpoint", 100))
        start = max(low, position)
        end = min(high, start + limit)
    elif params.get("before"):
        key = _uncursor(params["before"], seed, "before")
        end = min(high, timeline.position_before(key))
        start = max(low, end - limit)
    else:
        start, end = low, min(high, low + limit)
    page = keys[start:end] if start < end else []
    world = ctx.sandbox.world
    data = [_media(ctx, world.media_at(account.index, key), specs) for key in page]
    body: dict[str, Any] = {"data": data}
    if page:
        before, after = _cursor(page[0], seed), _cursor(page[-1], seed)
        paging: dict[str, Any] = {"cursors": {"before": before, "after": after}}
        query = {"fields": ",".join(_spec_text(s) for s in specs), "limit": str(limit)}
        for bound in ("since", "until"):
            if params.get(bound):
                query[bound] = params[bound]
        if start > low:
            paging["previous"] = ctx.url(f"{account.ig_id}/media", {**query, "before": before})
        if end < high:
            paging["next"] = ctx.url(f"{account.ig_id}/media", {**query, "after": after})
        body["paging"] = paging
    listing = ctx.sandbox.switches.media_listing
    if listing == "empty":
        body["data"] = []
    elif listing == "truncated":
        body = {"data": []}
    return body


def _spec_text(spec: FieldSpec) -> str:
    text = spec.name + "".join(f".{k}({v})" for k, v in spec.modifiers.items())
    if spec.subfields:
        text += "{" + ",".join(_spec_text(s) for s in spec.subfields) + "}"
    return text
