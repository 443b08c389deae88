"""The admin UI's API keys page (``/admin/api-keys``): the keys (never the keys themselves), a form to make one
(shown once, with a copy button), and a revoke button per key. The same use-cases as `filmroll api-keys`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from filmroll import errors
from filmroll.service import api_keys
from filmroll.web.deps import CheckedForm, CurrentAdmin, RowId, Web, session_id
from filmroll.web.rendering import Audience, page, problem, route_class


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.ADMIN), include_in_schema=False)
    routes.add_api_route("/admin/api-keys", keys_page, methods=["GET"])
    routes.add_api_route("/admin/api-keys", create, methods=["POST"])
    routes.add_api_route("/admin/api-keys/{key_id}/revoke", revoke, methods=["POST"])
    return routes


async def keys_page(request: Request, web: Web, admin: CurrentAdmin) -> Response:
    return page(request, "api_keys.html", admin=admin, keys=await api_keys.listing(web.database), made=None,
                csrf_token=web.csrf.token(session_id(request, web) or ""))


async def create(request: Request, web: Web, form: CheckedForm) -> Response:
    try:
        view, key = await api_keys.create(web.database, form.fields.get("name", "").strip(),
                                          form.fields.get("scope", ""), actor=f"admin:{form.admin.username}")
    except errors.InputError as exc:
        return problem(request, 400, "No key made", exc.message, "invalid")
    # Shown on this answer only (never stored, never in a URL): a reload asks to post the form again.
    return page(request, "api_keys.html", admin=form.admin, keys=await api_keys.listing(web.database),
                made=(view, key), csrf_token=web.csrf.token(session_id(request, web) or ""))


async def revoke(request: Request, web: Web, form: CheckedForm, key_id: RowId) -> Response:
    try:
        await api_keys.revoke(web.database, str(key_id), actor=f"admin:{form.admin.username}")
    except errors.ApiKeyNotFoundError as exc:
        return problem(request, 404, "Not found", exc.message, "not_found")
    return RedirectResponse("/admin/api-keys", status_code=303)
