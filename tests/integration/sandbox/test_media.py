"""/{ig-user-id}/media, /{media-id}, /{media-id}/children: fields, omissions, paging, the 10 000-item cap."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import graph_error, long_lived

FIELDS = ("id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,timestamp,username,"
          "like_count,comments_count,shortcode,owner,is_comment_enabled,alt_text,is_shared_to_feed")


def _account_with(sandbox, predicate, limit=200):
    for index in range(limit):
        account = sandbox.control.account(index)
        if predicate(account):
            return account
    raise AssertionError("no account matched")


def _all_pages(http, url, params):
    items, pages = [], 0
    response = http.get(url, params=params).json()
    while True:
        pages += 1
        items.extend(response["data"])
        following = response.get("paging", {}).get("next")
        if not following:
            return items, pages
        response = http.get(following).json()


def test_list_without_fields_is_ids_with_cursors(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 30)
    token = long_lived(http, sandbox, account["index"])
    body = http.get("/me/media", params={"access_token": token}).json()
    assert len(body["data"]) == 25 and all(set(m) == {"id"} for m in body["data"])
    assert set(body["paging"]["cursors"]) == {"before", "after"}
    assert body["paging"]["cursors"]["after"].startswith("QVFI")
    assert "next" in body["paging"] and "previous" not in body["paging"]


def test_paging_visits_every_item_once_newest_first(sandbox, http):
    account = _account_with(sandbox, lambda a: 40 < a["media_count"] < 81)
    token = long_lived(http, sandbox, account["index"])
    items, pages = _all_pages(http, f"/v25.0/{account['ig_id']}/media",
                              {"fields": "id,timestamp", "limit": "7", "access_token": token})
    assert [m["id"] for m in items] == sandbox.control.media_ids(account["index"], limit=200)
    assert len({m["id"] for m in items}) == account["media_count"]
    assert pages == -(-account["media_count"] // 7)
    stamps = [m["timestamp"] for m in items]
    assert stamps == sorted(stamps, reverse=True)


def test_listings_that_show_no_posts_while_the_profile_counts_them(sandbox, http):
    """media_listing: "empty" pages still carry ``next`` to the end (documented as possible), "truncated" ends at
    once; in both the profile's media_count is unchanged, inline on /me as on the edge."""
    account = _account_with(sandbox, lambda a: 40 < a["media_count"] < 81)
    token = long_lived(http, sandbox, account["index"])
    sandbox.control.switches(media_listing="empty")
    items, pages = _all_pages(http, "/me/media", {"limit": "25", "access_token": token})
    assert items == [] and pages == -(-account["media_count"] // 25)
    sandbox.control.switches(media_listing="truncated")
    me = http.get("/me", params={"fields": "media_count,media{id}", "access_token": token}).json()
    assert me["media_count"] == account["media_count"] and me["media"] == {"data": []}
    assert http.get("/me/media", params={"access_token": token}).json() == {"data": []}


def test_next_url_keeps_fields_limit_and_the_token(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 10)
    token = long_lived(http, sandbox, account["index"])
    body = http.get("/me/media", params={"fields": "id,caption", "limit": "3", "access_token": token}).json()
    query = parse_qs(urlsplit(body["paging"]["next"]).query)
    assert query["fields"] == ["id,caption"] and query["limit"] == ["3"] and query["access_token"] == [token]
    assert body["paging"]["next"].startswith(sandbox.base_url + "/v25.0/" + account["ig_id"] + "/media?")


def test_previous_walks_back_to_the_same_page(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 12)
    token = long_lived(http, sandbox, account["index"])
    first = http.get("/me/media", params={"limit": "4", "access_token": token}).json()
    second = http.get(first["paging"]["next"]).json()
    back = http.get(second["paging"]["previous"]).json()
    assert back["data"] == first["data"]
    assert "previous" not in back["paging"]


def test_limit_default_max_and_bad_values(sandbox, http):
    token = long_lived(http, sandbox, 99)  # the account with 10 250 posts
    assert len(http.get("/me/media", params={"limit": "500", "access_token": token}).json()["data"]) == 100
    for bad in ("0", "-1", "ten", "1e3", "9999999999"):
        error = graph_error(http.get("/me/media", params={"limit": bad, "access_token": token}))
        assert error["code"] == 100 and "limit" in error["message"]


@pytest.mark.parametrize("cursor", ["garbage", "QVFI", "QVFIAAAA", "QVFI" + "A" * 60, "QVFI!!!!", "x" * 500])
def test_garbage_cursors(sandbox, http, cursor):
    token = long_lived(http, sandbox, 99)
    for which in ("after", "before"):
        error = graph_error(http.get("/me/media", params={which: cursor, "access_token": token}))
        assert error["code"] == 100 and "cursor" in error["message"].lower()


def test_cursor_from_another_seed_or_tampered_is_refused(sandbox, http):
    token = long_lived(http, sandbox, 99)
    after = http.get("/me/media", params={"access_token": token}).json()["paging"]["cursors"]["after"]
    tampered = after[:-2] + ("AA" if after[-2:] != "AA" else "BB")
    assert graph_error(http.get("/me/media", params={"after": tampered, "access_token": token}))["code"] == 100


def test_only_the_10000_most_recent_media_are_reachable(sandbox, http):
    token = long_lived(http, sandbox, 99)
    me = http.get("/me", params={"fields": "media_count", "access_token": token}).json()
    assert me["media_count"] == 10_250
    seen, pages = _all_pages(http, "/me/media", {"limit": "100", "access_token": token})
    assert len(seen) == 10_000 and pages == 100
    assert len({m["id"] for m in seen}) == 10_000


def test_posts_added_while_paging_do_not_shift_the_pages(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 20)
    token = long_lived(http, sandbox, account["index"])
    first = http.get("/me/media", params={"limit": "5", "access_token": token}).json()
    new = sandbox.control.add_media(account["index"], caption="fresh post")
    second = http.get(first["paging"]["next"]).json()
    expected = sandbox.control.media_ids(account["index"], limit=11)[6:11]
    assert [m["id"] for m in second["data"]] == expected
    latest = http.get("/me/media", params={"limit": "1", "fields": "id,caption", "access_token": token}).json()
    assert latest["data"] == [{"id": new["id"], "caption": "fresh post"}]


def test_since_and_until(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 20)
    token = long_lived(http, sandbox, account["index"])
    everything, _ = _all_pages(http, "/me/media", {"fields": "id,timestamp", "limit": "100", "access_token": token})
    from datetime import datetime

    stamps = [int(datetime.strptime(m["timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp()) for m in everything]
    since, until = stamps[15], stamps[5]
    window, _ = _all_pages(http, "/me/media", {"fields": "id", "since": str(since), "until": str(until),
                                               "limit": "4", "access_token": token})
    assert [m["id"] for m in window] == [m["id"] for m in everything[5:16]]
    iso = http.get("/me/media", params={"since": "2999-01-01", "access_token": token}).json()
    assert iso["data"] == []
    error = graph_error(http.get("/me/media", params={"since": "yesterday-ish", "access_token": token}))
    assert error["code"] == 100


def _find_media(sandbox, http, predicate, fields=FIELDS, accounts=range(0, 60)):
    for index in accounts:
        token = long_lived(http, sandbox, index)
        body = http.get("/me/media", params={"fields": fields, "limit": "100", "access_token": token}).json()
        for media in body["data"]:
            if predicate(media):
                return media, token
    raise AssertionError("no media matched")


def test_optional_fields_are_omitted_the_way_instagram_does(sandbox, http):
    image, token = _find_media(sandbox, http, lambda m: m["media_type"] == "IMAGE" and "caption" in m)
    assert "thumbnail_url" not in image and "is_shared_to_feed" not in image
    assert image["permalink"] == f"https://www.instagram.com/p/{image['shortcode']}/"
    assert image["owner"] == {"id": sandbox.control.inspect(token)["ig_id"]}
    uncaptioned, _ = _find_media(sandbox, http, lambda m: "caption" not in m)
    assert uncaptioned["id"]
    video, _ = _find_media(sandbox, http, lambda m: m["media_type"] == "VIDEO" and "media_url" in m)
    assert "_poster.jpg" in video["thumbnail_url"] and ".mp4" in video["media_url"]
    reel, _ = _find_media(sandbox, http, lambda m: m["media_product_type"] == "REELS")
    assert reel["media_type"] == "VIDEO" and "/reel/" in reel["permalink"] and "is_shared_to_feed" in reel
    copyrighted, _ = _find_media(sandbox, http, lambda m: m["media_type"] == "VIDEO" and "media_url" not in m)
    assert "thumbnail_url" in copyrighted


def test_media_node_and_timestamp_format(sandbox, http):
    media, token = _find_media(sandbox, http, lambda m: m["media_type"] == "IMAGE")
    node = http.get(f"/{media['id']}", params={"fields": FIELDS, "access_token": token}).json()
    node.pop("media_url"), media.pop("media_url")  # signed URLs churn between reads
    assert node == media
    assert http.get(f"/{media['id']}", params={"access_token": token}).json() == {"id": media["id"]}
    assert len(media["timestamp"]) == 24 and media["timestamp"].endswith("+0000")


def test_media_urls_churn_between_reads(sandbox, http):
    media, token = _find_media(sandbox, http, lambda m: m["media_type"] == "IMAGE")
    urls = {http.get(f"/{media['id']}", params={"fields": "media_url", "access_token": token}).json()["media_url"]
            for _ in range(3)}
    assert len(urls) == 3


def test_children_edge_and_inline_expansion(sandbox, http):
    album, token = _find_media(sandbox, http, lambda m: m["media_type"] == "CAROUSEL_ALBUM",
                               fields="id,media_type,children{id,media_type,media_url,caption,permalink,timestamp}")
    children = album["children"]["data"]
    assert 2 <= len(children) <= 10
    for child in children:
        assert child["media_type"] in ("IMAGE", "VIDEO")
        assert "caption" not in child and "permalink" not in child
    edge = http.get(f"/{album['id']}/children", params={"access_token": token}).json()
    assert [c["id"] for c in edge["data"]] == [c["id"] for c in children]
    child = http.get(f"/{children[0]['id']}", params={"fields": "id,media_type,like_count",
                                                      "access_token": token}).json()
    assert child == {"id": children[0]["id"], "media_type": children[0]["media_type"]}
    plain = http.get(f"/{album['id']}", params={"fields": "children", "access_token": token}).json()
    assert plain["children"]["data"] == [{"id": c["id"]} for c in children]


def test_user_media_field_expansion_reads_profile_and_media_in_one_call(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 5)
    token = long_lived(http, sandbox, account["index"])
    body = http.get("/me", params={"fields": "username,media_count,media.limit(3){id,caption,timestamp}",
                                   "access_token": token}).json()
    assert body["username"] == account["username"]
    assert [m["id"] for m in body["media"]["data"]] == sandbox.control.media_ids(account["index"], limit=3)
    following = http.get(body["media"]["paging"]["next"]).json()
    assert [m["id"] for m in following["data"]] == sandbox.control.media_ids(account["index"], limit=6)[3:]


def test_unknown_and_facebook_login_only_fields(sandbox, http):
    media, token = _find_media(sandbox, http, lambda m: True, fields="id")
    for field in ("boost_ads_list", "saved_count", "nonsense"):
        error = graph_error(http.get(f"/{media['id']}", params={"fields": field, "access_token": token}))
        assert error["message"] == f"(#100) Tried accessing nonexisting field ({field}) on node type (Media)"
    error = graph_error(http.get("/me/media", params={"fields": "id,nope", "access_token": token}))
    assert error["code"] == 100


def test_other_accounts_media_is_not_readable(sandbox, http):
    theirs = sandbox.control.media_ids(1, limit=1) or sandbox.control.media_ids(2, limit=1)
    token = long_lived(http, sandbox, 0)
    error = graph_error(http.get(f"/{theirs[0]}", params={"access_token": token}))
    assert (error["code"], error["error_subcode"]) == (100, 33)


def test_edit_and_delete(sandbox, http):
    account = _account_with(sandbox, lambda a: a["media_count"] > 3)
    token = long_lived(http, sandbox, account["index"])
    first, second = sandbox.control.media_ids(account["index"], limit=2)
    sandbox.control.media(first, caption="edited caption", like_count=42)
    body = http.get(f"/{first}", params={"fields": "caption,like_count", "access_token": token}).json()
    assert body == {"caption": "edited caption", "like_count": 42}
    sandbox.control.delete_media(second)
    assert graph_error(http.get(f"/{second}", params={"access_token": token}))["error_subcode"] == 33
    ids = [m["id"] for m in http.get("/me/media", params={"limit": "100", "access_token": token}).json()["data"]]
    assert second not in ids and first in ids
    me = http.get("/me", params={"fields": "media_count", "access_token": token}).json()
    assert me["media_count"] == account["media_count"] - 1


def test_added_album_has_children(sandbox, http):
    token = long_lived(http, sandbox, 0)
    album = sandbox.control.add_media(0, media_type="CAROUSEL_ALBUM", children=["IMAGE", "VIDEO", "IMAGE"],
                                      caption="three")
    body = http.get(f"/{album['id']}", params={"fields": "media_type,children{media_type}",
                                               "access_token": token}).json()
    assert [c["media_type"] for c in body["children"]["data"]] == ["IMAGE", "VIDEO", "IMAGE"]


def test_control_api_refuses_bad_media(sandbox):
    for spec in ({"media_type": "CAROUSEL_ALBUM"}, {"media_type": "IMAGE", "children": ["IMAGE", "IMAGE"]},
                 {"media_type": "GIF"}, {"caption": "x" * 3000}, {"unexpected": 1}):
        with pytest.raises(Exception, match="400"):
            sandbox.control.add_media(0, **spec)
