"""The public mount: what anyone on the internet may fetch without signing in (feeds, content-addressed media, the
widget, Meta's callbacks, health). Empty today but for health; its routes render errors as problem+json, may be
cached, and carry the public audience's headers (``web/security.py``)."""

from __future__ import annotations

from fastapi import APIRouter

from filmroll.web import health
from filmroll.web.rendering import Audience, route_class


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.PUBLIC))
    routes.add_api_route("/healthz", health.healthz, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/readyz", health.readyz, methods=["GET"], include_in_schema=False)
    return routes
