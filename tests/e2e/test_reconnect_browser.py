"""An account owner follows the webhook's reconnect link in Chromium: no admin login, over HTTPS."""

from __future__ import annotations

import pytest

from tests.integration.web.test_reconnect import _prepare, _read
from tests.webapp import running_filmroll

pytestmark = pytest.mark.browser


def test_the_owner_follows_the_link_and_is_reconnected(sandbox, database_url, browser):
    with running_filmroll(sandbox, database_url, https=True) as app:
        account_id, secret = _prepare(app, database_url, sandbox)
        context = browser.new_context(ignore_https_errors=True)  # filmroll's certificate is self-signed
        page = context.new_page()
        try:
            page.goto(f"{app.base_url}/reconnect?link={secret}")
            assert page.locator("#reconnect-title").inner_text() == "Reconnect @sandbox1"
            assert "changed the password" in page.locator("#reconnect-status").inner_text()
            page.click("#reconnect")
            page.wait_for_url(sandbox.base_url + "/oauth/authorize?**")
            cookies = {c["name"]: c for c in context.cookies()}
            binding = cookies["__Host-filmroll_reconnect"]
            assert binding["secure"] and binding["httpOnly"] and binding["sameSite"] == "Lax"
            account = sandbox.control.account(1)
            page.fill("#username", account["username"])
            page.fill("#password", "password")
            page.click("button.allow")
            page.wait_for_url(app.base_url + "/reconnected*")  # Instagram's "#_" fragment survives redirects
            assert page.locator("#result").inner_text() == f"@{account['username']} is reconnected"
            assert secret not in page.url
            assert _read(database_url, account_id)[0].status == "active"
            page.goto(f"{app.base_url}/reconnect?link={secret}")
            assert page.locator("#problem-code").inner_text() == "used_link"
        finally:
            context.close()
