"""An account's numbers on its admin page: the follower chart, the recent posts' engagement beside their pictures,
the token's life on a timeline and the sync lag; and each chart's numbers as a CSV download
(``/accounts/{id}/followers.csv``, ``/accounts/{id}/engagement.csv``). Drawn by ``web/charts.py``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from filmroll import errors
from filmroll.service import insights as insight_service
from filmroll.service.accounts import AccountView
from filmroll.web import charts
from filmroll.web.deps import CurrentAdmin, RowId, Web
from filmroll.web.rendering import Audience, problem, route_class

DAYS = 90


def router() -> APIRouter:
    routes = APIRouter(route_class=route_class(Audience.ADMIN), include_in_schema=False)
    routes.add_api_route("/accounts/{account_id}/{chart}.csv", chart_csv, methods=["GET"])
    return routes


def context(found: insight_service.Insights, view: AccountView, now: datetime) -> dict[str, Any]:
    """What account.html draws: the charts, each with its numbers."""
    days = [d.day for d in found.days]
    followers = charts.line_chart(days, [d.followers_count for d in found.days],
                                  partial_last=found.days[-1].partial, what="followers")
    rated = [p.engagement_rate for p in found.posts if p.engagement_rate is not None]
    began = view.refreshed_at or view.token_issued_at
    token = charts.timeline(now, began or now, [
        (began, "refreshed" if view.refreshed_at else "issued", "start"),
        (view.next_refresh_at, "refresh due", "refresh"), (view.token_expires_at, "token expires", "expiry"),
        (view.data_access_expires_at, "data access ends", "data-access")])
    return {"insights": found, "followers_chart": followers, "best_rate": max(rated, default=0.0),
            "token_timeline": token, "view": view,
            "sync_lag": None if view.last_synced_at is None else duration(now - view.last_synced_at)}


def duration(span: timedelta) -> str:
    """"4 min", "2 h 5 min", "3 days": how long, as a person says it."""
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} days"


async def history(web: Web, account_id: int) -> insight_service.Insights:
    return await insight_service.history(web.database, str(account_id), days=DAYS)


_CSV = {"followers": insight_service.days_csv, "engagement": insight_service.posts_csv}


async def chart_csv(request: Request, web: Web, admin: CurrentAdmin, account_id: RowId, chart: str) -> Response:
    """A chart's numbers as CSV: an empty cell is a day without a snapshot, or a metric Instagram did not give."""
    if chart not in _CSV:
        return problem(request, 404, "Not found", "There is no such chart.", "not_found")
    try:
        found = await history(web, account_id)
    except errors.AccountNotFoundError:
        return problem(request, 404, "Not found", "There is no such account.", "not_found")
    return Response(_CSV[chart](found), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{found.username or account_id}-{chart}.csv"'})
