"""Admin sign-in, sessions, CSRF and the headers every page carries."""

from __future__ import annotations

import re

import pytest

from tests.integration.web.conftest import csrf, signed_in, snapshot
from tests.webapp import ADMIN


def _login(app, username, password, client=None):
    client = client or app.client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    return client, client.post("/login", data={"csrf_token": token, "username": username, "password": password})


def _without_tokens(html: str) -> str:
    return re.sub(r'value="[^"]+"', "", html)


def test_wrong_user_and_wrong_password_look_the_same(filmroll):
    client_a, wrong_user = _login(filmroll, "nobody", "whatever-password")
    client_b, wrong_password = _login(filmroll, ADMIN[0], "not the password!")
    assert wrong_user.status_code == wrong_password.status_code == 401
    assert _without_tokens(wrong_user.text) == _without_tokens(wrong_password.text)
    client_a.close()
    client_b.close()


def test_throttling_after_five_failures_for_that_user_only(filmroll):
    client = filmroll.client()
    for _ in range(5):
        assert _login(filmroll, ADMIN[0], "wrong password!!", client)[1].status_code == 401
    _, blocked = _login(filmroll, ADMIN[0], ADMIN[1], client)  # even the right password waits
    # The fifth failure locks the username for the first lockout (60 s by default), said honestly.
    assert blocked.status_code == 429 and 50 <= int(blocked.headers["retry-after"]) <= 60
    assert re.search(r"Try again in (5\d|60) seconds", blocked.text)
    _, other = _login(filmroll, "someone-else", "wrong password!!", client)
    assert other.status_code == 401  # a different username is not throttled (this client has 14 tries left)
    client.close()


def test_session_id_is_new_at_login_and_logout_ends_it(filmroll):
    client = filmroll.client()
    client.get("/login")
    pre_login_cookies = dict(client.cookies)
    client, done = _login(filmroll, *ADMIN, client)
    session_id = client.cookies.get("filmroll_session")
    assert session_id and session_id not in pre_login_cookies.values()
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.get("/accounts").status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client)})
    replay = filmroll.client(cookies={"filmroll_session": session_id})
    assert replay.get("/accounts").status_code == 303  # back to /login: the session is gone server-side
    replay.close()
    client.close()
    # Without its CSRF token too: the cookie is cleared, so the session it named is closed server-side as well.
    client, _ = _login(filmroll, *ADMIN, filmroll.client())
    session_id = client.cookies.get("filmroll_session")
    assert client.post("/logout", data={}).status_code == 303
    replay = filmroll.client(cookies={"filmroll_session": session_id})
    assert replay.get("/accounts").status_code == 303
    replay.close()
    client.close()


def test_login_form_needs_its_csrf_token(filmroll):
    with filmroll.client() as client:
        client.get("/login")
        refused = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert refused.status_code == 403


def test_connect_without_csrf_is_refused_and_changes_nothing(filmroll, database_url):
    client = signed_in(filmroll)
    before = snapshot(database_url)
    for data in ({}, {"csrf_token": "0" * 64}):
        assert client.post("/connect", data=data).status_code == 403
    cross_site = client.post("/connect", content=b"csrf_token=x", headers={"content-type": "text/plain"})
    assert cross_site.status_code == 403
    assert snapshot(database_url) == before
    client.close()


def test_no_get_route_writes(filmroll, database_url):
    client = signed_in(filmroll)
    before = snapshot(database_url)
    for path in ("/", "/login", "/accounts", "/connections/1", "/static/filmroll.css", "/callback", "/nothing"):
        client.get(path)
    after = snapshot(database_url)
    before.pop("admin_sessions"), after.pop("admin_sessions")  # last_seen_at may move; nothing else may
    assert after == before
    client.close()


@pytest.mark.parametrize("path", ["/login", "/accounts", "/connections/99", "/callback?code=x&state=y"])
def test_security_headers_on_every_page(filmroll, path):
    client = signed_in(filmroll)
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self';" in csp and "frame-src 'self';" in csp  # our own scripts and frames only
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    client.close()


def test_pages_load_nothing_external(filmroll):
    client = signed_in(filmroll)
    for path in ("/login", "/accounts", "/callback?error=access_denied"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    client.close()
