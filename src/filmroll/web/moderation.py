"""The admin UI's moderation queue: a feed's posts from hashtags and other profiles as pictures, approved or
rejected by click or by keyboard (arrows move, space selects, ``a`` approves, ``r`` rejects: the selected posts, or
the one in focus), several at once, with who decided and when. Without JavaScript each tile's buttons post a form.

A decision moves the feed's ``changed_at``: this process serves it at once, the worker republishes it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from filmroll import errors
from filmroll.service import moderation
from filmroll.vocabulary import PostState
from filmroll.web.deps import CheckedEditorForm, CurrentAdmin, Web, session_id
from filmroll.web.rendering import Audience, page, problem, route_class

SCRIPT_PATH = "/static/moderation.js"
_SCRIPT = (Path(__file__).parent / "templates" / "moderation.js").read_bytes
_STATUSES = {"pending": PostState.PENDING, "approved": PostState.APPROVED, "rejected": PostState.REJECTED,
             "all": None}


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.ADMIN), include_in_schema=False)
    routes.add_api_route(SCRIPT_PATH, script, methods=["GET"])
    routes.add_api_route("/admin/feeds/{slug}/moderation", queue_page, methods=["GET"])
    routes.add_api_route("/admin/feeds/{slug}/moderation", decide, methods=["POST"])
    return routes


async def script() -> Response:
    return Response(_SCRIPT(), media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "max-age=3600"})


async def queue_page(request: Request, web: Web, admin: CurrentAdmin, slug: str) -> Response:
    shown = request.query_params.get("status", "pending")
    if shown not in _STATUSES:
        shown = "pending"
    try:
        items = await moderation.queue(web.database, slug, _STATUSES[shown])
    except errors.FeedNotFoundError as exc:
        return problem(request, 404, "Not found", exc.message, "not_found")
    return page(request, "moderation.html", admin=admin, slug=slug, items=items, shown=shown,
                statuses=list(_STATUSES), csrf_token=web.csrf.token(session_id(request, web) or ""))


async def decide(request: Request, web: Web, form: CheckedEditorForm, slug: str) -> Response:
    decision = {"approve": PostState.APPROVED, "reject": PostState.REJECTED}.get(form.fields.get("decision", ""))
    posts = form.values.get("post", [])
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        if decision is None:
            raise errors.InputError("choose Approve or Reject")
        changed = await moderation.decide(web.database, slug, posts, decision, by=form.admin.username)
    except (errors.InputError, errors.FeedNotFoundError) as exc:
        if wants_json:
            return JSONResponse({"error": {"code": "invalid", "message": exc.message}}, status_code=400)
        return problem(request, 400, "Nothing was changed", exc.message, "invalid")
    await web.feeds.poll()
    if wants_json:
        return JSONResponse({"ok": True, "status": decision.value, "posts": posts, "changed": changed,
                             "decided_by": form.admin.username})
    return RedirectResponse(f"/admin/feeds/{slug}/moderation?status={form.fields.get('shown', 'pending')}",
                            status_code=303)
