"""/{media-id}/insights and /{ig-user-id}/insights: current metrics, removed ones, permissions, rules."""

from __future__ import annotations

import pytest

from tests.helpers import graph_error


def _feed_media(sandbox, http, token):
    body = http.get("/me/media", params={"fields": "id,media_product_type,media_type", "limit": "100",
                                         "access_token": token}).json()
    return body["data"]


def _token(sandbox, account=0, insights=True):
    permissions = ["instagram_business_basic"] + (["instagram_business_manage_insights"] if insights else [])
    return sandbox.control.mint_token(account, permissions=permissions)["access_token"]


def _media_of(sandbox, http, product_type, media_type=None):
    for account in range(40):
        token = _token(sandbox, account)
        for media in _feed_media(sandbox, http, token):
            wanted = media["media_product_type"] == product_type and media_type in (None, media["media_type"])
            if wanted and "error" not in http.get(f"/{media['id']}/insights", params={
                    "metric": "reach", "access_token": token}).json():
                return media, token
    raise AssertionError("no such media")


def test_media_insights_shape(sandbox, http):
    media, token = _media_of(sandbox, http, "FEED", "IMAGE")
    body = http.get(f"/{media['id']}/insights", params={"metric": "reach,likes,saved,views",
                                                        "access_token": token}).json()
    assert [m["name"] for m in body["data"]] == ["reach", "likes", "saved", "views"]
    for metric in body["data"]:
        assert metric["period"] == "lifetime" and isinstance(metric["values"][0]["value"], int)
        assert metric["id"] == f"{media['id']}/insights/{metric['name']}/lifetime"
    again = http.get(f"/{media['id']}/insights", params={"metric": "reach,likes,saved,views",
                                                         "access_token": token}).json()
    assert [m["values"] for m in again["data"]] == [m["values"] for m in body["data"]]


def test_insights_need_the_insights_permission(sandbox, http):
    media, _ = _media_of(sandbox, http, "FEED")
    account = sandbox.control.media(media["id"])["account"]
    token = _token(sandbox, account, insights=False)
    error = graph_error(http.get(f"/{media['id']}/insights", params={"metric": "reach", "access_token": token}))
    assert (error["code"], error["message"]) == (10, "(#10) Application does not have permission for this action")
    error = graph_error(http.get("/me/insights", params={"metric": "reach", "period": "day", "access_token": token}))
    assert error["code"] == 10


@pytest.mark.parametrize("metric", ["impressions", "plays", "video_views", "engagement"])
def test_removed_media_metrics(sandbox, http, metric):
    media, token = _media_of(sandbox, http, "FEED")
    error = graph_error(http.get(f"/{media['id']}/insights", params={"metric": metric, "access_token": token}))
    assert error["code"] == 100
    assert error["message"].startswith(f"(#100) Starting from version 22 and above, the {metric} metric is no longer")


def test_unknown_media_metric_lists_the_valid_ones(sandbox, http):
    media, token = _media_of(sandbox, http, "FEED")
    error = graph_error(http.get(f"/{media['id']}/insights", params={"metric": "reach,bogus", "access_token": token}))
    assert error["message"].startswith("(#100) metric[1] must be one of the following values: comments, likes")


def test_metric_not_for_this_product_type(sandbox, http):
    reel, token = _media_of(sandbox, http, "REELS")
    error = graph_error(http.get(f"/{reel['id']}/insights", params={"metric": "profile_visits",
                                                                   "access_token": token}))
    assert error["message"] == ("(#100) The Media Insights API does not support the profile_visits metric for this "
                                "media product type.")
    ok = http.get(f"/{reel['id']}/insights", params={"metric": "ig_reels_avg_watch_time", "access_token": token})
    assert ok.status_code == 200


def test_breakdown_rules(sandbox, http):
    media, token = _media_of(sandbox, http, "FEED")
    good = http.get(f"/{media['id']}/insights", params={"metric": "profile_activity", "breakdown": "action_type",
                                                        "access_token": token}).json()
    breakdown = good["data"][0]["total_value"]["breakdowns"][0]
    assert breakdown["dimension_keys"] == ["action_type"]
    assert {r["dimension_values"][0] for r in breakdown["results"]} >= {"BIO_LINK_CLICKED", "EMAIL"}
    mixed = graph_error(http.get(f"/{media['id']}/insights", params={
        "metric": "profile_activity,reach", "breakdown": "action_type", "access_token": token}))
    assert (mixed["code"], mixed["message"]) == (1, "An unknown error has occurred.")


def test_missing_metric_and_wrong_period(sandbox, http):
    media, token = _media_of(sandbox, http, "FEED")
    assert "metric" in graph_error(http.get(f"/{media['id']}/insights", params={"access_token": token}))["message"]
    assert graph_error(http.get(f"/{media['id']}/insights", params={"metric": "reach", "period": "day",
                                                                   "access_token": token}))["code"] == 100


def test_album_children_have_no_insights(sandbox, http):
    for account in range(30):
        token = _token(sandbox, account)
        body = http.get("/me/media", params={"fields": "media_type,children", "limit": "100",
                                             "access_token": token}).json()
        albums = [m for m in body["data"] if m["media_type"] == "CAROUSEL_ALBUM"]
        if albums:
            child = albums[0]["children"]["data"][0]["id"]
            error = graph_error(http.get(f"/{child}/insights", params={"metric": "reach", "access_token": token}))
            assert error["code"] == 100
            return
    raise AssertionError("no album found")


def test_account_insights_total_value_and_time_series(sandbox, http):
    token = _token(sandbox, 0)
    now = int(sandbox.control.now())
    body = http.get("/me/insights", params={"metric": "reach,accounts_engaged", "period": "day",
                                            "metric_type": "total_value", "access_token": token}).json()
    assert [m["name"] for m in body["data"]] == ["reach", "accounts_engaged"]
    assert all(isinstance(m["total_value"]["value"], int) for m in body["data"])
    assert body["paging"]["next"].startswith(sandbox.base_url)
    series = http.get("/me/insights", params={"metric": "reach", "period": "day", "metric_type": "time_series",
                                              "since": str(now - 7 * 86_400), "until": str(now),
                                              "access_token": token}).json()
    values = series["data"][0]["values"]
    assert len(values) == 7 and all(v["end_time"].endswith("+0000") for v in values)


def test_account_insights_rules(sandbox, http):
    token = _token(sandbox, 0)
    now = int(sandbox.control.now())
    needs_total = graph_error(http.get("/me/insights", params={"metric": "accounts_engaged", "period": "day",
                                                               "access_token": token}))
    assert needs_total["message"] == ("(#100) The following metrics (accounts_engaged) should be specified with "
                                      "parameter metric_type=total_value")
    removed = graph_error(http.get("/me/insights", params={"metric": "impressions", "period": "day",
                                                           "access_token": token}))
    assert removed["message"].startswith("Starting from version 22 and above, the impressions metric is no longer "
                                         "supported for the queried user.")
    too_long = graph_error(http.get("/me/insights", params={
        "metric": "reach", "period": "day", "since": str(now - 40 * 86_400), "until": str(now),
        "access_token": token}))
    assert "30 days" in too_long["message"]
    assert "period" in graph_error(http.get("/me/insights", params={"metric": "reach",
                                                                    "access_token": token}))["message"]
    assert graph_error(http.get("/me/insights", params={"metric": "follower_demographics", "period": "lifetime",
                                                        "metric_type": "total_value",
                                                        "access_token": token}))["code"] in (10, 100)
