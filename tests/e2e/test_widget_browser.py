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
from tests.e2e.conftest import AXE, accessibility_violations
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import _wait_until_mirrored, make_served_feed
from tests.webapp import free_port, running_filmroll

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LAYOUTS = ("grid", "carousel", "masonry", "list")
HOST_CSS = (b"body { font: 17px/1.5 Georgia, serif; margin: 8px 8px 64px; } footer { position: fixed; bottom: 0; "
            b"left: 0; right: 0; padding: 12px; background: #fde7c8; color: #3b2a14; z-index: 2147483647; "
            b"pointer-events: none; }")
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")

# Counts every layout shift the page sees, from the first paint on (a shift right after input does not count).
CLS = """window.__shifts = []; new PerformanceObserver(list => { for (const e of list.getEntries())
  if (!e.hadRecentInput) window.__shifts.push(e.value); }).observe({type: 'layout-shift', buffered: true});"""


@contextmanager
def host_page(filmroll: str, body: str | dict[str, str]) -> Iterator[str]:
    """A web site of its own origin (localhost, not 127.0.0.1) whose CSP allows filmroll's origin and, for scripts,
    its own (the site's axe-core copy): nothing else. ``body``: the page's, or one per path ("/grid": …)."""
    csp = (f"default-src 'none'; script-src {filmroll} 'self'; img-src {filmroll}; connect-src {filmroll}; "
           "style-src 'self'")
    bodies = {"/": body} if isinstance(body, str) else body

    def page(html: str) -> bytes:
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
                f"content='width=device-width, initial-scale=1'><title>A bakery</title>"
                f"<link rel=stylesheet href=/host.css></head><body><main>"
                f"<h1>Our bakery</h1>{html}</main><footer><p>The bakery's own footer</p></footer></body></html>"
                ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 5  # a connection the browser opened ahead and never used ends, and its socket is closed

        def do_GET(self) -> None:
            if self.path == "/axe.js":
                found, kind = AXE.read_bytes(), "text/javascript"
            elif self.path == "/host.css":  # a footer fixed to the window, which the lightbox must cover
                found, kind = HOST_CSS, "text/css"
            elif self.path in bodies:
                found, kind = page(bodies[self.path]), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(found)

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


def _watched(browser, width: int):  # type: ignore[no-untyped-def]
    """A page at this width that counts layout shifts, and lists every request and every CSP refusal."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.add_init_script(CLS)
    requested: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return context, page, requested, refused


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
        layouts = {f"/{layout}": f'<script type="module" src="{app.base_url}/widget.js"></script>'
                   f'<filmroll-feed src="{app.base_url}/feeds/bakery.json" layout="{layout}" columns="4" limit="9" '
                   f'header="full"></filmroll-feed>' for layout in LAYOUTS}
        with host_page(app.base_url, {"/": snippet, **layouts}) as site:
            context, page, requested, refused = _watched(browser, 1280)
            page.goto(site)
            page.wait_for_function("() => document.querySelector('filmroll-feed')?.shadowRoot"
                                   "?.querySelectorAll('li:not(.spare)').length === 9", timeout=30_000)
            # Every tile in view (lazy ones too), then every picture must have loaded.
            page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
            page.wait_for_function("() => [...document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('li:not(.spare) img')].every(i => i.complete && i.naturalWidth)",
                                   timeout=30_000)
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
            page.keyboard.press("ArrowLeft")
            assert _shadow(page, "return root.querySelector('[part=counter]').textContent") == f"1 / {children}"
            page.keyboard.press("Escape")
            assert _shadow(page, "return root.querySelector('dialog').open") is False
            assert _shadow(page, "return root.activeElement?.getAttribute('part')") == "tile"  # focus came back

            # Load more, to the 60th post and past it.
            more = page.locator("filmroll-feed").locator("[part~=load-more]")
            more.dblclick()  # a double press loads one more page, not two
            page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('li:not(.spare)').length === 18")
            # A double press whose page came before its second half: that half lands on a new tile, opens nothing.
            more.scroll_into_view_if_needed()
            box = more.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.click(x, y)
            page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                                   ".querySelectorAll('li:not(.spare)').length === 27")
            assert _shadow(page, f"return root.elementFromPoint({x}, {y})?.closest('[part=tile]') !== null")
            page.mouse.down(click_count=2)
            page.mouse.up(click_count=2)
            assert _shadow(page, "return root.querySelector('dialog').open") is False
            while (count := _shadow(page, "return root.querySelectorAll('li:not(.spare)').length")) < 60:
                more.click()
                page.wait_for_function(f"() => document.querySelector('filmroll-feed').shadowRoot"
                                       f".querySelectorAll('li:not(.spare)').length > {count}")
            shown = _shadow(page, "return root.querySelectorAll('li:not(.spare)').length")
            assert shown == min(63, posts) and requested.count(f"{app.base_url}/widget.js") == 1
            alt = _shadow(page, "return root.querySelectorAll('li img')[59].alt")
            assert alt == every[59]["alt_text"]
            context.close()

            # axe-core needs to be injected, which the strict CSP rightly forbids: a second look without it.
            context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
            page = context.new_page()
            page.goto(site)
            page.wait_for_function("() => document.querySelector('filmroll-feed')?.shadowRoot"
                                   "?.querySelectorAll('li:not(.spare)').length === 9", timeout=30_000)
            assert accessibility_violations(page) == []
            page.goto(f"{app.base_url}/feeds/bakery/embed")
            assert accessibility_violations(page) == []
            context.close()

            for layout in LAYOUTS:
                for width in (390, 768, 1280):
                    _every_control_at(browser, site + layout, app.base_url, layout, width, every)

        # JavaScript off: the fragment shows every post of its page, in the widget's look: the header, rows with no
        # lone tile (a page of four has its fourth post span the row), a styled link to the next page.
        make_served_feed(admin, database_url, feed_service.FeedSpec("Four", "four", ("1",), post_limit=4))
        for width in (390, 768, 1280):
            context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": 900})
            page = context.new_page()
            for slug, shown in (("four", 4), ("bakery", 12)):
                page.goto(f"{app.base_url}/feeds/{slug}/embed")
                assert page.locator(".filmroll-post img").count() == shown
                assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
                rows: dict[int, list[float]] = {}
                for box in page.evaluate("() => [...document.querySelectorAll('.filmroll-tile')].map(t => "
                                         "t.getBoundingClientRect().toJSON())"):
                    rows.setdefault(round(box["top"]), []).append(box["width"])
                *full, last = rows.values()
                assert all(len(row) == 3 for row in full) and (len(last) in (2, 3) or last[0] > 2 * full[0][0]), rows
                assert "@" in page.locator(".filmroll-header").inner_text()
                assert page.locator(".filmroll-more a.filmroll-button").count() == 1
                deadline = time.monotonic() + 20
                while not page.evaluate("() => [...document.querySelectorAll('.filmroll-post img')].slice(0, 3)"
                                        ".every(i => i.complete && i.naturalWidth)"):
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                if SHOTS and width in (390, 1280) and slug == "bakery":
                    page.screenshot(path=os.path.join(SHOTS, f"fragment-{width}.jpg"), type="jpeg", quality=80,
                                    full_page=True)
            context.close()
        admin.close()


def _every_control_at(browser, url: str, filmroll: str, layout: str, width: int, every: list[dict]) -> None:
    """One layout at one width, under the host's strict CSP: no horizontal scroll, whole rows (no lone tile), the
    header with the account's numbers, every control reached and worked by the keyboard, a lightbox that covers the
    page and keeps the focus, no layout shift, no picture from anywhere but filmroll, axe-core clean."""
    context, page, requested, refused = _watched(browser, width)
    page.goto(url)
    page.wait_for_function("() => document.querySelector('filmroll-feed')?.shadowRoot"
                           "?.querySelectorAll('li:not(.spare)').length > 0", timeout=30_000)
    page.wait_for_function("() => [...document.querySelector('filmroll-feed').shadowRoot.querySelectorAll('img')]"
                           ".filter(i => i.loading !== 'lazy').every(i => i.complete && i.naturalWidth > 0)",
                           timeout=30_000)
    name = f"{layout}-{width}"
    if SHOTS and width in (390, 1280):
        page.screenshot(path=os.path.join(SHOTS, f"widget-{name}.jpg"), type="jpeg", quality=80, full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), name
    tiles = _shadow(page, """return [...root.querySelectorAll('li:not(.spare) .tile')].map(t => {
        const r = t.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top)]; })""")
    assert len(tiles) >= 1
    if layout in ("grid", "masonry"):
        per_row = len({left for left, _ in tiles})
        assert per_row >= 2 and len(tiles) % per_row == 0, (name, tiles)  # whole rows while more posts wait
    if layout == "list":
        assert len({left for left, _ in tiles}) == 1
    head = _shadow(page, "return root.querySelector('[part=header]').innerText")
    assert "@" in head and "followers" in head, head
    assert _shadow(page, "return root.querySelector('[part=follow]').href").startswith("https://www.instagram.com/")

    # The keyboard reaches every control: Tab from the top of the page through the widget.
    reached = []
    page.evaluate("() => document.activeElement?.blur()")
    for _ in range(40):
        page.keyboard.press("Tab")
        part = _shadow(page, "const a = root.activeElement; return a ? (a.getAttribute('part') || a.className) : null")
        if part:
            reached.append(part)
    wanted = {"follow", "tile", "more load-more"} | ({"next", "dot"} if layout == "carousel" else set())
    assert wanted <= set(reached), (name, reached)
    if layout == "carousel":  # the arrows and the dots work from the keyboard
        # Tabbing through the tiles scrolled the row to show each; back to its start first.
        _shadow(page, "root.querySelector('ul').scrollTo({left: 0, behavior: 'instant'})")
        page.wait_for_function("() => { const root = document.querySelector('filmroll-feed').shadowRoot;"
                               " return root.querySelector('.dot')?.getAttribute('aria-current') === 'true'"
                               " && !root.querySelector('.arrow.on').disabled; }")
        _shadow(page, "root.querySelector('.arrow.on').focus()")
        assert _shadow(page, "return root.activeElement?.getAttribute('aria-label')") == "Next posts"
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot.querySelector('ul')"
                               ".scrollLeft > 0")
        page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot"
                               ".querySelectorAll('.dot')[1]?.getAttribute('aria-current') === 'true'")
        _shadow(page, "root.querySelector('.dot').focus()")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('filmroll-feed').shadowRoot.querySelector('ul')"
                               ".scrollLeft === 0")

    # The lightbox (of the first album): opened from the keyboard, opaque over the whole page, telling the post's
    # story, the focus kept inside; Escape gives it back.
    album = next(n for n, p in enumerate(every[:8]) if p["type"] == "CAROUSEL_ALBUM")
    post = every[album]
    _shadow(page, f"root.querySelectorAll('.tile')[{album}].focus()")
    page.keyboard.press("Enter")
    assert _shadow(page, "return root.querySelector('dialog').open") is True
    cover = _shadow(page, """const d = root.querySelector('dialog'), r = d.getBoundingClientRect();
        const corners = [[1, 1], [innerWidth - 2, 1], [1, innerHeight - 2], [innerWidth - 2, innerHeight - 2]];
        return {box: [r.left, r.top, r.width, r.height], alpha: getComputedStyle(d).backgroundColor,
                inside: corners.every(([x, y]) => d.contains(root.elementFromPoint(x, y)))}""")
    assert cover["box"] == [0, 0, width, 900] and cover["inside"], (name, cover)
    assert cover["alpha"].startswith("rgb("), cover  # no alpha: opaque
    story = _shadow(page, "return root.querySelector('[part=story]').innerText")
    assert "View on Instagram" in story and f"@{post['username']}" in story, story
    assert f"1 / {len(post['children'])}" == _shadow(page, "return root.querySelector('[part=counter]').textContent")
    told = _shadow(page, """const s = root.querySelector('[part=story]'); return {
        tags: [...s.querySelectorAll('a[href^="https://www.instagram.com/explore/tags/"]')].map(a => a.textContent),
        when: s.querySelector('time')?.getAttribute('datetime')}""")
    assert set(told["tags"]) == {f"#{t}" for t in post["hashtags"]} and told["when"] == post["timestamp"]
    for _ in range(8):
        page.keyboard.press("Tab")
        assert _shadow(page, "return root.querySelector('dialog').contains(root.activeElement)"), name
    if SHOTS and width in (390, 1280) and layout == "grid":
        page.wait_for_timeout(300)
        page.screenshot(path=os.path.join(SHOTS, f"widget-lightbox-{width}.jpg"), type="jpeg", quality=80)
    page.keyboard.press("Escape")
    assert _shadow(page, "return root.activeElement?.getAttribute('part')") == "tile"

    # "Load more" by the keyboard: whole rows again, the focus on the first new post.
    before = _shadow(page, "return root.querySelectorAll('li:not(.spare)').length")
    _shadow(page, "root.querySelector('[part~=load-more]').focus()")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('filmroll-feed').shadowRoot"
                           f".querySelectorAll('li:not(.spare)').length > {before}")
    assert _shadow(page, "return [...root.querySelectorAll('li:not(.spare)')].indexOf("
                         "root.activeElement.closest('li'))") == before
    assert page.evaluate("() => window.__shifts.reduce((a, b) => a + b, 0)") == 0, name
    assert refused == [], refused
    assert [u for u in requested if not u.startswith((filmroll, url.rsplit("/", 1)[0]))] == []
    assert accessibility_violations(page, url.rsplit("/", 1)[0] + "/axe.js") == [], name
    context.close()
