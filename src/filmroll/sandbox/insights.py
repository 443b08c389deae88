"""Media and account insights with the current (2026) metric sets and Instagram's errors for the removed ones.

Values are deterministic functions of (object, metric, day) so two reads agree and history accumulates sensibly.
"""

from __future__ import annotations

import time
from typing import Any

from filmroll.sandbox.ids import mix64
from filmroll.sandbox.wire import WireError, graph_error
from filmroll.sandbox.world import Account, Media

# Instagram Login's name for the permission, and Facebook Login's
INSIGHTS_PERMISSIONS = frozenset({"instagram_business_manage_insights", "instagram_manage_insights"})
_ALL = frozenset({"FEED", "REELS", "STORY"})
MEDIA_METRICS: dict[str, frozenset[str]] = {
    "comments": frozenset({"FEED", "REELS"}),
    "likes": frozenset({"FEED", "REELS"}),
    "saved": frozenset({"FEED", "REELS"}),
    "shares": _ALL,
    "reach": _ALL,
    "views": _ALL,
    "total_interactions": _ALL,
    "reposts": _ALL,
    "follows": frozenset({"FEED", "STORY"}),
    "profile_visits": frozenset({"FEED", "STORY"}),
    "profile_activity": frozenset({"FEED", "STORY"}),
    "navigation": frozenset({"STORY"}),
    "replies": frozenset({"STORY"}),
    "link_clicks": frozenset({"STORY"}),
    "ig_reels_avg_watch_time": frozenset({"REELS"}),
    "ig_reels_video_view_total_time": frozenset({"REELS"}),
    "reels_skip_rate": frozenset({"REELS"}),
}
MEDIA_BREAKDOWNS = {"profile_activity": "action_type", "navigation": "story_navigation_action_type"}
REMOVED_MEDIA_METRICS = frozenset({
    "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count", "impressions", "video_views",
    "engagement", "exits", "taps_forward", "taps_back", "carousel_album_impressions", "carousel_album_reach",
    "carousel_album_engagement", "carousel_album_saved", "carousel_album_video_views",
})

# metric -> (periods, metric types, breakdowns)
ACCOUNT_METRICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "accounts_engaged": (("day",), ("total_value",), ()),
    "comments": (("day",), ("total_value",), ("media_product_type",)),
    "likes": (("day",), ("total_value",), ("media_product_type",)),
    "saves": (("day",), ("total_value",), ("media_product_type",)),
    "shares": (("day",), ("total_value",), ("media_product_type",)),
    "total_interactions": (("day",), ("total_value",), ("media_product_type",)),
    "follows_and_unfollows": (("day",), ("total_value",), ("follow_type",)),
    "profile_links_taps": (("day",), ("total_value",), ("contact_button_type",)),
    "reach": (("day",), ("total_value", "time_series"), ("media_product_type", "follow_type")),
    "replies": (("day",), ("total_value",), ()),
    "reposts": (("day",), ("total_value",), ()),
    "views": (("day",), ("total_value",), ("follower_type", "media_product_type")),
    "follower_count": (("day",), ("time_series",), ()),
    "engaged_audience_demographics": (("lifetime",), ("total_value",), ("age", "city", "country", "gender")),
    "follower_demographics": (("lifetime",), ("total_value",), ("age", "city", "country", "gender")),
}
REMOVED_ACCOUNT_METRICS = frozenset({
    "impressions", "email_contacts", "get_directions_clicks", "profile_views", "text_message_clicks",
    "website_clicks", "phone_call_clicks", "audience_gender_age", "audience_locale", "audience_country",
    "audience_city", "online_followers", "reached_audience_demographics",
})
_DIMENSIONS = {
    "action_type": ("BIO_LINK_CLICKED", "CALL", "DIRECTION", "EMAIL", "OTHER", "TEXT"),
    "story_navigation_action_type": ("SWIPE_FORWARD", "TAP_BACK", "TAP_EXIT", "TAP_FORWARD"),
    "media_product_type": ("AD", "FEED", "REELS", "STORY"),
    "follow_type": ("FOLLOWER", "NON_FOLLOWER", "UNKNOWN"),
    "follower_type": ("FOLLOWER", "NON_FOLLOWER"),
    "contact_button_type": ("BOOK_NOW", "CALL", "DIRECTION", "EMAIL", "INSTANT_EXPERIENCE", "TEXT", "UNDEFINED"),
    "age": ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("F", "M", "U"),
    "country": ("US", "GB", "DE", "FR", "BR", "IN", "JP"),
    "city": ("London, England", "Berlin, Germany", "Paris, Ile-de-France", "New York, New York"),
}


def _title(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def _metric_list(raw: str | None) -> list[str]:
    metrics = [m.strip() for m in (raw or "").split(",") if m.strip()]
    if not metrics:
        raise WireError(graph_error("(#100) The parameter metric is required", 100))
    return metrics


def _breakdown(dimension: str, total: int, salt: int) -> dict[str, Any]:
    values = _DIMENSIONS[dimension]
    results = [{"dimension_values": [v], "value": mix64(salt, i) % (total // len(values) + 2)}
               for i, v in enumerate(values)]
    return {"dimension_keys": [dimension], "results": results}


def media_insights(media: Media, params: dict[str, str], permissions: tuple[str, ...]) -> dict[str, Any]:
    if not INSIGHTS_PERMISSIONS.intersection(permissions):
        raise WireError(graph_error("(#10) Application does not have permission for this action", 10))
    metrics = _metric_list(params.get("metric"))
    period = params.get("period", "lifetime")
    if period != "lifetime":
        raise WireError(graph_error(f"(#100) Incompatible period for media insights: {period[:50]}", 100))
    for i, metric in enumerate(metrics):
        if metric in REMOVED_MEDIA_METRICS:
            raise WireError(graph_error(
                f"(#100) Starting from version 22 and above, the {metric} metric is no longer supported for "
                "the queried media. Please refer to the documentation at https://developers.facebook.com/docs/"
                "instagram-api/reference/ig-media/insights for a list of supported metrics.", 100))
        if metric not in MEDIA_METRICS:
            raise WireError(graph_error(
                f"(#100) metric[{i}] must be one of the following values: {', '.join(MEDIA_METRICS)}", 100))
        if media.product_type not in MEDIA_METRICS[metric]:
            raise WireError(graph_error(
                f"(#100) The Media Insights API does not support the {metric} metric for this media product type.",
                100))
    breakdown = params.get("breakdown")
    if breakdown and any(MEDIA_BREAKDOWNS.get(m) != breakdown for m in metrics):
        # Documented: mixing a breakdown with a metric that does not support it gives this generic error.
        raise WireError(graph_error("An unknown error has occurred.", 1, is_transient=False))
    if media.before_conversion:
        raise WireError(graph_error("(#10) Media Posted Before Business Account Conversion", 10, subcode=2108006))
    data = []
    for metric in metrics:
        value = media_value(media, metric)
        item: dict[str, Any] = {"name": metric, "period": "lifetime", "values": [{"value": value}],
                                "title": _title(metric), "description": f"The {_title(metric).lower()} of this media.",
                                "id": f"{media.id}/insights/{metric}/lifetime"}
        if breakdown:
            item["total_value"] = {"value": value, "breakdowns": [_breakdown(breakdown, value, int(media.id))]}
        data.append(item)
    return {"data": data}


def media_value(media: Any, metric: str) -> int:
    """A post's lifetime value of ``metric``, consistent with its counters as a real post's are: ``likes`` and
    ``comments`` are its public counts, ``reach`` a few times the people who engaged (so an engagement rate by
    reach lands in Instagram's usual 2-25 %), ``views`` at least the reach, saves and shares a share of the likes."""
    def share(low: float, high: float, salt: int) -> float:  # deterministic per post and metric
        return low + (high - low) * (mix64(int(media.id), salt) % 1000) / 999

    engaged = media.like_count + media.comments_count
    reach = max(1, round(engaged * share(4, 40, 1) + share(0, 30, 2)))
    known = {"likes": media.like_count, "comments": media.comments_count, "reach": reach,
             "views": round(reach * share(1.1, 2.6, 3)), "saved": round(media.like_count * share(0.01, 0.15, 4)),
             "shares": round(media.like_count * share(0.005, 0.08, 5))}
    if metric in known:
        return known[metric]
    if metric == "total_interactions":
        return sum(known[m] for m in ("likes", "comments", "saved", "shares"))
    return int(mix64(int(media.id), len(metric), ord(metric[0])) % (media.like_count * 3 + 50))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


def account_insights(account: Account, params: dict[str, str], permissions: tuple[str, ...],
                     now: float) -> dict[str, Any]:
    if not INSIGHTS_PERMISSIONS.intersection(permissions):
        raise WireError(graph_error("(#10) Application does not have permission for this action", 10))
    metrics = _metric_list(params.get("metric"))
    period = params.get("period")
    if not period:
        raise WireError(graph_error("(#100) The parameter period is required", 100))
    metric_type = params.get("metric_type", "time_series")
    breakdown = params.get("breakdown")
    try:
        until = int(params.get("until") or now)
        since = int(params.get("since") or until - 86_400)
    except ValueError:
        raise WireError(graph_error("(#100) since and until must be Unix timestamps", 100)) from None
    if until - since > 30 * 86_400:
        raise WireError(graph_error(
            "(#100) There cannot be more than 30 days (2592000 s) between since and until", 100))
    if since >= until:
        raise WireError(graph_error("(#100) since must be earlier than until", 100))
    for i, metric in enumerate(metrics):
        if metric in REMOVED_ACCOUNT_METRICS:
            raise WireError(graph_error(
                f"Starting from version 22 and above, the {metric} metric is no longer supported for the queried "
                "user. Please refer to the documentation at https://developers.facebook.com/docs/instagram-api/"
                "reference/ig-user/insights for a list of supported metrics.", 100))
        if metric not in ACCOUNT_METRICS:
            raise WireError(graph_error(
                f"(#100) metric[{i}] must be one of the following values: {', '.join(ACCOUNT_METRICS)}", 100))
        periods, types, breakdowns = ACCOUNT_METRICS[metric]
        if period not in periods:
            raise WireError(graph_error(f"(#100) Incompatible period {period[:20]} for metric {metric}", 100))
        if metric_type not in types:
            needs = [m for m in metrics if metric_type not in ACCOUNT_METRICS.get(m, ((), (), ()))[1]]
            raise WireError(graph_error(
                f"(#100) The following metrics ({', '.join(needs)}) should be specified with parameter "
                f"metric_type={types[0]}", 100))
        if breakdown and breakdown not in breakdowns:
            raise WireError(graph_error(f"(#100) Incompatible breakdown {breakdown[:40]} for metric {metric}", 100))
        if metric.endswith("_demographics"):
            if params.get("timeframe") not in ("this_week", "this_month"):
                raise WireError(graph_error("(#100) Timeframe must be one of this_week, this_month", 100))
            if account.followers_count < 100:
                raise WireError(graph_error(
                    "(#10) Not enough users to show demographics: this metric needs at least 100 followers", 10))
    data = []
    for metric in metrics:
        item: dict[str, Any] = {"name": metric, "period": period, "title": _title(metric),
                                "description": f"The {_title(metric).lower()} of the account.",
                                "id": f"{account.ig_id}/insights/{metric}/{period}"}
        scale = max(10, account.followers_count // 20)
        if metric_type == "time_series":
            days = range(int(since // 86_400) + 1, int(until // 86_400) + 1)
            item["values"] = [{"value": int(mix64(account.index, day, len(metric)) % scale),
                               "end_time": _iso(day * 86_400 + 7 * 3600)} for day in days]
        else:
            total = int(mix64(account.index, since // 86_400, len(metric)) % scale)
            item["total_value"] = {"value": total}
            if breakdown:
                item["total_value"]["breakdowns"] = [_breakdown(breakdown, total, account.index)]
        data.append(item)
    base = f"/{account.ig_id}/insights?metric={','.join(metrics)}&period={period}"
    return {"data": data, "paging": {
        "previous": f"{base}&since={since - (until - since)}&until={since}",
        "next": f"{base}&since={until}&until={until + (until - since)}",
    }}
