"""The web edge holds (issue 13): requests bounded before they are read, an atomic sign-in throttle, password checks
off the event loop, no 500 from any input, cross-site posts refused, every refusal in its mount's form with its
mount's headers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from filmroll.passwords import PasswordChecker, hash_password
from tests.integration.web.conftest import signed_in, snapshot
from tests.webapp import ADMIN, running_filmroll

PAGE_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


def _login_form(client):  # type: ignore[no-untyped-def]
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def _attempt(app, username: str, password: str, forwarded_for: str | None = None) -> int:  # type: ignore[no-untyped-def]
    """One sign-in from a browser of its own; its status."""
    with app.client() as client:
        token = _login_form(client)
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
        return client.post("/login", data={"csrf_token": token, "username": username, "password": password},
                           headers=headers).status_code


@pytest.fixture
def behind_proxy(sandbox, database_url):  # type: ignore[no-untyped-def]
    """filmroll in process, believing X-Forwarded-For from 127.0.0.1 (the in-process client's address)."""
    with running_filmroll(sandbox, database_url, socket=False, web={"trusted_proxies": ["127.0.0.1/32"]}) as app:
        yield app


def test_a_hundred_concurrent_wrong_passwords_check_at_most_five(filmroll):
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: _attempt(filmroll, ADMIN[0], "wrong password!!"), range(100)))
    checked = statuses.count(401)
    assert 1 <= checked <= 5, sorted(statuses)
    assert set(statuses) <= {401, 429}
    assert _attempt(filmroll, ADMIN[0], ADMIN[1]) == 429  # the right one, after the limit, is refused too


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_rotating_clients_meets_the_usernames_limit(behind_proxy):
    statuses = [_attempt(behind_proxy, ADMIN[0], "wrong password!!", forwarded_for=f"203.0.113.{i}")
                for i in range(20)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_rotating_usernames_meets_the_clients_limit(behind_proxy):
    statuses = [_attempt(behind_proxy, f"guess{i}", "wrong password!!", forwarded_for="198.51.100.7")
                for i in range(30)]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}, statuses
    # Another client (a made-up hop left of the real one changes nothing: the nearest untrusted hop counts).
    assert _attempt(behind_proxy, "guess99", "wrong password!!", forwarded_for="1.2.3.4, 198.51.100.7") == 429
    assert _attempt(behind_proxy, "guess99", "wrong password!!", forwarded_for="198.51.100.8") == 401


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_without_trusted_proxies_a_forwarded_for_header_is_not_believed(filmroll):
    statuses = [_attempt(filmroll, ADMIN[0], "wrong password!!", forwarded_for=f"203.0.113.{i}")
                for i in range(6)]
    assert statuses == [401] * 5 + [429]  # one client: the socket's peer


def test_the_throttle_stores_no_username(filmroll, database_url):
    typed = "my-secret-password-in-the-wrong-field"
    assert _attempt(filmroll, typed, "x" * 12) == 401
    rows = [row for rows in snapshot(database_url).values() for row in rows]
    assert rows and typed not in repr(rows) and "127.0.0.1" not in repr(rows)


def test_password_checks_run_off_the_event_loop():
    async def check() -> list[str]:
        checker = PasswordChecker(at_once=1)
        order: list[str] = []
        stored = await checker.rehash("correct horse battery staple")

        async def meanwhile() -> None:
            order.append("the loop ran")

        task = asyncio.create_task(meanwhile())
        assert await checker.verify(stored, "correct horse battery staple")
        order.append("checked")
        await task
        checker.close()
        return order

    # A check on the loop's own thread would finish before any other task could run.
    assert asyncio.run(check()) == ["the loop ran", "checked"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_sign_ins_are_checked_in_the_password_threads(filmroll):
    # Another app of this process may have left one behind. Thread objects, not idents: an ident is the thread's
    # pthread handle, which glibc hands to the next thread as soon as one ends (a CI run failed on exactly that).
    before = set(threading.enumerate())
    assert _attempt(filmroll, ADMIN[0], ADMIN[1]) == 303
    assert any(t.name.startswith("filmroll-password") and t not in before for t in threading.enumerate())


def test_password_checks_beyond_the_queue_are_answered_busy():
    async def flood() -> list[bool | str]:
        checker = PasswordChecker(at_once=1, waiting=2)
        stored = hash_password("correct horse battery staple")
        results = await asyncio.gather(*(checker.verify(stored, "wrong password!!") for _ in range(6)),
                                       return_exceptions=True)
        checker.close()
        return [r if isinstance(r, bool) else type(r).__name__ for r in results]

    assert asyncio.run(flood()) == [False, False, False, "Busy", "Busy", "Busy"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
@pytest.mark.parametrize("path", ["/login", "/connect", "/logout", "/accounts/1/sync"])
def test_a_non_ascii_csrf_token_is_refused_not_a_server_error(filmroll, path):
    client = signed_in(filmroll)
    response = client.post(path, data={"csrf_token": "ünïcødé", "username": "a", "password": "b"})
    assert response.status_code in (303, 403), response.status_code  # /logout just signs nobody out
    if response.status_code == 403:
        assert all(h in response.headers for h in PAGE_HEADERS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
@pytest.mark.parametrize("path", ["/accounts/9223372036854775808", "/accounts/99999999999999999999999/sync",
                                  "/connections/-1", "/accounts/0"])
def test_out_of_range_ids_are_not_found(filmroll, path):
    client = signed_in(filmroll)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/accounts").text).group(1)
    response = client.post(path, data={"csrf_token": token}) if path.endswith("/sync") else client.get(path)
    assert response.status_code == 404
    assert all(h in response.headers for h in PAGE_HEADERS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_a_body_over_the_limit_is_refused_before_it_is_read(filmroll, database_url):
    before = snapshot(database_url)
    with filmroll.client() as client:
        response = client.post("/login", content=b"username=" + b"a" * 20_000,
                               headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 413 and 'id="problem-code">body_too_large<' in response.text
        assert all(h in response.headers for h in PAGE_HEADERS)

        public = client.post("/meta/deauthorize", content=b"x" * 70_000)
        assert public.status_code == 413 and public.json()["code"] == "body_too_large"
        assert public.headers["content-type"] == "application/problem+json"
    assert snapshot(database_url) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_too_many_or_too_large_headers_are_431(filmroll):
    with filmroll.client() as client:
        many = client.get("/login", headers={f"x-h{i}": "1" for i in range(80)})
        large = client.get("/login", headers={"x-big": "a" * 20_000})
        feed = client.get("/feeds/nothing.json", headers={"x-big": "a" * 20_000})
    assert many.status_code == large.status_code == 431
    assert all(h in large.headers for h in PAGE_HEADERS)
    assert feed.status_code == 431 and feed.json()["code"] == "headers_too_large"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
@pytest.mark.parametrize("headers", [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"},
                                     {"origin": "null"}, {"sec-fetch-site": "same-site"}])
def test_cross_site_posts_are_refused_before_any_handler(filmroll, database_url, headers):
    client = signed_in(filmroll)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/accounts").text).group(1)
    before = snapshot(database_url)
    response = client.post("/connect", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 403 and 'id="problem-code">cross_site<' in response.text
    assert snapshot(database_url) == before
    same = client.post("/connect", data={"csrf_token": token},
                       headers={"origin": filmroll.base_url, "sec-fetch-site": "same-origin"})
    assert same.status_code == 303


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_a_login_cookie_planted_with_a_token_of_its_own_does_not_sign_in(filmroll):
    """The old token was an HMAC of the cookie with a fixed string: anyone could compute it for a planted cookie."""
    import hashlib
    import hmac

    with filmroll.client() as client:
        client.cookies.set("filmroll_login", "planted")
        forged = hmac.new(b"planted", b"filmroll csrf", hashlib.sha256).hexdigest()
        response = client.post("/login", data={"csrf_token": forged, "username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 403


def _raw(port: int, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """Send a request by hand (chunks, pauses), then read whatever the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause)
        except OSError:
            pass  # the server answered and closed while we were still sending: what we want to see
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_streamed_body_is_cut_off_at_the_limit_and_a_slow_one_in_time(sandbox, database_url):
    with running_filmroll(sandbox, database_url, web={"body_timeout_seconds": 1}) as app:
        port = int(app.base_url.rsplit(":", 1)[1])
        chunked = (b"POST /reconnect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        part = b"400\r\n" + b"a" * 1024 + b"\r\n"
        answer = _raw(port, chunked, [part] * 64 + [b"0\r\n\r\n"])
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"body_too_large" in answer and b"content-security-policy" in answer.lower()

        slow = (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        started = time.monotonic()
        answer = _raw(port, slow, [b"username=a"] + [b"&"] * 4, pause=0.5)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer and time.monotonic() - started < 10


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the edge, not the database
def test_no_redirect_is_built_from_the_host_header(filmroll):
    """Starlette's trailing-slash redirect once answered `Location: http://evil.example/feeds/x.json`, built from
    the request's Host header."""
    client = filmroll.client()
    for path in ("/feeds/bakery.json/", "/widget.js/", "/accounts/", "/login/", "/healthz/"):
        answer = client.get(path, headers={"Host": "evil.example"})
        assert answer.status_code not in (301, 302, 303, 307, 308), (path, answer.status_code)
        assert "evil.example" not in answer.headers.get("location", "") + answer.text, path
