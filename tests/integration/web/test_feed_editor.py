"""The admin UI's feeds: make one from the form, see a draft in the preview before saving it (the saved feed then
serves exactly what the preview showed), hide and pin posts, delete; every refused form changes nothing."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.web.conftest import csrf, snapshot
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import ACCOUNT, _all_posts, _wait_for, _wait_until_mirrored
from tests.webapp import running_filmroll

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _permalinks(html: str) -> list[str]:
    return re.findall(r'class="filmroll-tile" href="([^"]+)"', html)


def _feed_form(token: str, **fields) -> dict:
    form = {"csrf_token": token, "title": "The bakery", "slug": "", "account": ["1"], "post_limit": "4",
            "media_type": ["IMAGE", "VIDEO", "CAROUSEL_ALBUM"], "reels": "on", "include_hashtags": "",
            "exclude_hashtags": "", "allowed_origins": "*"}
    form.update(fields)
    return form


def test_make_preview_save_hide_pin_and_delete_a_feed_from_the_admin_ui(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, ACCOUNT)
        _wait_until_mirrored(admin, posts)
        assert 'id="no-feeds"' in admin.get("/admin/feeds").text
        token = csrf(admin)

        # A new feed's page: its preview asks for an account first.
        new = admin.get("/admin/feeds/new")
        assert new.status_code == 200 and 'name="account" value="1"' in new.text
        preview_src = re.search(r'<iframe src="([^"]+)"', new.text).group(1).replace("&amp;", "&")
        empty = admin.get(preview_src)
        assert empty.status_code == 422 and "Choose at least one account" in empty.text

        # Refused forms change nothing: no CSRF token, a bad origin, a bad limit, an unknown account.
        before = snapshot(database_url)
        assert admin.post("/admin/feeds/new", data=_feed_form("")).status_code == 403
        for bad, says in (({"allowed_origins": "https://example.org/path"}, "is not an origin"),
                          ({"post_limit": "lots"}, "whole number"), ({"post_limit": "0"}, "1 to 100"),
                          ({"account": ["99"]}, "no connected account"), ({"media_type": []}, "media types")):
            refused = admin.post("/admin/feeds/new", data=_feed_form(token, **bad))
            assert refused.status_code == 400 and says in refused.text, (bad, refused.text[:300])
            assert 'value="The bakery"' in refused.text  # what was typed is kept
        assert snapshot(database_url) == before

        made = admin.post("/admin/feeds/new", data=_feed_form(token))
        assert made.status_code == 303 and made.headers["location"] == "/admin/feeds/the-bakery/edit?saved=1"
        editor = admin.get(made.headers["location"])
        assert 'id="editor-saved"' in editor.text and "/feeds/the-bakery.json" in editor.text
        served = _wait_for(admin, "/feeds/the-bakery.json", lambda b: len(b["posts"]) == 4)

        # The saved feed's preview shows what the public fragment shows.
        saved_preview = admin.get("/admin/feeds/the-bakery/preview")
        assert saved_preview.status_code == 200
        assert "frame-ancestors 'self'" in saved_preview.headers["content-security-policy"]
        assert saved_preview.headers["x-frame-options"] == "SAMEORIGIN"
        assert _permalinks(saved_preview.text) == [p["permalink"] for p in served["posts"]]

        # A draft (albums only, 6 a page) is previewed without being saved...
        draft = admin.get("/admin/feeds/the-bakery/preview", params={
            "draft": "1", "title": "The bakery", "account": "1", "post_limit": "6", "media_type": "CAROUSEL_ALBUM",
            "reels": "on", "allowed_origins": "*"})
        albums = [p for p in _all_posts(admin, "/feeds/the-bakery.json") if p["type"] == "CAROUSEL_ALBUM"]
        assert albums and _permalinks(draft.text) == [p["permalink"] for p in albums[:6]]
        assert admin.get("/feeds/the-bakery.json").json()["posts"] == served["posts"]  # nothing changed yet
        bad_draft = admin.get("/admin/feeds/the-bakery/preview", params={"draft": "1", "account": "1",
                                                                         "media_type": "IMAGE",
                                                                         "allowed_origins": "ftp://x"})
        assert bad_draft.status_code == 422 and "is not an origin" in bad_draft.text

        # ...and once saved, websites get exactly what the preview showed.
        saved = admin.post("/admin/feeds/the-bakery/edit", data=_feed_form(
            token, post_limit="6", media_type=["CAROUSEL_ALBUM"]))
        assert saved.status_code == 303
        body = _wait_for(admin, "/feeds/the-bakery.json", lambda b: all(
            p["type"] == "CAROUSEL_ALBUM" for p in b["posts"]))
        assert [p["permalink"] for p in body["posts"]] == _permalinks(draft.text)

        # Hide the newest post and pin the oldest, with the editor's buttons.
        admin.post("/admin/feeds/the-bakery/edit", data=_feed_form(token))
        every = _wait_for(admin, "/feeds/the-bakery.json", lambda b: len(b["posts"]) == 4) and \
            _all_posts(admin, "/feeds/the-bakery.json")
        newest, oldest = every[0]["id"], every[-1]["id"]
        page = admin.get("/admin/feeds/the-bakery/edit").text
        assert f'action="/admin/feeds/the-bakery/posts/{newest}"' in page
        hidden = admin.post(f"/admin/feeds/the-bakery/posts/{newest}", data={"csrf_token": token, "action": "hide"})
        assert hidden.status_code == 303 and hidden.headers["location"].endswith(f"#post-{newest}")
        admin.post(f"/admin/feeds/the-bakery/posts/{oldest}", data={"csrf_token": token, "action": "pin"})
        body = _wait_for(admin, "/feeds/the-bakery.json", lambda b: b["posts"][0]["id"] == oldest)
        assert newest not in {p["id"] for p in _all_posts(admin, "/feeds/the-bakery.json")}
        assert newest not in admin.get("/feeds/the-bakery.html").text
        page = admin.get("/admin/feeds/the-bakery/edit").text
        assert re.search(rf'id="post-{newest}".*?value="show"', page, re.S)
        assert re.search(rf'id="post-{oldest}".*?Pinned.*?value="unpin"', page, re.S)

        # Refused post actions change nothing.
        before = snapshot(database_url)
        for post, data in ((newest, {"csrf_token": "", "action": "show"}),
                           ("17999999999999999", {"csrf_token": token, "action": "hide"}),
                           (oldest, {"csrf_token": token, "action": "explode"}),
                           ("../../x", {"csrf_token": token, "action": "hide"})):
            answer = admin.post(f"/admin/feeds/the-bakery/posts/{post}", data=data)
            assert answer.status_code in (403, 404), (post, data, answer.status_code)
        assert snapshot(database_url) == before

        # Show and unpin again.
        admin.post(f"/admin/feeds/the-bakery/posts/{newest}", data={"csrf_token": token, "action": "show"})
        admin.post(f"/admin/feeds/the-bakery/posts/{oldest}", data={"csrf_token": token, "action": "unpin"})
        _wait_for(admin, "/feeds/the-bakery.json", lambda b: b["posts"][0]["id"] == newest)

        # Signed out: every feed page sends to the sign-in page, every button is refused.
        stranger = app.client()
        for path in ("/admin/feeds", "/admin/feeds/new", "/admin/feeds/the-bakery/edit",
                     "/admin/feeds/the-bakery/preview"):
            answer = stranger.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login", path
        assert stranger.post("/admin/feeds/the-bakery/delete", data={"confirm": "yes"}).status_code in (303, 403)
        assert admin.get("/admin/feeds/nothing-here/edit").status_code == 404
        stranger.close()

        # Delete asks for the tick first.
        kept = admin.post("/admin/feeds/the-bakery/delete", data={"csrf_token": token})
        assert kept.status_code == 400 and admin.get("/feeds/the-bakery.json").status_code == 200
        gone = admin.post("/admin/feeds/the-bakery/delete", data={"csrf_token": token, "confirm": "yes"})
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/feeds"
        deadline = time.monotonic() + 10
        while admin.get("/feeds/the-bakery.json").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        admin.close()
