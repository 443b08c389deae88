"""The widget in Chromium, on a host page of another origin under a strict CSP: every request goes to filmroll,
every picture loads, nothing shifts, the lightbox works from the keyboard, "load more" reaches the 60th post, and
axe-core finds no serious or critical violation in the widget or the fragment."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from filmroll.service import feeds as feed_service
from tests.e2e.conftest import accessibility_violations
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import _wait_until_mirrored, make_served_feed
from tests.webapp import free_port, running_filmroll

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")

# Counts every layout shift the page sees, from the first paint on (a shift right after input does not count).
CLS = """window.__shifts = []; new PerformanceObserver(list => { for (const e of list.getEntries())
  if (!e.hadRecentInput) window.__shifts.push(e.value); }).observe({type: 'layout-shift', buffered: true});"""


@contextmanager
def host_page(filmroll: str, body: str) -> Iterator[str]:
    """A web site of its own origin (localhost, not 127.0.0.1) whose CSP allows filmroll's origin and nothing else."""
    csp = (f"default-src 'none'; script-src {filmroll}; img-src {filmroll}; connect-src {filmroll}; "
           "style-src 'self'")
    page = f"<!doctype html><html lang=en><head><meta charset=utf-8><title>A bakery</title></head><body><main>" \
           f"<h1>Our bakery</h1>{body}</main></body></html>".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 5  # a connection the browser opened ahead and never used ends, and its socket is closed

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _shadow(page, script: str):
    return page.evaluate(f"() => {{ const root = document.querySelector('filmroll-feed').shadowRoot; {script} }}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_widget_on_a_strict_csp_page_of_another_origin(sandbox, database_url, browser):
    with running_filmroll(sandbox, database_url, worker=True, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 11)
        assert posts >= 60
        _wait_until_mirrored(admin, posts)
        make_served_feed(admin, database_url, feed_service.FeedSpec("The bakery", "bakery", ("1",), post_limit=12))
        every = []
        url = "/feeds/bakery.json"
        while url:
            page_body = admin.get(url.removeprefix(app.base_url)).json()
            every += page_body["posts"]
            url = page_body["next"]
        snippet = (f'<script type="module" src="{app.base_url}/widget.js"></script>'
                   f'<filmroll-feed src="{app.base_url}/feeds/bakery.json" layout="grid" columns="3" limit="9">'
                   f"</filmroll-feed>")
        with host_page(app.base_url, snippet) as site:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.add_init_script(CLS)
            requested: list[str] = []
            refused: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(site)
            page.wait_for_function("() => document.querySelector('filmroll-feed')?.shadowRoot"
                                   "?.querySelectorAll('li').length === 9", timeout=30_000)
            # Every tile in view (lazy ones too), then every picture must have loaded.
            page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
            page.wait_for_function("() => [...document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=30_000)
            if SHOTS:
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=f"{SHOTS}/widget-desktop.png", full_page=True)
            assert page.evaluate("() => window.__shifts.reduce((a, b) => a + b, 0)") == 0
            assert refused == []  # the CSP refused nothing
            assert [u for u in requested if not u.startswith((app.base_url, site))] == []  # filmroll's origin only
            assert any("/media/" in u for u in requested) and not any("cdninstagram" in u for u in requested)

            # The lightbox from the keyboard: Tab to the first tile, Enter opens, arrows move, Escape closes.
            album = next(n for n, p in enumerate(every[:9]) if p["type"] == "CAROUSEL_ALBUM")
            page.evaluate("() => window.scrollTo(0, 0)")
            page.keyboard.press("Tab")
            assert _shadow(page, "return root.activeElement?.getAttribute('part')") == "tile"
            for _ in range(album):
                page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            assert _shadow(page, "return root.querySelector('dialog').open") is True
            children = len(every[album]["children"])
            assert _shadow(page, "return root.querySelector('[part=counter]').textContent") == f"1 / {children}"
            page.keyboard.press("ArrowRight")
            assert _shadow(page, "return root.querySelector('[part=counter]').textContent") == f"2 / {children}"
            page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelector('dialog img')?.complete")
            assert _shadow(page, "return root.querySelector('dialog img').currentSrc").startswith(app.base_url)
            if SHOTS:
                page.wait_for_timeout(500)
                page.screenshot(path=f"{SHOTS}/widget-lightbox.png")
            page.keyboard.press("ArrowLeft")
            assert _shadow(page, "return root.querySelector('[part=counter]').textContent") == f"1 / {children}"
            page.keyboard.press("Escape")
            assert _shadow(page, "return root.querySelector('dialog').open") is False
            assert _shadow(page, "return root.activeElement?.getAttribute('part')") == "tile"  # focus came back

            # Load more, to the 60th post and past it.
            more = page.locator("filmroll-feed").locator("[part=more]")
            more.dblclick()  # a double press loads one more page, not two
            page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('li').length === 18")
            # A double press whose page came before its second half: that half lands on a new tile, opens nothing.
            more.scroll_into_view_if_needed()
            box = more.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.click(x, y)
            page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('li').length === 27")
            assert _shadow(page, f"return root.elementFromPoint({x}, {y})?.closest('[part=tile]') !== null")
            page.mouse.down(click_count=2)
            page.mouse.up(click_count=2)
            assert _shadow(page, "return root.querySelector('dialog').open") is False
            while (count := _shadow(page, "return root.querySelectorAll('li').length")) < 60:
                more.click()
                page.wait_for_function(f"() => document.querySelector('filmroll-feed').shadowRoot"
                                       f".querySelectorAll('li').length > {count}")
            shown = _shadow(page, "return root.querySelectorAll('li').length")
            assert shown == min(63, posts) and requested.count(f"{app.base_url}/widget.js") == 1
            alt = _shadow(page, "return root.querySelectorAll('li img')[59].alt")
            assert alt == every[59]["alt_text"]
            context.close()

            # axe-core needs to be injected, which the strict CSP rightly forbids: a second look without it.
            context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
            page = context.new_page()
            page.goto(site)
            page.wait_for_function("() => document.querySelector('filmroll-feed')?.shadowRoot"
                                   "?.querySelectorAll('li').length === 9", timeout=30_000)
            assert accessibility_violations(page) == []
            if SHOTS:
                page.screenshot(path=f"{SHOTS}/widget-phone.png", full_page=True)
            page.goto(f"{app.base_url}/feeds/bakery/embed")
            assert accessibility_violations(page) == []
            context.close()

        # JavaScript off: the fragment still shows every post of its page.
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(f"{app.base_url}/feeds/bakery/embed")
        images = page.locator("img")
        assert images.count() == 12
        deadline = time.monotonic() + 20
        while not page.evaluate("() => [...document.images].slice(0, 3).every(i => i.complete && i.naturalWidth)"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        context.close()
        admin.close()
