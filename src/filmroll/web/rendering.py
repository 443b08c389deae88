"""How each audience's responses look, and errors among them.

    admin    the signed-in UI: HTML pages, never cached, never framed
    owner    an account owner's reconnect pages and the OAuth callback: HTML, like admin, but no admin chrome
    public   feeds, media, the widget, Meta's callbacks, health: cacheable where the handler says, embeddable,
             errors as RFC 9457 ``application/problem+json``

A route's audience comes from the router it is on (:func:`route_class`); a path no route matched takes the
audience of its prefix, so a mistyped feed URL answers problem+json and a mistyped admin URL a real 404 page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, MutableMapping
from enum import StrEnum
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute

AUDIENCE_KEY = "filmroll.audience"
STYLESHEET_PATH = "/static/filmroll.css"
PUBLIC_PREFIXES = ("/feeds", "/media", "/widget.js", "/meta", "/api", "/healthz", "/readyz", "/metrics")


class Audience(StrEnum):
    ADMIN = "admin"
    OWNER = "owner"
    PUBLIC = "public"


def route_class(audience: Audience) -> type[APIRoute]:
    """An APIRoute that marks its requests with ``audience`` (read by the error handlers and the headers)."""

    class AudienceRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                request.scope[AUDIENCE_KEY] = audience
                return await handler(request)

            return handle

    return AudienceRoute


def audience_of(scope: MutableMapping[str, Any]) -> Audience:
    marked = scope.get(AUDIENCE_KEY)
    if marked is not None:
        return Audience(marked)
    path = scope.get("path", "")
    return Audience.PUBLIC if path.startswith(PUBLIC_PREFIXES) else Audience.ADMIN


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("admin", None)
    response = request.app.state.web.templates.TemplateResponse(
        request, template, {"stylesheet": STYLESHEET_PATH, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def problem(request: Request, status: int, title: str, message: str, code: str) -> Response:
    """An error in the request's audience's own form: a page for people, problem+json for programs."""
    audience = audience_of(request.scope)
    if audience is Audience.PUBLIC:
        return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": message,
                             "code": code}, status_code=status, media_type="application/problem+json",
                            headers={"Cache-Control": "no-store"})
    return page(request, "problem.html", status, title=title, message=message, code=code,
                owner=audience is Audience.OWNER)
