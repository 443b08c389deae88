"""The consent page in a real browser: log in, press Allow or Cancel, land on the redirect URI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

pytestmark = pytest.mark.browser


def _authorize_url(sandbox, state):
    return sandbox.base_url + "/oauth/authorize?" + urlencode({
        "client_id": sandbox.app_id, "redirect_uri": sandbox.redirect_uri, "response_type": "code",
        "scope": "instagram_business_basic,instagram_business_manage_insights", "state": state})


def _catch_redirects(page, sandbox):
    # Nothing listens on the redirect URI in this test: answer it inside the browser so the landing URL is kept.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(sandbox.redirect_uri))
    page.route(origin + "/**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                            body="<html><body>callback reached</body></html>"))


def test_login_and_allow_lands_on_the_redirect_uri_with_code_and_state(sandbox, page, tmp_path: Path):
    _catch_redirects(page, sandbox)
    account = sandbox.control.account(0)
    page.goto(_authorize_url(sandbox, "browser-state-123"))
    assert page.get_by_text("would like to access your account").is_visible()
    page.screenshot(path=str(tmp_path / "consent.png"))
    page.fill("#username", account["username"])
    page.fill("#password", "password")
    page.click("button.allow")
    page.wait_for_url(sandbox.redirect_uri + "?**")
    landed = urlsplit(page.url)
    query = parse_qs(landed.query)
    assert query["state"] == ["browser-state-123"]
    assert query["code"][0].startswith("AQ")
    assert landed.fragment == "_"
    assert page.get_by_text("callback reached").is_visible()
    # The code is real: the sandbox exchanges it once.
    import httpx

    token = httpx.post(sandbox.base_url + "/oauth/access_token", data={
        "client_id": sandbox.app_id, "client_secret": sandbox.app_secret, "grant_type": "authorization_code",
        "redirect_uri": sandbox.redirect_uri, "code": query["code"][0]})
    assert token.status_code == 200 and str(token.json()["user_id"]) == account["scoped_id"]


def test_wrong_password_shows_the_error_and_stays(sandbox, page):
    _catch_redirects(page, sandbox)
    page.goto(_authorize_url(sandbox, "s"))
    page.fill("#username", sandbox.control.account(0)["username"])
    page.fill("#password", "not-it")
    page.click("button.allow")
    assert "password was incorrect" in page.locator("#login-error").inner_text()
    assert page.url.startswith(sandbox.base_url)


def test_cancel_lands_on_the_redirect_uri_with_access_denied(sandbox, page):
    _catch_redirects(page, sandbox)
    page.goto(_authorize_url(sandbox, "cancel-state"))
    page.click("button.cancel")  # formnovalidate: no credentials needed to say no
    page.wait_for_url(sandbox.redirect_uri + "?**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["error"] == ["access_denied"] and query["error_reason"] == ["user_denied"]
    assert query["state"] == ["cancel-state"] and "code" not in query


def test_second_authorization_in_the_same_browser_skips_the_login(sandbox, page):
    _catch_redirects(page, sandbox)
    account = sandbox.control.account(2)
    page.goto(_authorize_url(sandbox, "one"))
    page.fill("#username", account["username"])
    page.fill("#password", "password")
    page.click("button.allow")
    page.wait_for_url(sandbox.redirect_uri + "?**")
    page.goto(_authorize_url(sandbox, "two"))
    assert page.locator("#current-user").inner_text() == "@" + account["username"]
    page.click("button.allow")
    page.wait_for_url(sandbox.redirect_uri + "?**")
    assert parse_qs(urlsplit(page.url).query)["state"] == ["two"]
