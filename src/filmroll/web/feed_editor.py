"""The admin UI's feeds: the list, the editor with its live preview, and hide and pin on each post.

Admin pages live under ``/admin/feeds`` because ``/feeds/`` is the public mount (a reverse proxy or CDN can send
all of it elsewhere). The preview is a page of its own, framed by the editor: what the feed would show with the
form's settings, saved or not (``service.feeds.preview``), drawn by the real widget (``/widget.js``) from the
draft's first page (inlined in the page as JSON: no request, no cookie needed) in the layout, columns and header
chosen, with the fragment websites get inside it for a browser without JavaScript. With JavaScript it follows the
form as it is edited (``feed-editor.js``); without, it shows the saved settings.
A saved change is served by this process at once (its feed cache polls right away), by the others within
``FILMROLL_FEEDS__POLL_SECONDS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from filmroll import errors
from filmroll.service import accounts as account_service
from filmroll.service import feeds as feed_service
from filmroll.service import media as media_service
from filmroll.service.feed_documents import Documents
from filmroll.service.feeds import MEDIA_TYPES, FeedInfo, FeedSpec
from filmroll.store.tables import Admin
from filmroll.web.deps import CheckedEditorForm, CheckedForm, CurrentAdmin, Web, WebContext, session_id
from filmroll.web.rendering import Audience, page, problem, route_class

SCRIPT_PATH = "/static/feed-editor.js"
SCRIPT = Path(__file__).parent / "templates" / "feed-editor.js"
NO_FEED = "-"  # the preview of a feed not saved yet (never a slug: slugs do not start with '-')
POSTS_SHOWN = 120  # the sources' newest posts the editor lists for hide and pin
_POST_ID = re.compile(r"[0-9A-Za-z_]{1,64}")
_PREVIEW_CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
                "script-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
LAYOUTS = ("grid", "carousel", "masonry", "list")  # the widget's (widget.js)
HEADERS = ("full", "compact", "none")
DISPLAY = ("layout", "columns", "header")  # how the preview draws the feed: the widget's attributes, not settings
_POST_ACTIONS = {"hide": ("hidden", True), "show": ("hidden", False), "pin": ("pinned", True),
                 "unpin": ("pinned", False)}


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.ADMIN), include_in_schema=False)
    routes.add_api_route(SCRIPT_PATH, script, methods=["GET"])
    routes.add_api_route("/admin/feeds", feeds_page, methods=["GET"])
    routes.add_api_route("/admin/feeds/new", new_feed_form, methods=["GET"])
    routes.add_api_route("/admin/feeds/new", create_feed, methods=["POST"])
    routes.add_api_route("/admin/feeds/{slug}/edit", editor, methods=["GET"])
    routes.add_api_route("/admin/feeds/{slug}/edit", save_feed, methods=["POST"])
    routes.add_api_route("/admin/feeds/{slug}/delete", delete_feed, methods=["POST"])
    routes.add_api_route("/admin/feeds/{slug}/posts/{ig_media_id}", post_action, methods=["POST"])
    routes.add_api_route("/admin/feeds/{slug}/preview", preview, methods=["GET"])
    return routes


async def script(request: Request) -> Response:
    return Response(request.app.state.editor_script, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "max-age=3600"})


async def feeds_page(request: Request, web: Web, admin: CurrentAdmin) -> Response:
    feeds = await feed_service.list_feeds(web.database)
    return page(request, "feeds.html", admin=admin, feeds=feeds, base=_public_base(request, web),
                csrf_token=web.csrf.token(session_id(request, web) or ""))


async def new_feed_form(request: Request, web: Web, admin: CurrentAdmin) -> Response:
    return await _editor(request, web, admin, None, _fields_of(None))


async def create_feed(request: Request, web: Web, form: CheckedEditorForm) -> Response:
    try:
        info = await feed_service.create(web.database, spec_from(form.values), by=f"admin:{form.admin.username}")
    except (errors.FeedSettingError, errors.AccountNotFoundError) as exc:
        return await _editor(request, web, form.admin, None, form.values, error=exc.message, status=400)
    await web.feeds.poll()
    return RedirectResponse(f"/admin/feeds/{info.slug}/edit?saved=1", status_code=303)


async def editor(request: Request, web: Web, admin: CurrentAdmin, slug: str) -> Response:
    info = await feed_service.show(web.database, slug)
    return await _editor(request, web, admin, info, _fields_of(info), saved="saved" in request.query_params)


async def save_feed(request: Request, web: Web, form: CheckedEditorForm, slug: str) -> Response:
    info = await feed_service.show(web.database, slug)
    change = spec_from(form.values, saved=info.spec())
    try:
        info = await feed_service.edit(web.database, slug, {
            name: getattr(change, name) for name in FeedSpec.__dataclass_fields__ if name not in ("hidden", "pinned")},
            by=f"admin:{form.admin.username}")
    except (errors.FeedSettingError, errors.AccountNotFoundError) as exc:
        return await _editor(request, web, form.admin, info, form.values, error=exc.message, status=400)
    await web.feeds.poll()
    return RedirectResponse(f"/admin/feeds/{info.slug}/edit?saved=1", status_code=303)


async def delete_feed(request: Request, web: Web, form: CheckedForm, slug: str) -> Response:
    info = await feed_service.show(web.database, slug)
    if form.fields.get("confirm") != "yes":
        return await _editor(request, web, form.admin, info, _fields_of(info), status=400,
                             error="Tick “Yes, delete this feed” to delete it; nothing was deleted.")
    await feed_service.delete(web.database, slug)
    await web.feeds.poll()
    return RedirectResponse("/admin/feeds", status_code=303)


async def post_action(request: Request, web: Web, form: CheckedForm, slug: str, ig_media_id: str) -> Response:
    """*Hide*, *Show*, *Pin* or *Unpin* one post of the feed's accounts."""
    info = await feed_service.show(web.database, slug)
    action = _POST_ACTIONS.get(form.fields.get("action", ""))
    known = {p.ig_media_id for p in await _candidates(web, info)} | set(info.hidden) | set(info.pinned)
    if action is None or not _POST_ID.fullmatch(ig_media_id) or ig_media_id not in known:
        return problem(request, 404, "Not found", "That post is not one of this feed's accounts' posts.",
                       "not_found")
    which, on = action
    if which == "hidden":
        await feed_service.hide(web.database, slug, ig_media_id, hidden=on, by=f"admin:{form.admin.username}")
    else:
        await feed_service.pin(web.database, slug, ig_media_id, pinned=on, by=f"admin:{form.admin.username}")
    await web.feeds.poll()
    return RedirectResponse(f"/admin/feeds/{slug}/edit#post-{ig_media_id}", status_code=303)


async def preview(request: Request, web: Web, admin: CurrentAdmin, slug: str) -> Response:
    """The feed's first page as websites would get it, for the settings in the query (``draft=1``) or as saved,
    drawn by the widget as the query's ``layout``, ``columns`` and ``header`` say."""
    try:
        documents = await _preview_documents(request, web, slug)
    except (errors.FeedSettingError, errors.AccountNotFoundError) as exc:
        return _preview_page(request, 422, message=exc.message)
    fragment = documents.html[None].decode()
    shown = fragment.count('class="filmroll-post"')
    # The widget reads the first page from the page itself; the pages after it are not rendered for a draft.
    first = json.dumps({**json.loads(documents.pages[None]), "next": None}, ensure_ascii=True).replace("<", "\\u003c")
    return _preview_page(request, 200, fragment=fragment, shown=shown, pages=len(documents.pages), first=first,
                         display=display_of(request.query_params))


async def _preview_documents(request: Request, web: WebContext, slug: str) -> Documents:
    saved = None if slug == NO_FEED else (await feed_service.show(web.database, slug)).spec()
    query = {name: request.query_params.getlist(name) for name in request.query_params if name not in DISPLAY}
    if "draft" in query:
        if not query.get("account") and not (saved and saved.sources):
            raise errors.FeedSettingError("Choose at least one account to see the feed's posts.")
        spec = spec_from(query, saved=saved)
        spec = replace(spec, title=spec.title.strip() or "Untitled feed")  # the title is not shown here
    elif saved is not None:
        spec = saved
    else:
        raise errors.FeedSettingError("Choose at least one account to see the feed's posts.")
    return await feed_service.preview(web.database, spec, web.feeds.settings)


def display_of(query: Mapping[str, str]) -> dict[str, str]:
    """The widget's layout, columns and header from a query, each a known value or its default."""
    layout, columns, header = (query.get(name, "") for name in DISPLAY)
    return {"layout": layout if layout in LAYOUTS else "grid",
            "columns": columns if columns in {str(n) for n in range(1, 7)} else "3",
            "header": header if header in HEADERS else "full"}


def _preview_page(request: Request, status: int, **context: Any) -> Response:
    context.setdefault("fragment", None)
    context.setdefault("message", None)
    context.setdefault("display", display_of({}))
    response = page(request, "feed_preview.html", status, **context)
    response.headers["Content-Security-Policy"] = _PREVIEW_CSP  # framed by the editor, nowhere else
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def spec_from(values: Mapping[str, Sequence[str]], *, saved: FeedSpec | None = None) -> FeedSpec:
    """A feed's settings from the editor's fields (a form or a preview's query). Hidden and pinned posts are not
    fields: they are kept from the saved feed."""

    def one(name: str, default: str = "") -> str:
        found = values.get(name)
        return found[-1] if found else default

    title = one("title")
    limit = one("post_limit", "12").strip()
    if not limit.isascii() or not limit.isdigit() or len(limit) > 4:
        raise errors.FeedSettingError(f"the post limit must be a whole number from 1 to {feed_service.MAX_LIMIT}")
    spec = FeedSpec(title, one("slug").strip() or feed_service.slug_for(title), tuple(values.get("account", ())),
                    int(limit), tuple(values.get("media_type", ())), one("reels") == "on",
                    _words(one("include_hashtags")), _words(one("exclude_hashtags")),
                    _words(one("allowed_origins", "*")) or ("*",))
    if saved is not None:  # the other sources (hashtags, profiles) are not fields either: kept as saved
        spec = replace(spec, hidden=saved.hidden, pinned=saved.pinned, sources=saved.sources,
                       moderation=saved.moderation)
    if "moderation" in values:
        spec = replace(spec, moderation=one("moderation") or None)
    if "block_words" in values:
        spec = replace(spec, block_words=tuple(w for w in re.split(r"[\n,]+", one("block_words")) if w.strip()))
    elif saved is not None:
        spec = replace(spec, block_words=saved.block_words)
    return spec


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in re.split(r"[\s,]+", text) if w)


def _fields_of(info: FeedInfo | None) -> dict[str, list[str]]:
    """The editor's fields for a saved feed (or a new one's defaults), as a form would send them."""
    if info is None:
        return {"title": [""], "slug": [""], "account": [], "post_limit": ["12"], "media_type": list(MEDIA_TYPES),
                "reels": ["on"], "include_hashtags": [""], "exclude_hashtags": [""], "allowed_origins": ["*"]}
    return {"title": [info.title], "slug": [info.slug], "account": [str(a) for a in info.account_ids],
            "post_limit": [str(info.post_limit)], "media_type": info.media_types, "reels": ["on"] if info.reels else [],
            "include_hashtags": [" ".join("#" + t for t in info.include_hashtags)],
            "exclude_hashtags": [" ".join("#" + t for t in info.exclude_hashtags)],
            "allowed_origins": [" ".join(info.allowed_origins)], "moderation": [info.moderation],
            "block_words": [", ".join(info.block_words)]}


async def _candidates(web: WebContext, info: FeedInfo) -> list[media_service.PostView]:
    """The newest posts of the feed's accounts, for hide and pin."""
    found = []
    for account_id in info.account_ids:
        found += (await media_service.posts(web.database, str(account_id), limit=POSTS_SHOWN))[1]
    return sorted(found, key=lambda p: p.timestamp.timestamp() if p.timestamp else 0, reverse=True)[:POSTS_SHOWN]


async def _editor(request: Request, web: WebContext, admin: Admin, info: FeedInfo | None,
                  fields: Mapping[str, Sequence[str]], *, error: str | None = None, saved: bool = False,
                  status: int = 200) -> Response:
    accounts = [a for a in await account_service.listing(web.database) if a.status != "disconnected"
                or str(a.id) in fields.get("account", ())]
    posts = await _candidates(web, info) if info else []
    preview_query = urlencode({"draft": "1", **{k: v for k, v in fields.items() if k != "csrf_token"}}, doseq=True)
    base = _public_base(request, web)
    return page(request, "feed_editor.html", status, admin=admin, feed=info, fields=fields, accounts=accounts,
                media_types=MEDIA_TYPES, layouts=LAYOUTS, headers=HEADERS, display=display_of(request.query_params),
                posts=posts, error=error, saved=saved, base=base, script=SCRIPT_PATH,
                preview_url=f"/admin/feeds/{info.slug if info else NO_FEED}/preview?"
                            + ("" if info and status == 200 else preview_query + "&")
                            + urlencode(display_of(request.query_params)),
                hidden=set(info.hidden) if info else set(), pinned=list(info.pinned) if info else [],
                csrf_token=web.csrf.token(session_id(request, web) or ""))


def _public_base(request: Request, web: WebContext) -> str:
    """Where websites reach the feeds: the configured base or public URL, else this server as the browser sees it."""
    return (web.feeds.base_url or web.public_url or str(request.base_url)).rstrip("/")
