"""The servers bench/feeds.py compares, one per process:

    python bench/feed_servers.py bare|raw|rsgi|filmroll uvicorn|granian PORT [BODY_FILE]

``bare`` is a Starlette app that answers the published feed's bytes from memory with the same headers (the
baseline: what any framework on that server can do at best); ``raw`` answers them with no framework at all (two
ASGI messages: the server's own floor); ``rsgi`` the same through Granian's own interface (Granian only);
``filmroll`` is ``create_app`` as ``filmroll serve`` builds it (no worker; the collector frozen after start-up
unless BENCH_GC_FREEZE=0), configured from the FILMROLL_* environment bench/feeds.py sets.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _published() -> tuple[bytes, str, dict[str, str]]:
    """The published feed's bytes, their ETag and the headers filmroll answers them with (every baseline app's)."""
    body = open(os.environ["BENCH_BODY_FILE"], "rb").read()  # noqa: SIM115
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return body, etag, {"Cache-Control": "public, max-age=60, stale-while-revalidate=86400, stale-if-error=604800",
                        "ETag": etag, "Access-Control-Allow-Origin": "*", "Vary": "Accept-Encoding"}


def bare_app() -> Starlette:
    body, etag, headers = _published()

    async def feed(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return Starlette(routes=[Route("/feeds/{slug}.json", feed)])


def raw_app():  # type: ignore[no-untyped-def]
    body, etag, headers = _published()
    common = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    full = [*common, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    tag = etag.encode()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        fresh = dict(scope["headers"]).get(b"if-none-match") == tag
        await send({"type": "http.response.start", "status": 304 if fresh else 200,
                    "headers": common if fresh else full})
        await send({"type": "http.response.body", "body": b"" if fresh else body})

    return app


def rsgi_app():  # type: ignore[no-untyped-def]
    """Granian's own interface (RSGI): one call answers, no ASGI messages. Granian only."""
    body, etag, headers = _published()
    common = list(headers.items())
    full = [*common, ("content-type", "application/json"), ("content-length", str(len(body)))]

    async def app(scope, proto):  # type: ignore[no-untyped-def]
        if scope.headers.get("if-none-match") == etag:
            proto.response_empty(304, common)
        else:
            proto.response_bytes(200, full, body)

    return app


def filmroll_app():  # type: ignore[no-untyped-def]
    from filmroll.settings import Settings
    from filmroll.web.app import create_app

    return create_app(Settings(), upgrade=False, worker=False, freeze_gc=os.environ.get("BENCH_GC_FREEZE") != "0")


def main() -> None:
    kind, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        os.environ["BENCH_BODY_FILE"] = sys.argv[4]
    factory = {"bare": "bare_app", "raw": "raw_app", "rsgi": "rsgi_app", "filmroll": "filmroll_app"}[kind]
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(f"feed_servers:{factory}", factory=True, host="127.0.0.1", port=port, access_log=False,
                    log_level="warning", http="httptools", loop="uvloop", backlog=4096)
    else:
        from granian import Granian
        from granian.constants import Interfaces

        extra = json.loads(os.environ.get("BENCH_GRANIAN_OPTIONS", "{}"))  # e.g. {"task_impl": "rust"}
        Granian(f"feed_servers:{factory}", factory=True, address="127.0.0.1", port=port,
                interface=Interfaces.RSGI if kind == "rsgi" else Interfaces.ASGI,
                workers=1, backlog=4096, log_access=False, log_level="warning", **extra).serve()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
