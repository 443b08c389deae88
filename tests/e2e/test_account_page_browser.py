"""The account page in Chromium: every post's picture loads from filmroll's own storage (no request leaves for
Instagram's CDN), at a phone's width and a desktop's, without sideways scrolling."""

from __future__ import annotations

import functools
import os

import pytest

from tests.e2e.conftest import accessibility_violations, reloaded_summary
from tests.e2e.test_web_connect_browser import connect_in_the_browser
from tests.webapp import running_filmroll, wait_until_mirrored

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")  # a directory to keep the screenshots in (docs/screenshots)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_account_page_shows_the_mirrored_pictures_on_a_phone_and_a_desktop(sandbox, database_url, browser,
                                                                              tmp_path):
    # bypass_csp: only so that axe-core can be injected (filmroll's CSP allows no inline script, rightly).
    context = browser.new_context(ignore_https_errors=True, bypass_csp=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    with running_filmroll(sandbox, database_url, https=True, worker=True, mirror=True) as app:
        account = connect_in_the_browser(page, app, sandbox, 5)
        assert accessibility_violations(page) == []
        page.click(f"text=@{account['username']}")
        posts = account["media_count"]
        wait_until_mirrored(functools.partial(reloaded_summary, page), posts)
        for width, height, name in ((1280, 900, "desktop"), (390, 844, "phone")):
            page.set_viewport_size({"width": width, "height": height})
            page.reload()
            images = page.locator("#posts img")
            assert images.count() == min(posts, 24)  # pages of 24
            # Square tiles that show the whole picture, and one word (and icon) for each kind of post.
            squares = page.evaluate("[...document.querySelectorAll('#posts .square')].map(s => { const r ="
                                    " s.getBoundingClientRect(); const i = s.querySelector('img'); return [r.width,"
                                    " r.height, i && getComputedStyle(i).objectFit]; })")
            assert all(abs(w - h) < 1 and fit == "contain" for w, h, fit in squares), squares
            kinds = page.locator("#posts .post-meta .kind").all_inner_texts()
            assert kinds and all(k in ("Photo", "Video", "Reel") or k.startswith("Album of ") for k in kinds), kinds
            assert page.locator("#posts .post-meta .kind svg").count() == sum(k != "Photo" for k in kinds)
            for n in range(images.count()):
                images.nth(n).scroll_into_view_if_needed()
            page.wait_for_function("[...document.images].every(i => i.complete)")
            broken = page.evaluate("[...document.images].filter(i => !i.naturalWidth).map(i => i.src)")
            assert broken == []
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
            # The profile header: the mirrored profile picture, the name, and the counts Instagram gave.
            assert page.locator("#profile img.avatar").count() == 1
            assert f"@{account['username']}" in page.locator("#profile h1").inner_text()
            for field in ("media_count", "followers_count", "follows_count"):
                shown = page.locator(f"#{field.replace('_', '-')}").inner_text()
                assert shown == f"{account[field]:,}", (field, shown)
            page.evaluate("window.scrollTo(0, 0)")
            assert accessibility_violations(page) == [], name
            page.screenshot(path=str(tmp_path / f"account-{name}.png"), full_page=False)
            if SHOTS:
                page.evaluate("document.getElementById('posts-heading').scrollIntoView()")
                page.screenshot(path=os.path.join(SHOTS, f"account-posts-{name}.jpg"), type="jpeg", quality=78)
    context.close()
    pictures = [u for u in requested if "/media/" in u or "/cdn/" in u]
    assert pictures and all(u.startswith(app.base_url + "/media/") for u in pictures)  # never Instagram's CDN


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_accounts_list_reads_well_on_a_phone_and_a_desktop_and_copies_a_reconnect_link(
        sandbox, database_url, browser, tmp_path):
    from sqlalchemy import update

    from filmroll.store.database import Database
    from filmroll.store.tables import Account
    from filmroll.vault import Keyring, Vault, parse_keys
    from tests import aio
    from tests.seeding import seed_accounts

    context = browser.new_context(ignore_https_errors=True, bypass_csp=True)  # bypass_csp: for axe-core only
    page = context.new_page()
    with running_filmroll(sandbox, database_url, https=True) as app:
        connect_in_the_browser(page, app, sandbox, 11)

        async def dead() -> int:  # a second account, whose owner changed their password
            database = Database(database_url)
            try:
                vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
                (seeded,) = await seed_accounts(database, vault, sandbox, 1, first=12, due=False)
                async with database.transaction() as session:
                    await session.execute(update(Account).where(Account.id == seeded).values(
                        status="needs_reauth", status_reason="the owner changed their Instagram password, or "
                                                             "Instagram reset the session for security"))
                return seeded
            finally:
                await database.dispose()

        seeded = aio.run(dead())
        page.goto(app.base_url + "/accounts")
        for width, height, name in ((1280, 900, "desktop"), (390, 844, "phone")):
            page.set_viewport_size({"width": width, "height": height})
            page.reload()
            rows = page.locator("#accounts tbody tr")
            assert rows.count() == 2
            # The account whose owner must sign in again comes first, before the working one connected earlier.
            assert "not working" in rows.nth(0).inner_text() and "days" not in rows.nth(0).inner_text()
            assert "in 59 days" in rows.nth(1).inner_text() or "in 60 days" in rows.nth(1).inner_text()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
            card = page.evaluate("document.querySelector('.card').getBoundingClientRect().right")
            table = page.evaluate("document.querySelector('#accounts').getBoundingClientRect().right")
            assert table <= card + 0.5  # the table stays inside its card
            assert accessibility_violations(page) == [], name
            page.screenshot(path=str(tmp_path / f"accounts-{name}.png"), full_page=True)
            if SHOTS:
                page.screenshot(path=os.path.join(SHOTS, f"accounts-{name}.jpg"), type="jpeg", quality=78,
                                full_page=True)
        # "Copy reconnect link" copies a new link at once, and says so; the link is there to see as well.
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.base_url)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click(f"#reconnect-link-{seeded}")
        page.wait_for_function("document.getElementById('copy-status').textContent.includes('Copied')")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith(app.settings.public_origin() + "/reconnect?link=")
        assert page.locator("#copied-link").input_value() == copied
        assert "@sandbox12" in page.locator("#copy-status").inner_text()
        assert accessibility_violations(page) == []
        assert page.request.get(copied).status == 200  # the owner's page opens
        # Without the script, the form opens the page that shows the link.
        page.evaluate(f"document.querySelector('#reconnect-link-{seeded}').form.submit()")
        page.wait_for_url("**/reconnect-link")
        link = page.locator("#reconnect-url").input_value()
        assert link.startswith(app.settings.public_origin() + "/reconnect?link=")
        page.click("#copy-link")
        page.wait_for_function("document.getElementById('copied').textContent.length > 0")
        assert accessibility_violations(page) == []
        for width, height, name in ((1280, 900, "desktop"), (390, 844, "phone")):
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / f"reconnect-link-{name}.png"))
        assert "@sandbox12" in page.locator("h1").inner_text()
    context.close()
