"""``/healthz`` (the process is alive) and ``/readyz`` (it can do its job) for load balancers and orchestrators.
JSON, never cached, no login: they say nothing a stranger could use. Mounted on the public router."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from filmroll.runtime import Runtime
from filmroll.service.health import readiness

NO_STORE = {"Cache-Control": "no-store"}


async def healthz() -> JSONResponse:
    return JSONResponse({"status": "alive"}, headers=NO_STORE)


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    worker_ok = runtime.health.ok if request.app.state.embedded_worker else None
    checks = await readiness(runtime.database, runtime.vault, worker_ok=worker_ok)
    ready = all(c.ok for c in checks)
    body = {"status": "ready" if ready else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)
