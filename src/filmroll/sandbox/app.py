"""The sandbox as one Starlette application: Instagram's surface, its CDN, and the ``/_sandbox/`` control API.

Real Instagram spreads these over hosts, and each host has a route table of its own (:func:`host_tables`):

    www.instagram.com       /oauth/authorize                 the consent page
    api.instagram.com       /oauth/access_token              the code exchange
    graph.instagram.com     /access_token, /refresh_access_token, and Graph reads (a catch-all)
    scontent.cdninstagram.com   the CDN's signed image and video URLs

    www.facebook.com        /v25.0/dialog/oauth              Facebook Login's dialog
    graph.facebook.com      /oauth/access_token, /debug_token, /me/accounts, IG reads, hashtags, Business Discovery

Each table is served under its host's name (``http://127.0.0.1:8700/graph.instagram.com/v25.0/me``), and, since
Instagram's own paths do not collide, also at the root, where filmroll's settings point every base URL by default.
Facebook's hosts (graph.facebook.com's paths do collide with Instagram's) are reachable under their names only,
without touching Instagram's catch-all.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filmroll.sandbox import control, delivery, facebook, facebook_control, facebook_graph, graph, oauth
from filmroll.sandbox.cdn import PATH_PREFIX, PROFILE_SIZE, CdnError, size_for
from filmroll.sandbox.state import Sandbox, SandboxConfig
from filmroll.sandbox.traffic import ConnectionReset, CutShort
from filmroll.sandbox.wire import WireError, graph_error, json_response

TRANSPORT_KEY = "filmroll.transport"


async def cdn(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    name = request.path_params["name"]
    request.state.call = ("cdn", None, None)
    cut: float | None = None
    try:
        await sandbox.traffic.gate("cdn", None)
    except CutShort as exc:
        cut = exc.keep
    try:
        sandbox.cdn.verify(name, request.query_params.get("oh"), request.query_params.get("oe"), sandbox.now())
    except CdnError as exc:
        return PlainTextResponse(exc.text, exc.status)
    headers = {"Cache-Control": "max-age=1209600, no-transform", "Access-Control-Allow-Origin": "*"}
    body = sandbox.cdn.body(name, _picture_size(sandbox, name))
    kind = "video/mp4" if name.endswith(".mp4") else "image/jpeg"
    if cut is not None:
        return _CutShortResponse(body, cut, request.scope.get("extensions", {}).get(TRANSPORT_KEY), headers, kind)
    return Response(body, headers=headers, media_type=kind)


class _CutShortResponse(Response):
    """Announces the whole body's length, sends ``keep`` of it, then drops the connection."""

    def __init__(self, body: bytes, keep: float, transport: Any, headers: dict[str, str], kind: str) -> None:
        super().__init__(body, headers=headers, media_type=kind)
        self.keep = keep
        self.transport = transport

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: int(len(self.body) * self.keep)],
                    "more_body": True})
        if self.transport is not None:
            self.transport.abort()


def _picture_size(sandbox: Sandbox, name: str) -> tuple[int, int]:
    """``{id}_profile.jpg``, or ``{media or child id}_{n|poster}.jpg``: the size of that post's pictures."""
    object_id, _, kind = name.partition("_")
    if kind == "profile.jpg":
        return PROFILE_SIZE
    media = sandbox.world.media(object_id)
    if media is None and (child := sandbox.world.child(object_id)) is not None:
        media = sandbox.world.media(child.parent_id)
    if media is None:  # deleted since: the CDN still serves what the URL signed
        return size_for(object_id, reel=False)
    return size_for(media.id, reel=media.product_type == "REELS")


async def _wire_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WireError)
    return exc.response


async def _control_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, control.ControlError)
    return json_response({"error": str(exc)}, exc.status)


async def _reset(request: Request, exc: Exception) -> Response:
    transport = request.scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return Response(status_code=500)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A sandbox bug must still look like Instagram's own internal error, and be visible in the call log.
    return graph_error("An unexpected error has occurred. Please retry your request later.", 2, status=500,
                       is_transient=True)


class CallRecorder:
    """Logs every Instagram-surface call with its outcome; the control API is not logged."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        started = time.time()
        sandbox_time = self.sandbox.now()
        scope.setdefault("state", {})
        status = 0
        error_body = bytearray()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400 and len(error_body) < 4096:
                error_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            call = scope["state"].get("call") or ("unknown", None, None)
            endpoint, account, app_id = call
            self.sandbox.traffic.record(
                started=started, ended=time.time(), sandbox_time=sandbox_time, method=scope["method"],
                endpoint=endpoint, account=account, app_id=app_id, status=status,
                outcome=_outcome(status, bytes(error_body)),
            )


def _outcome(status: int, body: bytes) -> str:
    if status == 0 or (status == 500 and not body):
        return "reset"
    if status < 400:
        return "ok"
    try:
        data: Any = json.loads(body)
    except ValueError:
        return f"http {status}"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        sub = error.get("error_subcode")
        return f"error {error.get('code')}" + (f"/{sub}" if sub else "")
    if isinstance(data, dict) and "error_message" in data:
        return f"error {data.get('code')}: {str(data['error_message'])[:60]}"
    return f"http {status}"


ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
# The token endpoints answer every method (with Instagram's error for the wrong ones), HEAD aside.
TOKEN_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


def host_tables() -> dict[str, list[Route]]:
    """Each emulated host's own routes, in matching order (a catch-all last)."""
    return {
        "www.instagram.com": [Route("/oauth/authorize", oauth.authorize, methods=["GET", "POST"])],
        "api.instagram.com": [Route("/oauth/access_token", oauth.exchange_code, methods=TOKEN_METHODS)],
        "scontent.cdninstagram.com": [Route(PATH_PREFIX + "{name}", cdn, methods=["GET", "HEAD"])],
        "graph.instagram.com": [
            Route("/access_token", oauth.exchange_long_lived, methods=TOKEN_METHODS),
            Route("/refresh_access_token", oauth.refresh, methods=TOKEN_METHODS),
            Route("/{path:path}", graph.dispatch, methods=ANY_METHOD),
        ],
        "www.facebook.com": [Route("/{version}/dialog/oauth", facebook.dialog, methods=["GET", "POST"]),
                             Route("/dialog/oauth", facebook.dialog, methods=["GET", "POST"])],
        "graph.facebook.com": [Route("/{path:path}", facebook_graph.dispatch, methods=ANY_METHOD)],
    }


def create_app(config: SandboxConfig | None = None) -> Starlette:
    sandbox = Sandbox(config or SandboxConfig())
    control_routes = [
        *control.routes,
        *delivery.routes,
        *facebook_control.routes,
        Route("/{rest:path}", control.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    tables = host_tables()
    # At the root, Instagram's hosts in an order where no route shadows another: the Graph catch-all last. Its
    # surface comes before the control API: a Graph read must not be matched against every control route on its way.
    at_root = [route for name in ("www.instagram.com", "api.instagram.com", "scontent.cdninstagram.com")
               for route in tables[name]]
    graph_routes = tables["graph.instagram.com"]
    routes = [
        *at_root, *graph_routes[:-1],
        Route("/_sandbox", control.summary, methods=["GET"]),
        Mount("/_sandbox", routes=control_routes),
        *(Mount(f"/{name}", routes=table) for name, table in tables.items()),
        graph_routes[-1],
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            WireError: _wire_error,
            control.ControlError: _control_error,
            ConnectionReset: _reset,
            Exception: _unexpected,
        },
    )
    app.state.sandbox = sandbox
    app.state.templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    app.add_middleware(CallRecorder, sandbox=sandbox)
    return app
