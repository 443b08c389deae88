"""The sandbox's Facebook half over loopback HTTP, against the wire references (hashtag-facebook-login.md §1-3,
instagram-platform.md §6): Facebook's token exchanges and their errors, debug_token, Pages, the hashtag edges with
their 24-hour window, 50-a-page cap, one cursor value that still advances, no author, the 30-tags-in-7-days quota,
and Business Discovery with (#110) for a personal or unknown username."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.helpers import facebook_owner_allows

USER = 12
GRAPH = "/graph.facebook.com/v25.0"


@pytest.fixture
def facebook(sandbox):
    return sandbox.control._call("GET", "/facebook")


def _dialog(facebook, **extra):
    return "/www.facebook.com/v25.0/dialog/oauth?" + urlencode(
        {"client_id": facebook["app_id"], "redirect_uri": facebook["redirect_uris"][0], "state": "st",
         "response_type": "code", "scope": "instagram_basic,pages_show_list", **extra})


def _user_token(sandbox, account=USER, **spec):
    return sandbox.control._call("POST", "/facebook/tokens", {"account": account, **spec})


def _get(http, path, token, **params):
    return http.get(GRAPH + path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_the_dialog_the_code_and_the_long_lived_exchange(sandbox, http, facebook):
    landing = facebook_owner_allows(sandbox, sandbox.base_url + _dialog(facebook), USER)
    assert landing.startswith(facebook["redirect_uris"][0] + "?") and landing.endswith("#_=_")
    query = parse_qs(urlsplit(landing.removesuffix("#_=_")).query)
    assert query["state"] == ["st"]
    exchange = {"client_id": facebook["app_id"], "client_secret": facebook["app_secret"],
                "redirect_uri": facebook["redirect_uris"][0], "code": query["code"][0]}
    wrong = http.get(GRAPH + "/oauth/access_token", params={**exchange, "redirect_uri": facebook["redirect_uris"][1]})
    assert wrong.json()["error"]["error_subcode"] == 36008
    short = http.get(GRAPH + "/oauth/access_token", params=exchange)
    assert short.status_code == 200 and short.json()["access_token"].startswith("EAA")
    again = http.get(GRAPH + "/oauth/access_token", params=exchange).json()["error"]
    assert (again["code"], again["error_subcode"]) == (100, 36009)
    instagram_secret = http.get(GRAPH + "/oauth/access_token", params={**exchange, "client_secret": sandbox.app_secret})
    assert instagram_secret.json()["error"]["message"] == "Error validating client secret."
    long = http.get(GRAPH + "/oauth/access_token", params={
        "grant_type": "fb_exchange_token", "client_id": facebook["app_id"], "client_secret": facebook["app_secret"],
        "fb_exchange_token": short.json()["access_token"]}).json()
    assert long["expires_in"] == 5_183_944 and long["access_token"] != short.json()["access_token"]
    # Facebook's token is no Instagram token, and the other way round
    assert http.get("/v25.0/me", headers={"Authorization": "Bearer " + long["access_token"]}).status_code == 400
    bad_client = http.get(_dialog({**facebook, "app_id": sandbox.app_id}))  # the Instagram app's id
    assert "Invalid App ID" in bad_client.text and "Instagram app" in bad_client.text


def test_debug_token_tells_both_expiries_and_why_a_token_died(sandbox, http, facebook):
    token = _user_token(sandbox)
    app_token = f"{facebook['app_id']}|{facebook['app_secret']}"
    data = http.get(GRAPH + "/debug_token", params={"input_token": token["access_token"],
                                                    "access_token": app_token}).json()["data"]
    assert data["is_valid"] is True and data["expires_at"] == int(token["expires_at"])
    assert data["data_access_expires_at"] == int(token["data_access_expires_at"])
    assert http.get(GRAPH + "/debug_token", params={"input_token": token["access_token"],
                                                    "access_token": facebook["app_id"] + "|wrong"}).status_code == 400
    sandbox.control._call("POST", f"/facebook/users/{USER}/data-access", {"expires_in": 0})
    dead = http.get(GRAPH + "/debug_token", params={"input_token": token["access_token"],
                                                    "access_token": app_token}).json()["data"]
    assert dead["is_valid"] is False and dead["error"]["subcode"] == 493
    refused = _get(http, "/me/accounts", token["access_token"]).json()["error"]
    assert (refused["code"], refused["error_subcode"]) == (190, 493)


def test_pages_list_linked_accounts_and_pages_without_one(sandbox, http):
    token = _user_token(sandbox)["access_token"]
    sandbox.control._call("POST", f"/facebook/users/{USER}/pages", {"account": 14})
    pages = _get(http, "/me/accounts", token, fields="id,name,instagram_business_account{id,username}").json()
    linked = [p["instagram_business_account"]["id"] for p in pages["data"] if "instagram_business_account" in p]
    assert linked == [sandbox.control.account(USER)["ig_id"], sandbox.control.account(14)["ig_id"]]
    assert len(pages["data"]) == 3
    other = sandbox.control.account(20)["ig_id"]
    assert _get(http, f"/{other}", token, fields="id").json()["error"]["error_subcode"] == 33  # not the user's


def test_hashtag_search_the_recent_window_paging_and_no_author(sandbox, http):
    token = _user_token(sandbox)["access_token"]
    me = sandbox.control.account(USER)["ig_id"]
    sandbox.control._call("PATCH", "/hashtags/sourdough", {"posts_per_day": 0})
    sandbox.control._call("POST", "/hashtags/sourdough/media", {"count": 5, "age_seconds": 3 * 86_400})
    sandbox.control._call("POST", "/hashtags/sourdough/media", {"count": 120})
    found = _get(http, "/ig_hashtag_search", token, user_id=me, q="#SourDough").json()["data"]
    tag_id = found[0]["id"]
    assert _get(http, f"/{tag_id}", token, fields="id,name").json() == {"id": tag_id, "name": "sourdough"}
    seen, cursors, page = [], set(), _get(http, f"/{tag_id}/recent_media", token, user_id=me, limit=500,
                                          fields="id,media_type,media_url,timestamp").json()
    while True:
        assert len(page["data"]) <= 50
        seen += [m["id"] for m in page["data"]]
        cursors.add(page["paging"]["cursors"]["after"])
        if "next" not in page["paging"]:
            break
        page = httpx.get(page["paging"]["next"]).json()
    assert len(seen) == len(set(seen)) == 120  # the 5 posts 3 days old are outside the window
    assert len(cursors) == 1  # one cursor value on every page, and still it advanced
    refused = _get(http, f"/{tag_id}/recent_media", token, user_id=me, fields="id,username").json()["error"]
    assert refused["code"] == 100 and "username" in refused["message"]


def test_thirty_unique_tags_in_seven_days_and_a_counted_tag_costs_nothing(sandbox, http):
    token = _user_token(sandbox)["access_token"]
    me = sandbox.control.account(USER)["ig_id"]
    for n in range(30):
        assert _get(http, "/ig_hashtag_search", token, user_id=me, q=f"tag{n}a").status_code == 200
    refused = _get(http, "/ig_hashtag_search", token, user_id=me, q="onemore").json()["error"]
    assert refused["code"] == 18
    assert _get(http, "/ig_hashtag_search", token, user_id=me, q="tag7a").status_code == 200  # counted already
    searched = _get(http, f"/{me}/recently_searched_hashtags", token, limit=30).json()["data"]
    assert len(searched) == 30
    sandbox.control.advance(7 * 86_400 + 1)
    assert _get(http, "/ig_hashtag_search", token, user_id=me, q="onemore").status_code == 200
    assert sandbox.control._call("GET", f"/hashtags/quota/{USER}")["used"] == 1


def test_business_discovery_pages_by_field_modifier_and_refuses_personal_accounts(sandbox, http):
    token = _user_token(sandbox)["access_token"]
    me = sandbox.control.account(USER)["ig_id"]
    target = next(a for a in sandbox.control.accounts(limit=60)["data"] if 30 <= a["media_count"] <= 80)
    seen, after = [], None
    while True:
        media = "media.limit(25)" + (f".after({after})" if after else "") + "{id,username,media_url}"
        body = _get(http, f"/{me}", token,
                    fields=f"business_discovery.username({target['username']}){{username,media_count,{media}}}")
        discovered = body.json()["business_discovery"]
        assert discovered["username"] == target["username"]
        seen += [m["id"] for m in discovered["media"]["data"]]
        assert all(m["username"] == target["username"] for m in discovered["media"]["data"])
        assert "next" not in discovered["media"]["paging"]
        after = discovered["media"]["paging"]["cursors"].get("after")
        if after is None:
            break
    assert len(seen) == len(set(seen)) == target["media_count"]
    sandbox.control.account(target["index"], account_type="PERSONAL")
    for username in (target["username"], "nobody_at_all"):
        error = _get(http, f"/{me}", token, fields=f"business_discovery.username({username}){{id}}").json()["error"]
        assert (error["code"], error["message"]) == (110, "(#110) Invalid user id")
