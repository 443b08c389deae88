"""An account's numbers in Chromium: 120 simulated days of real syncs (followers moving, four days without any
sync), then its page at a phone's width and a desktop's shows the follower chart with its gap and today's partial
point, the recent posts' engagement beside their pictures, the token's timeline and the sync lag; the CSV files say
what the charts and tables show; axe-core finds nothing serious; no request leaves filmroll's origin."""

from __future__ import annotations

import csv
import functools
import io
import os

import aiohttp
import pytest

from filmroll.platform import Clients
from filmroll.service.sync import Syncer
from filmroll.store.database import Database
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from tests import aio
from tests.e2e.conftest import accessibility_violations, reloaded_summary
from tests.e2e.test_web_connect_browser import _sign_in
from tests.harness import SCOPES, instagram_for
from tests.history import live_days
from tests.seeding import seed_accounts
from tests.webapp import running_filmroll, wait_until_mirrored

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")  # a directory to keep the screenshots in (docs/screenshots)
INDEX = 21
DAYS = 120
SKIPPED = {70, 71, 72, 73}  # within the page's 90 days


def followers(day: int) -> int:
    """A month's slow start, a jump when a reel took off, then steady growth with weekend dips."""
    base = 1_800 + 6 * day + (900 if day >= 55 else 0) + (day - 55) * 9 * (day >= 55)
    return base - (60 if day % 7 in (5, 6) else 0)


async def _history(database_url: str, keys: str, sandbox) -> int:
    database = Database(database_url)
    try:
        vault = Vault(Keyring(parse_keys(keys)))
        (account_id,) = await seed_accounts(database, vault, sandbox, 1, first=INDEX, due=False, permissions=SCOPES)
        async with aiohttp.ClientSession() as http:
            syncer = Syncer(database, vault, Clients([instagram_for(sandbox, clock=database.clock, session=http)]),
                            owner="history")
            await live_days(database, syncer, sandbox.control, account_id=account_id, index=INDEX, days=DAYS,
                            followers=followers, skipped=SKIPPED)
        return account_id
    finally:
        await database.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_accounts_follower_chart_and_engagement_read_on_a_phone_and_a_desktop(sandbox, database_url, browser,
                                                                                  tmp_path):
    for n in range(6):  # this month's posts, whatever else the sandbox's world holds for the account
        sandbox.control.add_media(INDEX, caption=f"Fresh from the kiln, batch {n + 1} #ceramics")
    keys = generate_key()
    account_id = aio.run(_history(database_url, keys, sandbox))
    # bypass_csp: only so that axe-core can be injected (filmroll's CSP allows no inline script, rightly).
    context = browser.new_context(ignore_https_errors=True, bypass_csp=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    with running_filmroll(sandbox, database_url, https=True, keys=keys, worker=True, mirror=True) as app:
        _sign_in(page, app)
        page.goto(f"{app.base_url}/accounts/{account_id}")
        wait_until_mirrored(functools.partial(reloaded_summary, page),
                            int(page.locator("#mirror-summary").inner_text().split()[0]))
        days = list(csv.DictReader(io.StringIO(page.request.get(
            f"{app.base_url}/accounts/{account_id}/followers.csv").text())))
        posts = list(csv.DictReader(io.StringIO(page.request.get(
            f"{app.base_url}/accounts/{account_id}/engagement.csv").text())))
        for width, height, name in ((1280, 900, "1280"), (390, 844, "390")):
            page.set_viewport_size({"width": width, "height": height})
            page.reload()
            # The chart: the 90 days, the four without a sync a hatched gap that splits the line in two.
            assert len(days) == 90 and sum(not d["followers_count"] for d in days) == len(SKIPPED)
            assert page.locator("#followers-chart path.series").count() == 2
            assert page.locator("#followers-chart rect.gap").count() == 1
            drawn = page.evaluate("""[...document.querySelectorAll('#followers-chart path.series')]
                .map(p => p.getAttribute('d').split(' ').length)""")
            assert sum(drawn) == sum(bool(d["followers_count"]) for d in days)  # a point a recorded day
            assert page.locator("#followers-chart circle.point.partial").count() == 1 and days[-1]["partial"]
            desc = page.locator("#followers-chart desc").text_content() or ""
            recorded = [d for d in days if d["followers_count"]]
            for day in (recorded[0], recorded[-1]):
                assert f"{int(day['followers_count']):,}" in desc
            pictures = page.locator("#engagement img")
            for n in range(pictures.count()):
                pictures.nth(n).scroll_into_view_if_needed()
            page.wait_for_function("[...document.querySelectorAll('#engagement img')].every(i => i.complete)")
            assert page.evaluate("[...document.querySelectorAll('#engagement img')].filter(i => !i.naturalWidth)"
                                 ".length") == 0
            page.locator("#insights").screenshot(path=str(tmp_path / f"insights-{name}.png"))
            if SHOTS:
                page.locator("#insights").screenshot(path=os.path.join(SHOTS, f"insights-{name}.jpg"), type="jpeg",
                                                     quality=80)
            # Its numbers, a row a day, as the CSV has them (newest first on the page).
            page.click("details.numbers summary")
            rows = page.locator("#followers-table tbody tr")
            assert rows.count() == 90
            for n in (0, 1, 17, 40, 89):
                cells = rows.nth(n).locator("td").all_inner_texts()
                want = days[89 - n]["followers_count"]
                assert cells[0] == (f"{int(want):,}" if want else "\N{EN DASH}"), (n, cells, want)
            # Engagement beside the pictures, the rate as the CSV has it.
            items = page.locator("#engagement li")
            assert items.count() == len(posts) >= 6
            for n in range(items.count()):
                rate = items.nth(n).locator(".rate").inner_text()
                if posts[n]["engagement_rate"]:
                    assert f"{float(posts[n]['engagement_rate']) * 100:.1f} %" in rate, (rate, posts[n])
                    assert ("of followers" if posts[n]["rate_basis"] == "followers" else "of reach") in rate
            assert items.first.locator("img").count() == 1
            assert page.locator("#token-timeline line.mark.expiry").count() == 1
            assert "Last synced" in page.locator("#sync-lag").inner_text()
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
            assert accessibility_violations(page) == [], name
    context.close()
    assert requested and all(u.startswith(app.base_url) or u.startswith("data:") for u in requested), \
        [u for u in requested if not u.startswith(app.base_url)][:5]
