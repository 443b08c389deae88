"""The management API, ``/api/v1``: what the CLI and the admin pages do, for an agency's own backend.

An application of its own, mounted by ``web/app.py``, with its own OpenAPI 3.1 document at
``/api/v1/openapi.json`` (the public feed schema stays at ``/openapi.json``). Every request carries
``Authorization: Bearer flr_…`` (``service/api_keys.py``): a missing, wrong or revoked key is 401, a ``read`` key
asking to change something 403, both before anything is read or changed. Each key may make
``FILMROLL_API__REQUESTS_PER_MINUTE`` requests a minute; every answer says how many are left (``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset``), and one over is 429.

Errors have one shape, ``{"error": {"code", "message"}}``, ``code`` being the CLI's exit-code vocabulary
(``exits.py``: ``not_found``, ``invalid``, ``busy``, ``needs_reauth``, ``throttled``…) or ``unauthorized``,
``forbidden``, ``rate_limited``. The same rules and leases hold as for the CLI: a refresh while a worker holds the
token's lease is 409 ``busy``, and no second refresh is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from filmroll import errors, exits
from filmroll.service.api_keys import KeyChecker
from filmroll.web import api_routes
from filmroll.web.api_auth import ApiRefused, RateLimiter
from filmroll.web.deps import WebContext

_STATUS = {exits.ExitStatus.NOT_FOUND: 404, exits.ExitStatus.INVALID: 422, exits.ExitStatus.BUSY: 409,
           exits.ExitStatus.NEEDS_REAUTH: 409, exits.ExitStatus.TOO_EARLY: 409, exits.ExitStatus.THROTTLED: 429,
           exits.ExitStatus.INSTAGRAM: 502, exits.ExitStatus.DATABASE: 503, exits.ExitStatus.STORAGE: 503,
           exits.ExitStatus.VAULT: 500, exits.ExitStatus.CONFIG: 500, exits.ExitStatus.ERROR: 500}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiRefused)
    return error(exc.status, exc.code, exc.message, {**getattr(request.state, "rate_headers", {}), **exc.headers})


async def _filmroll_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FilmrollError)
    status = exits.status_of(exc)
    headers = dict(getattr(request.state, "rate_headers", {}))
    if isinstance(exc, errors.RateLimitedError) and exc.retry_after:
        headers["Retry-After"] = str(int(exc.retry_after))
    return error(_STATUS.get(status, 500), status.name.lower(), exc.message, headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return error(422, "invalid", f"{where or 'the request'}: {first.get('msg', 'not a value filmroll takes')}",
                 getattr(request.state, "rate_headers", {}))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return error(exc.status_code, code, str(exc.detail), getattr(request.state, "rate_headers", {}))


def create_api(requests_per_minute: int) -> FastAPI:
    api = FastAPI(title="filmroll management API", version="1", openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None, redirect_slashes=False,
                  description=(__doc__ or "").split("\n\n", 1)[-1])
    api.state.limiter = RateLimiter(requests_per_minute)
    api.include_router(api_routes.router())
    for kind, handler in ((ApiRefused, _refused), (errors.FilmrollError, _filmroll_error),
                          (RequestValidationError, _invalid), (HTTPException, _http)):
        api.add_exception_handler(kind, handler)

    @api.middleware("http")
    async def rate_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in getattr(request.state, "rate_headers", {}).items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return api


def bind(api: FastAPI, web: WebContext) -> None:
    """Give the API the running app's context (its database, runtime), once the parent's lifespan has made it."""
    api.state.web = web
    api.state.keys = KeyChecker(web.database)

