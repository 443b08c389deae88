"""The control API under ``/_sandbox/``: what tests and demos use to set the stage. Never part of Instagram.

It seeds nothing by itself (the world is generated from the seed); it changes the world, moves the clock, flips
switches, injects faults, mints tokens without the consent page, reads the call log, and delivers Meta's callbacks
(webhooks, deauthorize and data-deletion ``signed_request``) to a URL.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filmroll.sandbox import auth
from filmroll.sandbox.state import Sandbox
from filmroll.sandbox.wire import json_response
from filmroll.sandbox.world import Account


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClockChange(_Body):
    advance: float | None = Field(default=None, ge=0)
    set: float | None = None


class AccountChange(_Body):
    username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._]{1,30}$")
    name: str | None = Field(default=None, max_length=64)
    # PERSONAL: not a professional account any more (Business Discovery answers #110 for it)
    account_type: Literal["BUSINESS", "MEDIA_CREATOR", "PERSONAL"] | None = None
    followers_count: int | None = Field(default=None, ge=0)
    follows_count: int | None = Field(default=None, ge=0)
    biography: str | None = Field(default=None, max_length=150)
    password: str | None = Field(default=None, min_length=1, max_length=128)


class NewMedia(_Body):
    media_type: Literal["IMAGE", "VIDEO", "CAROUSEL_ALBUM"] = "IMAGE"
    product_type: Literal["FEED", "REELS"] = "FEED"
    caption: str | None = Field(default=None, max_length=2200)
    timestamp: int | None = None
    children: list[Literal["IMAGE", "VIDEO"]] = Field(default_factory=list, max_length=10)
    copyrighted: bool = False


class MediaChange(_Body):
    caption: str | None = Field(default=None, max_length=2200)
    like_count: int | None = Field(default=None, ge=0)
    comments_count: int | None = Field(default=None, ge=0)
    alt_text: str | None = None
    is_comment_enabled: bool | None = None
    copyrighted: bool | None = None


class Revocation(_Body):
    reason: Literal["password_changed", "app_removed", "revoked"] = "revoked"


class Throttle(_Body):
    minutes: float = Field(default=60, gt=0)
    code: Literal[4, 17, 32, 613, 80002] = 80002


class Mint(_Body):
    account: str | int | None = None
    accounts: list[str | int] | None = Field(default=None, max_length=200_000)
    first: int | None = Field(default=None, ge=0)
    count: int | None = Field(default=None, ge=1, le=200_000)
    kind: Literal["short", "long"] = "long"
    issued_at: float | None = None
    age_seconds: float | None = Field(default=None, ge=0)
    permissions: list[str] = Field(default_factory=lambda: ["instagram_business_basic"])
    app_id: str | None = None


class TokenRef(_Body):
    access_token: str


class CodeRequest(_Body):
    account: str | int = 0
    redirect_uri: str | None = None
    permissions: list[str] = Field(default_factory=lambda: ["instagram_business_basic"])


class FaultSpec(_Body):
    kind: Literal["status", "graph_error", "latency", "reset", "hang", "body", "truncate"]
    endpoint: str = "*"
    account: str | None = None
    times: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)
    status: int | None = Field(default=None, ge=200, le=599)
    code: int = 2
    subcode: int | None = None
    message: str | None = Field(default=None, max_length=20_000)
    latency_ms: int = Field(default=0, ge=0, le=600_000)


class RateLimitChange(_Body):
    account_calls: int | None = Field(default=None, ge=1)
    app_calls_per_user: int | None = Field(default=None, ge=1)
    window: int | None = Field(default=None, ge=60)


class RedirectUri(_Body):
    uri: str = Field(min_length=1, max_length=2048)


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def _body(request: Request, model: type[_Body]) -> Any:
    raw = await request.body()
    try:
        # Python's parser, not pydantic's: it takes what Instagram's JSON may carry and a test may want served back,
        # a lone surrogate escaped (\ud800), which pydantic's strict parser refuses.
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ControlError("body: a JSON object is expected")
        checked = model.model_validate({k: _as_text(v) for k, v in data.items()})
        for key, value in data.items():  # kept as sent: what is not valid Unicode is checked as its replacement
            if isinstance(value, str) and key in model.model_fields and value != _as_text(value):
                object.__setattr__(checked, key, value)
        return checked
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ControlError(problems) from None
    except ValueError:
        raise ControlError("body: not JSON") from None


def _as_text(value: Any) -> Any:
    """A string with its lone surrogates replaced (U+FFFD), which pydantic can check; anything else as it is."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if isinstance(value, str) else value


def _account(sandbox: Sandbox, ref: str | int) -> Account:
    text = str(ref)
    world = sandbox.world
    account = None
    if text.isdigit() and len(text) < 10:
        account = world.account(int(text))
    elif text.isdigit():
        account = world.account_by_ig_id(text) or world.account_by_scoped_id(text)
    else:
        account = world.account_by_username(text.lstrip("@"))
    if account is None:
        raise ControlError(f"no sandbox account {text[:60]!r}", 404)
    return account


def account_json(sandbox: Sandbox, account: Account) -> dict[str, Any]:
    data = dataclasses.asdict(account)
    data["media_count"] = sandbox.world.media_count(account.index)
    return data


async def unknown(request: Request) -> Response:
    raise ControlError(f"no control endpoint {request.method} {request.url.path[:100]}", 404)


async def summary(request: Request) -> Response:
    sandbox = _sandbox(request)
    app = sandbox.default_app
    sample = [account_json(sandbox, a) for i in range(min(5, sandbox.config.accounts))
              if (a := sandbox.world.account(i)) is not None]
    return json_response({
        "app_id": app.app_id, "app_secret": app.app_secret, "meta_app_id": app.meta_app_id,
        "redirect_uris": app.redirect_uris, "seed": sandbox.config.seed, "accounts": sandbox.config.accounts,
        "now": sandbox.now(), "switches": sandbox.switches.public(), "sample_accounts": sample,
    })


async def reset(request: Request) -> Response:
    _sandbox(request).traffic.clear_faults()
    _sandbox(request).reset()
    return await summary(request)


async def clock(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "POST":
        change = await _body(request, ClockChange)
        try:
            if change.advance is not None:
                sandbox.clock.advance(change.advance)
            if change.set is not None:
                sandbox.clock.set(change.set)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
    return json_response({"now": sandbox.now()})


async def switches(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "PATCH":
        raw = await request.body()
        try:
            changes = json.loads(raw or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of switch names and values")
            sandbox.switches.update(changes)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        sandbox.cdn.url_ttl = sandbox.switches.cdn_url_ttl
        sandbox.cdn.video_url_ttl = sandbox.switches.cdn_video_url_ttl
        sandbox.traffic.latency_ms = sandbox.switches.latency_ms
        sandbox.traffic.latency_jitter_ms = sandbox.switches.latency_jitter_ms
    return json_response(sandbox.switches.public())


async def redirect_uris(request: Request) -> Response:
    sandbox = _sandbox(request)
    app = sandbox.default_app
    change = await _body(request, RedirectUri)
    uri = change.uri
    if request.method == "POST":
        if sandbox.switches.require_https_redirect and not uri.startswith("https://"):
            raise ControlError("Instagram accepts only https:// redirect URIs, even for localhost "
                               "(switch require_https_redirect off to allow http for local tests)")
        if uri not in app.redirect_uris:
            app.redirect_uris.append(uri)
    elif uri in app.redirect_uris:
        app.redirect_uris.remove(uri)
    return json_response({"redirect_uris": app.redirect_uris})


async def accounts(request: Request) -> Response:
    sandbox = _sandbox(request)
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = min(int(request.query_params.get("limit", "20")), 1000)
    except ValueError:
        raise ControlError("offset and limit are whole numbers") from None
    found = [sandbox.world.account(i) for i in range(max(0, offset), min(sandbox.config.accounts, offset + limit))]
    return json_response({"total": sandbox.config.accounts,
                          "data": [account_json(sandbox, a) for a in found if a is not None]})


async def account(request: Request) -> Response:
    sandbox = _sandbox(request)
    target = _account(sandbox, request.path_params["ref"])
    if request.method == "PATCH":
        change = await _body(request, AccountChange)
        try:
            target = sandbox.world.edit_account(target.index, change.model_dump(exclude_none=True))
        except ValueError as exc:
            raise ControlError(str(exc), 409) from None
    return json_response(account_json(sandbox, target))


async def account_media(request: Request) -> Response:
    sandbox = _sandbox(request)
    target = _account(sandbox, request.path_params["ref"])
    if request.method == "POST":
        spec = await _body(request, NewMedia)
        if (spec.media_type == "CAROUSEL_ALBUM") != bool(spec.children):
            raise ControlError("an album needs 2 to 10 children, and only an album has children")
        if spec.media_type == "CAROUSEL_ALBUM" and len(spec.children) < 2:
            raise ControlError("an album needs at least 2 children")
        media = sandbox.world.add_media(
            target.index, timestamp=int(spec.timestamp or sandbox.now()), media_type=spec.media_type,
            product_type=spec.product_type if spec.media_type == "VIDEO" else "FEED", caption=spec.caption,
            children=list(spec.children), copyrighted=spec.copyrighted)
        return json_response(_media_json(media), 201)
    timeline = sandbox.world.timeline(target.index)
    limit = min(int(request.query_params.get("limit", "50") or 50), 20_000)
    return json_response({"total": len(timeline), "ids": [str(-k[1]) for k in timeline.keys[:limit]]})


def _media_json(media: Any) -> dict[str, Any]:
    return dataclasses.asdict(media)


async def media(request: Request) -> Response:
    sandbox = _sandbox(request)
    media_id = request.path_params["media_id"]
    try:
        if request.method == "DELETE":
            return json_response(_media_json(sandbox.world.delete_media(media_id)))
        if request.method == "PATCH":
            change = await _body(request, MediaChange)
            return json_response(_media_json(sandbox.world.edit_media(media_id, change.model_dump(
                exclude_unset=True))))
    except KeyError:
        raise ControlError(f"no live media {media_id[:40]!r}", 404) from None
    found = sandbox.world.media(media_id)
    if found is None:
        raise ControlError(f"no live media {media_id[:40]!r}", 404)
    return json_response(_media_json(found))


async def revoke_account(request: Request) -> Response:
    sandbox = _sandbox(request)
    target = _account(sandbox, request.path_params["ref"])
    revocation = await _body(request, Revocation)
    subcode = auth.REVOCATION_REASONS[revocation.reason]
    for app_id in sandbox.auth.apps:
        sandbox.auth.revoke_account(app_id, target.index, subcode, sandbox.now())
    if revocation.reason == "password_changed":
        sandbox.auth.sessions = {k: v for k, v in sandbox.auth.sessions.items() if v != target.index}
    return json_response({"account": target.ig_id, "reason": revocation.reason, "subcode": subcode})


async def throttle(request: Request) -> Response:
    sandbox = _sandbox(request)
    target = _account(sandbox, request.path_params["ref"])
    spec = await _body(request, Throttle)
    until = sandbox.now() + spec.minutes * 60
    sandbox.traffic.throttle(target.ig_id, until, spec.code)
    return json_response({"account": target.ig_id, "until": until, "code": spec.code})


def _token_json(sandbox: Sandbox, token: auth.Token) -> dict[str, Any]:
    return {"access_token": token.value, "account": token.account,
            "ig_id": sandbox.world.ids.ig_user.encode(token.account),
            "user_id": sandbox.world.ids.scoped.encode(token.account), "kind": token.kind,
            "permissions": list(token.permissions), "issued_at": token.issued_at, "expires_at": token.expires_at,
            "app_id": token.app_id}


async def mint(request: Request) -> Response:
    sandbox = _sandbox(request)
    spec = await _body(request, Mint)
    refs: list[str | int]
    if spec.accounts is not None:
        refs = list(spec.accounts)
    elif spec.first is not None:
        refs = list(range(spec.first, spec.first + (spec.count or 1)))
    else:
        refs = [spec.account if spec.account is not None else 0]
    app_id = spec.app_id or sandbox.default_app.app_id
    if app_id not in sandbox.auth.apps:
        raise ControlError(f"no sandbox app {app_id[:30]!r}", 404)
    now = sandbox.now()
    issued_at = spec.issued_at if spec.issued_at is not None else now - (spec.age_seconds or 0)
    if issued_at > now:
        raise ControlError("issued_at cannot be in the sandbox's future")
    targets = [_account(sandbox, ref) for ref in refs]
    minted = [sandbox.auth.issue_token(app_id, a.index, spec.kind, tuple(spec.permissions), issued_at)
              for a in targets]
    return json_response({"tokens": [_token_json(sandbox, t) for t in minted]}, 201)


async def inspect_token(request: Request) -> Response:
    sandbox = _sandbox(request)
    ref = await _body(request, TokenRef)
    token = sandbox.auth.tokens.get(ref.access_token)
    if token is None:
        return json_response({"valid": False, "known": False})
    reason = sandbox.auth.dead_reason(token, sandbox.now())
    return json_response({**_token_json(sandbox, token), "valid": reason is None, "known": True,
                          "dead_subcode": reason})


async def revoke_token(request: Request) -> Response:
    sandbox = _sandbox(request)
    ref = await _body(request, TokenRef)
    token = sandbox.auth.tokens.get(ref.access_token)
    if token is None:
        raise ControlError("unknown token", 404)
    token.revoked = auth.LOGGED_OUT
    return json_response({"revoked": True})


async def mint_code(request: Request) -> Response:
    sandbox = _sandbox(request)
    spec = await _body(request, CodeRequest)
    target = _account(sandbox, spec.account)
    app = sandbox.default_app
    redirect_uri = spec.redirect_uri or app.redirect_uris[0]
    if redirect_uri not in app.redirect_uris:
        raise ControlError("redirect_uri is not registered; add it with POST /_sandbox/redirect-uris")
    code = sandbox.auth.issue_code(app.app_id, target.index, redirect_uri, tuple(spec.permissions), sandbox.now())
    return json_response({"code": code.value, "redirect_uri": redirect_uri}, 201)


async def calls(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "DELETE":
        sandbox.traffic.calls.clear()
        return json_response({"cleared": True})
    query = request.query_params
    try:
        since = int(query.get("since_id", "0"))
        limit = min(int(query.get("limit", "1000")), 200_000)
    except ValueError:
        raise ControlError("since_id and limit are whole numbers") from None
    selected = [dataclasses.asdict(c) for c in sandbox.traffic.calls
                if c.id > since and query.get("endpoint", c.endpoint) == c.endpoint
                and query.get("account", c.account) == c.account]
    return json_response({"data": selected[:limit], "total": len(selected)})


async def overlaps(request: Request) -> Response:
    endpoint = request.query_params.get("endpoint", "refresh")
    return json_response({"endpoint": endpoint, "overlaps": _sandbox(request).traffic.overlaps(endpoint)})


async def call_summary(request: Request) -> Response:
    counts: dict[str, dict[str, int]] = {}
    for call in _sandbox(request).traffic.calls:
        bucket = counts.setdefault(call.endpoint, {})
        bucket[call.outcome] = bucket.get(call.outcome, 0) + 1
    return json_response(counts)


async def faults(request: Request) -> Response:
    traffic = _sandbox(request).traffic
    if request.method == "POST":
        spec = await _body(request, FaultSpec)
        data = spec.model_dump()
        if spec.kind == "status" and spec.status is not None and spec.status < 400:
            raise ControlError("a status fault answers with an HTTP error: status must be 400 to 599")
        data["remaining"] = data.pop("times")
        if data["status"] is None:
            data["status"] = {"status": 500, "body": 200}.get(spec.kind, 400)
        return json_response(traffic.add_fault(**data).public(), 201)
    if request.method == "DELETE":
        traffic.clear_faults()
    return json_response({"data": [f.public() for f in traffic.faults]})


async def fault(request: Request) -> Response:
    traffic = _sandbox(request).traffic
    fault_id = int(request.path_params["fault_id"])
    found = next((f for f in traffic.faults if f.id == fault_id), None)
    if found is None:
        raise ControlError(f"no fault {fault_id}", 404)
    if request.method == "DELETE":
        found.released.set()
        traffic.faults.remove(found)
    elif request.url.path.endswith("/release"):
        traffic.release(fault_id)
    return json_response(found.public())


async def rate_limits(request: Request) -> Response:
    traffic = _sandbox(request).traffic
    if request.method == "PATCH":
        change = await _body(request, RateLimitChange)
        for name, value in change.model_dump(exclude_none=True).items():
            setattr(traffic.limits, name, value)
    elif request.method == "DELETE":
        traffic.reset_usage()
    return json_response(dataclasses.asdict(traffic.limits))


routes = [
    Route("/", summary, methods=["GET"]),
    Route("/reset", reset, methods=["POST"]),
    Route("/clock", clock, methods=["GET", "POST"]),
    Route("/switches", switches, methods=["GET", "PATCH"]),
    Route("/redirect-uris", redirect_uris, methods=["POST", "DELETE"]),
    Route("/accounts", accounts, methods=["GET"]),
    Route("/accounts/{ref}", account, methods=["GET", "PATCH"]),
    Route("/accounts/{ref}/media", account_media, methods=["GET", "POST"]),
    Route("/accounts/{ref}/revoke", revoke_account, methods=["POST"]),
    Route("/accounts/{ref}/throttle", throttle, methods=["POST"]),
    Route("/media/{media_id}", media, methods=["GET", "PATCH", "DELETE"]),
    Route("/tokens", mint, methods=["POST"]),
    Route("/tokens/inspect", inspect_token, methods=["POST"]),
    Route("/tokens/revoke", revoke_token, methods=["POST"]),
    Route("/codes", mint_code, methods=["POST"]),
    Route("/calls", calls, methods=["GET", "DELETE"]),
    Route("/calls/overlaps", overlaps, methods=["GET"]),
    Route("/calls/summary", call_summary, methods=["GET"]),
    Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/faults/{fault_id:int}", fault, methods=["GET", "DELETE"]),
    Route("/faults/{fault_id:int}/release", fault, methods=["POST"]),
    Route("/rate-limits", rate_limits, methods=["GET", "PATCH", "DELETE"]),
]
