"""An agency's connect link, as its client meets it in Chromium: the agency's backend makes the link through the
management API; the client opens it (no admin login), signs in to the sandbox's Instagram and allows; they land back
on the agency's page with the outcome; the account carries the agency's custom id (found by it through the API),
and the signed account.connected alert reaches the agency's webhook receiver. A second use and an expired link are
refused, saying which."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from filmroll.service import api_keys
from filmroll.store.tables import ConnectLink
from tests import aio
from tests.e2e.test_web_connect_browser import _owner_allows
from tests.webapp import running_filmroll
from tests.webhooks import webhook_receiver

pytestmark = pytest.mark.browser
SECRET = "whsec-agency-7f21"
INDEX = 17


@contextlib.contextmanager
def agency_site() -> Iterator[tuple[str, list[str]]]:
    """The agency's own site on loopback: records the paths its visitors land on."""
    landed: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            landed.append(self.path)
            body = b"<!doctype html><title>Agency</title><p>Back at the agency</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", landed
    finally:
        server.shutdown()
        server.server_close()




@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_client_connects_through_the_agencys_link(sandbox, database_url, browser, monkeypatch):
    with webhook_receiver() as receiver, agency_site() as (agency, landed):
        monkeypatch.setenv("FILMROLL_ALERTS__WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("FILMROLL_ALERTS__WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("FILMROLL_API__RETURN_ORIGINS", f'["{agency}"]')
        with running_filmroll(sandbox, database_url, https=True, worker=True) as app:
            key = aio.with_database(database_url, lambda db: api_keys.create(db, "agency", "write", actor="test"))[1]
            api = app.client(headers={"Authorization": f"Bearer {key}"}, verify=False)
            refused = api.post("/api/v1/connect-links", json={"custom_id": "client-42",
                                                               "return_url": "https://evil.example/x"})
            assert refused.status_code == 422 and "FILMROLL_API__RETURN_ORIGINS" in refused.json()["error"]["message"]
            made = api.post("/api/v1/connect-links", json={"custom_id": "client-42",
                                                            "return_url": f"{agency}/onboarding/done"})
            assert made.status_code == 201, made.text
            url = made.json()["url"]
            assert url.startswith(app.settings.public_origin() + "/connect-link?link=")

            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            page.goto(url)
            assert "Connect your Instagram account" in page.locator("h1").inner_text()
            page.click("#connect-link")
            account = sandbox.control.account(INDEX)
            _owner_allows(page, sandbox, account)
            page.wait_for_url(f"{agency}/onboarding/done?**")
            said = parse_qs(urlsplit(page.url).query)
            assert said == {"outcome": ["connected"], "custom_id": ["client-42"],
                            "account": [f"@{account['username']}"]}

            found = api.get("/api/v1/accounts", params={"custom_id": "client-42"}).json()["data"]
            assert [a["username"] for a in found] == [account["username"]] and found[0]["custom_id"] == "client-42"
            deadline = time.monotonic() + 30
            while not any(d.json().get("type") == "account.connected" for d in receiver.deliveries):
                assert time.monotonic() < deadline, [d.json() for d in receiver.deliveries]
                time.sleep(0.2)
            delivery = next(d for d in receiver.deliveries if d.json()["type"] == "account.connected")
            assert delivery.signed_with(SECRET)
            assert delivery.json()["account"]["custom_id"] == "client-42"
            assert delivery.json()["account"]["username"] == account["username"]
            assert delivery.json()["reconnect_url"] is None
            assert url.split("link=")[1] not in delivery.body.decode()  # the link's secret goes nowhere

            again = page.goto(url)
            assert again.status == 410 and "already used" in page.locator("#problem-message").inner_text()
            old = api.post("/api/v1/connect-links", json={"custom_id": "client-43", "expires_in": 300}).json()

            async def expire(database):  # type: ignore[no-untyped-def]
                async with database.transaction() as session:
                    await session.execute(update(ConnectLink).where(ConnectLink.id == old["id"]).values(
                        expires_at=database.clock.now()))
            aio.with_database(database_url, expire)
            gone = page.goto(old["url"])
            assert gone.status == 410 and "expired" in page.locator("#problem-message").inner_text()
            unknown = page.goto(app.base_url + "/connect-link?link=not-a-real-link")
            assert unknown.status == 404
            context.close()
    assert [p for p in landed if p.startswith("/onboarding/")] == [
        f"/onboarding/done?outcome=connected&custom_id=client-42&account=%40{account['username']}"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_api_keys_are_made_shown_once_and_revoked_in_the_admin_ui(sandbox, database_url, browser, tmp_path):
    from tests.e2e.conftest import accessibility_violations
    from tests.e2e.test_web_connect_browser import _sign_in

    with running_filmroll(sandbox, database_url, https=True) as app:
        context = browser.new_context(ignore_https_errors=True, bypass_csp=True)  # bypass_csp: axe-core only
        page = context.new_page()
        _sign_in(page, app)
        page.click("text=API keys")
        assert page.locator("#no-keys").count() == 1
        page.fill("#key-name", "agency backend")
        page.check("input[name=scope][value=write]")
        page.click("#make-key")
        key = page.locator("#api-key").input_value()
        assert api_keys.well_formed(key)
        page.click("#copy-link")
        page.wait_for_function("document.getElementById('copied').textContent.length > 0")
        api = app.client(headers={"Authorization": f"Bearer {key}"}, verify=False)
        assert api.post("/api/v1/connect-links", json={"custom_id": "c-1"}).status_code == 201  # a write key
        for width, height in ((1280, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width
            assert accessibility_violations(page) == []
            page.screenshot(path=str(tmp_path / f"api-keys-{width}.png"), full_page=True)
        page.goto(app.base_url + "/admin/api-keys")
        assert page.locator("#api-key").count() == 0 and key not in page.content()  # shown once
        assert "flr_" in page.locator("#api-keys").inner_text() and "agency backend" in page.content()
        page.click("#revoke-1")
        page.wait_for_url(app.base_url + "/admin/api-keys")
        assert page.locator("#no-keys").count() == 1
        assert api.get("/api/v1/accounts").status_code == 401
        context.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_return_url_the_owner_lands_on_filmrolls_own_page(sandbox, database_url, browser, tmp_path):
    from filmroll.service import connect_links

    with running_filmroll(sandbox, database_url, https=True) as app:
        async def make(database):  # type: ignore[no-untyped-def]
            return await connect_links.create(database, custom_id="walk-in", allowed_origins=[],
                                              public_origin=app.settings.public_origin(), actor="test")
        link = aio.with_database(database_url, make)
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.goto(link.url)
        for width, height in ((1280, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / f"connect-link-{width}.png"))
        page.click("#connect-link")
        account = sandbox.control.account(INDEX + 1)
        _owner_allows(page, sandbox, account)
        page.wait_for_url(app.base_url + "/connect-link/done*")  # Instagram's "#_" rides along the redirect
        said = f"@{account['username']} is connected"
        assert page.locator("#result").inner_text() == said
        assert page.reload().status == 200 and page.locator("#result").inner_text() == said  # no replay
        page.screenshot(path=str(tmp_path / "connect-link-done-390.png"))
        stranger = browser.new_context(ignore_https_errors=True).new_page()
        assert stranger.goto(app.base_url + "/connect-link/done").status == 404  # another browser sees nothing
        stranger.context.close()
        context.close()
