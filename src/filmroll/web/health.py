"""``/healthz`` (the process is alive) and ``/readyz`` (it can do its job) for load balancers and orchestrators:
JSON, never cached, no login: they say nothing a stranger could use. And ``/metrics`` for Prometheus
(``service/metrics.py``): from this machine without a key, from anywhere else with a management API key
(``Authorization: Bearer flr_…``, either scope). Mounted on the public router."""

from __future__ import annotations

import ipaddress

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from filmroll.runtime import Runtime
from filmroll.service.health import readiness
from filmroll.service.metrics import CONTENT_TYPE, Metrics
from filmroll.web.api_auth import bearer

NO_STORE = {"Cache-Control": "no-store"}


async def healthz() -> JSONResponse:
    return JSONResponse({"status": "alive"}, headers=NO_STORE)


async def metrics(request: Request) -> Response:
    if not _local(request):
        key = bearer(request)
        if key is None or await request.app.state.api.state.keys.check(key) is None:
            return JSONResponse({"error": {"code": "unauthorized", "message": "send a management API key "
                                           "(Authorization: Bearer flr_…), or scrape from this machine"}},
                                status_code=401, headers={**NO_STORE, "WWW-Authenticate": "Bearer"})
    exporter: Metrics = request.app.state.metrics
    return Response(await exporter.render(), media_type=CONTENT_TYPE, headers=NO_STORE)


def _local(request: Request) -> bool:
    """Straight from this machine: a loopback peer, and no proxy in between (a proxy on this machine would make
    every client look local; one that forwards says so)."""
    peer = request.client.host if request.client else ""
    forwarded = any(name in request.headers for name in ("x-forwarded-for", "forwarded", "x-real-ip"))
    try:
        return ipaddress.ip_address(peer).is_loopback and not forwarded
    except ValueError:
        return False


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    worker_ok = runtime.health.ok if request.app.state.embedded_worker else None
    checks = await readiness(runtime.database, runtime.vault, worker_ok=worker_ok)
    ready = all(c.ok for c in checks)
    body = {"status": "ready" if ready else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)
