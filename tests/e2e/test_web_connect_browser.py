"""Connecting an account through filmroll's web UI in Chromium, over HTTPS, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.webapp import ADMIN, running_filmroll

pytestmark = pytest.mark.browser


@pytest.fixture
def https_filmroll(sandbox, database_url):
    with running_filmroll(sandbox, database_url, https=True) as app:
        yield app


@pytest.fixture
def secure_page(browser):
    context = browser.new_context(ignore_https_errors=True)  # filmroll's certificate is self-signed
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page, app):
    page.goto(app.base_url + "/login")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(app.base_url + "/accounts")


def connect_in_the_browser(page, app, sandbox, index: int) -> dict:
    """Sign in, press Connect, let the sandbox's owner of account ``index`` allow, land on the accounts page;
    returns the sandbox's account."""
    _sign_in(page, app)
    page.click("#connect")
    account = sandbox.control.account(index)
    _owner_allows(page, sandbox, account)
    page.wait_for_url(app.base_url + "/connections/*")
    page.goto(app.base_url + "/accounts")
    return account


def _owner_allows(page, sandbox, account):
    page.wait_for_url(sandbox.base_url + "/oauth/authorize?**")
    page.fill("#username", account["username"])
    page.fill("#password", "password")
    page.click("button.allow")


def test_connect_in_the_browser_then_reconnect(sandbox, https_filmroll, secure_page):
    page, app = secure_page, https_filmroll
    _sign_in(page, app)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-filmroll_session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/"
    assert page.locator("#no-accounts").is_visible()
    page.click("#connect")
    account = sandbox.control.account(12)
    _owner_allows(page, sandbox, account)
    page.wait_for_url(app.base_url + "/connections/*")
    assert page.locator("#result").inner_text() == f"Connected as @{account['username']}"
    assert "token valid until" in page.locator("#detail").inner_text()
    assert "code=" not in page.url and "state=" not in page.url
    page.click("text=Back to the accounts")
    row = page.locator("#accounts tbody tr")
    assert row.count() == 1 and f"@{account['username']}" in row.inner_text() and "active" in row.inner_text()
    # Reconnecting the same account replaces its token in place: still one row.
    page.click("#connect")
    page.wait_for_url(sandbox.base_url + "/oauth/authorize?**")
    page.click("button.allow")  # the sandbox remembers the owner's login
    page.wait_for_url(app.base_url + "/connections/*")
    assert page.locator("#result").inner_text() == f"Connected as @{account['username']}"
    page.goto(app.base_url + "/accounts")
    assert page.locator("#accounts tbody tr").count() == 1


def test_cancel_on_instagram_is_explained(sandbox, https_filmroll, secure_page):
    page, app = secure_page, https_filmroll
    _sign_in(page, app)
    page.click("#connect")
    page.wait_for_url(sandbox.base_url + "/oauth/authorize?**")
    page.click("button.cancel")
    page.wait_for_url(app.base_url + "/callback?**")
    assert page.locator("#problem-title").inner_text() == "Connection cancelled"
    assert page.locator("#problem-code").inner_text() == "access_denied"


def test_the_accounts_page_shows_sync_state_and_sync_now_works(sandbox, database_url, secure_page, tmp_path):
    import time

    page = secure_page
    with running_filmroll(sandbox, database_url, https=True, worker=True) as app:
        account = connect_in_the_browser(page, app, sandbox, 14)
        posts, last_sync = page.locator("#accounts tbody tr td.posts"), page.locator("td.last-sync")
        deadline = time.monotonic() + 30
        # The first sync stores the posts page by page and records itself last: wait for both to show.
        while (posts.inner_text() != f"{account['media_count']} of {account['media_count']}"
               or "never" in last_sync.inner_text()):
            assert time.monotonic() < deadline, (posts.inner_text(), last_sync.inner_text())
            time.sleep(0.3)
            page.reload()
        assert "UTC" in last_sync.inner_text()
        sandbox.control.add_media(14, caption="Fresh")
        page.locator("#accounts button:has-text('Sync now')").click()
        page.wait_for_url(app.base_url + "/accounts")
        while posts.inner_text() != f"{account['media_count'] + 1} of {account['media_count'] + 1}":
            assert time.monotonic() < deadline + 30, posts.inner_text()
            time.sleep(0.3)
            page.reload()
        page.screenshot(path=str(tmp_path / "accounts.png"), full_page=True)
