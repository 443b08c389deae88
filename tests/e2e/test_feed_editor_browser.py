"""The feed editor in Chromium, under filmroll's own CSP: a new feed's preview fills as the form is filled, before
anything is saved; an unsaved change shows in the preview at once and reaches websites only when saved; *Hide* takes
a post out; the page reads well at a phone's width and a desktop's (no sideways scrolling, axe-core clean)."""

from __future__ import annotations

import functools
import os
import time

import pytest

from tests.e2e.conftest import accessibility_violations, reloaded_summary
from tests.e2e.test_web_connect_browser import connect_in_the_browser
from tests.integration.web.test_feeds import ACCOUNT
from tests.webapp import running_filmroll, wait_until_mirrored

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")  # a directory to keep the screenshots in (docs/screenshots)


def _tiles(page) -> int:
    """The posts the preview frame shows once it has loaded."""
    frame = page.frame_locator("#preview")
    frame.locator("#preview-summary, #preview-message").first.wait_for(timeout=15_000)
    return frame.locator(".filmroll-post").count()


def _wait(check, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_feed_editor_previews_what_is_typed_and_saves_it(sandbox, database_url, browser, tmp_path):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    with running_filmroll(sandbox, database_url, https=True, worker=True, mirror=True) as app:
        account = connect_in_the_browser(page, app, sandbox, ACCOUNT)
        posts = account["media_count"]
        page.goto(f"{app.base_url}/accounts/1")
        wait_until_mirrored(functools.partial(reloaded_summary, page), posts)

        page.click("nav >> text=Feeds")
        page.click("#new-feed")
        assert "Choose at least one account" in page.frame_locator("#preview").locator("body").inner_text()
        page.fill("#title", "Fresh from the oven")
        page.check(f"text=@{account['username']}")
        page.fill("#post_limit", "6")
        _wait(lambda: _tiles(page) == min(6, posts))  # the preview follows the form: nothing is saved yet
        assert page.locator("#unsaved").is_visible()
        page.click("#save")
        page.wait_for_url(f"{app.base_url}/admin/feeds/fresh-from-the-oven/edit?saved=1")
        assert page.locator("#editor-saved").is_visible()
        feed = page.request.get(f"{app.base_url}/feeds/fresh-from-the-oven.json").json()
        assert len(feed["posts"]) == min(6, posts)

        # Albums only: the preview changes at once, the public feed only when saved.
        for kind in ("Photos", "Videos"):
            page.uncheck(f"label.check:has-text('{kind}') input")
        albums = [p for p in feed["posts"] if p["type"] == "CAROUSEL_ALBUM"]
        _wait(lambda: _tiles(page) == len([p for p in _every(page, app) if p["type"] == "CAROUSEL_ALBUM"][:6]))
        assert albums and page.request.get(f"{app.base_url}/feeds/fresh-from-the-oven.json").json() == feed
        page.click("#save")
        page.wait_for_url("**/edit?saved=1")
        saved = page.request.get(f"{app.base_url}/feeds/fresh-from-the-oven.json").json()
        assert {p["type"] for p in saved["posts"]} == {"CAROUSEL_ALBUM"}

        # The preview is the real widget: it takes the layout, columns and header chosen at once, and so does the
        # embed code; the frame grows to show the whole feed.
        shown = _tiles(page)
        frame = page.frame(name="preview")
        frame.wait_for_function("() => document.getElementById('preview-widget').shadowRoot"
                                "?.querySelectorAll('li:not(.spare)').length > 0")
        page.select_option("#layout", "carousel")
        page.select_option("#columns", "2")
        page.select_option("#header", "compact")
        assert 'layout="carousel" columns="2" header="compact"' in page.locator("#snippet").inner_text()
        frame.wait_for_function("() => { const root = document.getElementById('preview-widget').shadowRoot;"
                                " return root.querySelector('.arrow.on') && root.querySelector('.head.compact'); }")
        drawn = frame.evaluate("""() => { const root = document.getElementById('preview-widget').shadowRoot;
            const tiles = [...root.querySelectorAll('li:not(.spare) .tile')];
            return {tiles: tiles.length, across: new Set(tiles.map(t => Math.round(t.getBoundingClientRect().top)))
                    .size, width: tiles[0].getBoundingClientRect().width, frame: innerWidth}; }""")
        assert drawn["tiles"] == shown and drawn["across"] == 1, drawn  # one row that slides
        assert abs(drawn["width"] - (drawn["frame"] - 16 - 4) / 2) < 2, drawn  # two columns of the frame's width
        _wait(lambda: page.evaluate("() => { const f = document.getElementById('preview');"
                                    " return f.getBoundingClientRect().height >= Math.min(1400,"
                                    " f.contentDocument.body.getBoundingClientRect().bottom); }"))
        page.select_option("#layout", "list")
        frame.wait_for_function("() => document.getElementById('preview-widget').shadowRoot"
                                ".querySelector('.caption, .meta')")
        page.select_option("#layout", "grid")

        # Hide the first post shown: the preview and the feed lose it.
        first = saved["posts"][0]["id"]
        page.locator(f"#post-{first} button[value=hide]").click()
        page.wait_for_url(f"**/edit#post-{first}")
        assert page.locator(f"#post-{first} .badge.hidden").is_visible()
        assert first not in {p["id"] for p in page.request.get(
            f"{app.base_url}/feeds/fresh-from-the-oven.json").json()["posts"]}
        assert refused == []  # filmroll's CSP allowed its own script and frame, and refused nothing

        # How it looks, and whether everyone can use it (axe-core needs injecting: a second context, same session).
        look = browser.new_context(ignore_https_errors=True, bypass_csp=True, storage_state=context.storage_state())
        page = look.new_page()
        for width, height, name in ((1280, 900, "desktop"), (390, 844, "phone")):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{app.base_url}/admin/feeds/fresh-from-the-oven/edit")
            _tiles(page)
            page.frame_locator("#preview").locator(".tile img").first.wait_for()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
            assert accessibility_violations(page) == [], name
            page.screenshot(path=str(tmp_path / f"feed-editor-{name}.png"))
            if SHOTS:
                page.wait_for_timeout(500)
                page.screenshot(path=os.path.join(SHOTS, f"feed-editor-{name}.jpg"), type="jpeg", quality=78,
                                full_page=name == "desktop")
        page.goto(f"{app.base_url}/admin/feeds")
        assert page.locator("#feeds").inner_text().count("Fresh from the oven") == 1
        assert accessibility_violations(page) == []
        look.close()
    context.close()


def _every(page, app) -> list[dict]:
    """Every post of the saved feed's account, newest first (from the public JSON, all pages)."""
    found, url = [], f"{app.base_url}/feeds/fresh-from-the-oven.json"
    while url:
        body = page.request.get(url if url.startswith("http") else app.base_url + url).json()
        found += body["posts"]
        url = body["next"]
    return found
