"""Photos by hashtag and from another profile, as an operator gets them in Chromium: "Connect with Facebook" through
the sandbox's Facebook dialog; a hashtag feed that shows nothing until posts are approved in the admin queue (by
keyboard alone), then exactly those; a rejected post never shows; a Business Discovery feed with the other account's
posts, its username on each, every picture from filmroll's origin. serve with its worker and mirror, on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from filmroll.service import feeds as feed_service
from filmroll.service import sources
from tests import aio
from tests.webapp import ADMIN, running_filmroll

pytestmark = pytest.mark.browser
MANAGER = 51
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")  # a directory to keep the screenshots in (docs/screenshots)
TAG = "tidepools"


@pytest.fixture
def secure_page(browser):
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    yield page
    context.close()


def _feed(app, slug: str) -> dict:
    return httpx.get(f"{app.base_url}/feeds/{slug}.json", verify=False, timeout=30).json()


def _wait(check, what: str, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


async def _runtime_call(app, work):
    from filmroll.runtime import open_runtime

    async with open_runtime(app.settings) as runtime:
        return await work(runtime)


# SQLite only: every step below is covered on PostgreSQL by the integration tests (test_hashtag_archive.py,
# test_sources.py, test_facebook_login.py); the suite's time is a budget.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_connect_with_facebook_then_moderate_a_hashtag_feed_by_keyboard(sandbox, database_url, secure_page, tmp_path):
    page = secure_page
    sandbox.control._call("PATCH", f"/hashtags/{TAG}", {"posts_per_day": 0})
    sandbox.control._call("POST", f"/hashtags/{TAG}/media", {"count": 5, "caption": f"Low tide #{TAG}"})
    target = next(a for a in sandbox.control.accounts(limit=60)["data"] if 3 <= a["media_count"] <= 8)
    with running_filmroll(sandbox, database_url, https=True, worker=True, mirror=True) as app:
        sandbox.control.add_redirect_uri(app.redirect_uri)
        page.goto(app.base_url + "/login")
        page.fill("#username", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.click("button[type=submit]")
        page.wait_for_url(app.base_url + "/accounts")
        page.click("#connect-facebook")
        page.wait_for_url(sandbox.base_url + "/www.facebook.com/**")
        manager = sandbox.control.account(MANAGER)
        page.fill("#username", manager["username"])
        page.fill("#password", "password")
        page.click("button.allow")
        page.wait_for_url(app.base_url + "/connections/*")
        assert page.locator("#result").inner_text() == f"Connected as @{manager['username']}"
        assert "data access" in page.locator(".card").inner_text()
        via = f"@{manager['username']}"

        async def add(runtime):
            tag = await sources.add_hashtag(runtime.database, runtime.vault, runtime.clients, TAG, via=via)
            profile = await sources.add_profile(runtime.database, runtime.vault, runtime.clients,
                                                target["username"], via=via)
            await feed_service.create(runtime.database, feed_service.FeedSpec("Tide", "tide", (), sources=(tag.id,)))
            await feed_service.create(runtime.database, feed_service.FeedSpec("Them", "them", (),
                                                                              sources=(profile.id,)))

        aio.run(_runtime_call(app, add))
        page.goto(app.base_url + "/admin/feeds/tide/moderation")
        _wait(lambda: (page.reload(), page.locator("#queue .tile img").count() == 5)[1],
              "the tag's 5 posts mirrored")
        assert _feed(app, "tide")["posts"] == []  # nothing shows before it is approved
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(Path(SHOTS or tmp_path) / "moderation-queue-1280.jpg"), full_page=True, type="jpeg",
                        quality=80)

        # Keyboard only: focus the first tile, approve it; move right, select two with space, approve both; move
        # right, reject one.
        tiles = page.locator("#queue .tile")
        ids = [tiles.nth(n).get_attribute("data-id") for n in range(5)]
        tiles.nth(0).focus()
        page.keyboard.press("a")
        _wait(lambda: "approved" in tiles.nth(0).get_attribute("class"), "the first post approved")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        page.keyboard.press("a")
        _wait(lambda: "approved" in tiles.nth(2).get_attribute("class"), "two more approved")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("r")
        _wait(lambda: "rejected" in tiles.nth(3).get_attribute("class"), "one rejected")
        assert "pending" in tiles.nth(4).get_attribute("class")
        assert ADMIN[0] in tiles.nth(0).locator(".decision").inner_text()
        _wait(lambda: sorted(p["id"] for p in _feed(app, "tide")["posts"]) == sorted(ids[:3]),
              "exactly the approved posts in the feed")
        shown = _feed(app, "tide")["posts"]
        assert ids[3] not in {p["id"] for p in shown} and all(p["username"] is None for p in shown)
        page.goto(app.base_url + "/feeds/tide.html")
        assert ids[3] not in page.content() and ids[4] not in page.content()

        # Business Discovery: the other account's every post, with its username, pictures from filmroll.
        _wait(lambda: len(_feed(app, "them")["posts"]) == target["media_count"], "the profile's posts mirrored")
        them = _feed(app, "them")["posts"]
        assert {p["username"] for p in them} == {target["username"]}
        page.goto(app.base_url + "/feeds/them/embed")
        pictures = page.evaluate("[...document.images].map(i => i.currentSrc || i.src)")
        assert pictures and all(src.startswith(app.base_url + "/media/") for src in pictures)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(app.base_url + "/admin/feeds/tide/moderation?status=all")
        page.screenshot(path=str(Path(SHOTS or tmp_path) / "moderation-queue-390.jpg"), full_page=True, type="jpeg",
                        quality=80)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
