"""The OAuth callback under attack: every crafted request is a 4xx that changes nothing and exchanges nothing."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import httpx
import pytest

from filmroll.service.connect import Connector
from filmroll.store import states
from filmroll.store.database import Database
from tests import aio, databases
from tests.integration.web.conftest import consent, signed_in, snapshot, start_connect
from tests.webapp import RunningFilmroll, running_filmroll


def _ask(client: httpx.Client, method: str, query: str, **kwargs) -> httpx.Response:
    request = client.build_request(method, "/callback", **kwargs)
    base = str(client.base_url).rstrip("/")
    request.url = httpx.URL(f"{base}/callback" + (f"?{query}" if query else ""))
    return client.send(request)


def _expired_state(database_url: str) -> str:
    async def make() -> str:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                await states.create(session, "expired-state-value-0123456789abcdefghijklmnop", session_id=None,
                                    flow="web", provider="instagram_login", redirect_uri="x",
                                    now=datetime.now(UTC) - timedelta(minutes=11),
                                    ttl=timedelta(minutes=10))
        finally:
            await database.dispose()
        return "expired-state-value-0123456789abcdefghijklmnop"

    return aio.run(make())


def _cli_state(filmroll: RunningFilmroll, database_url: str) -> str:
    from filmroll.runtime import instagram_client
    from filmroll.vault import Keyring, Vault, parse_keys

    async def make() -> str:
        database = Database(database_url)
        ig = instagram_client(filmroll.settings)
        try:
            vault = Vault(Keyring(parse_keys(filmroll.settings.vault.keys.get_secret_value())))
            url = await Connector(database, vault, ig).begin(flow="cli", session_id=None)
        finally:
            await ig.aclose()
            await database.dispose()
        return url.split("state=")[1]

    return aio.run(make())


BIG = "A" * 4096  # over the callback's 2 KB per value, under the edge's 8 KB address limit
HUGE = "A" * 9000  # over the edge's limit: refused before routing
CASES: list[tuple[str, str, str, int, str]] = [
    # (name, method, query template, expected status, expected reason code); {code} and {state} are valid values
    ("no parameters", "GET", "", 400, "missing_code"),
    ("missing state", "GET", "code={code}", 400, "missing_state"),
    ("empty state", "GET", "code={code}&state=", 400, "missing_state"),
    ("state twice, same value", "GET", "code={code}&state={state}&state={state}", 400, "duplicate_parameter"),
    ("state twice, two values", "GET", "code={code}&state={state}&state=other", 400, "duplicate_parameter"),
    ("code twice", "GET", "code={code}&code={code}&state={state}", 400, "duplicate_parameter"),
    ("unknown state", "GET", "code={code}&state=Zm9yZ2VkLXN0YXRlLXZhbHVlLW5vYm9keS1pc3N1ZWQ", 400, "unknown_state"),
    ("foreign state", "GET", "code={code}&state={foreign}", 400, "foreign_state"),
    ("expired state", "GET", "code={code}&state={expired}", 400, "expired_state"),
    ("state of the CLI flow", "GET", "code={code}&state={cli}", 400, "unknown_state"),
    ("state upper-cased", "GET", "code={code}&state={state_upper}", 400, "unknown_state"),
    ("state with spaces", "GET", "code={code}&state=%20{state}%20", 400, "unknown_state"),
    ("state with NUL", "GET", "code={code}&state={state}%00", 400, "unknown_state"),
    ("missing code", "GET", "state={state}", 400, "missing_code"),
    ("empty code", "GET", "code=&state={state}", 400, "missing_code"),
    ("code under another name", "GET", "Code={code}&state={state}", 400, "missing_code"),
    ("only the hash suffix as code", "GET", "code=%23_&state={state}", 400, "missing_code"),
    ("access denied", "GET", "error=access_denied&error_reason=user_denied&error_description=The+user+denied"
                             "+your+request&state={state}", 400, "access_denied"),
    ("access denied without state", "GET", "error=access_denied", 400, "access_denied"),
    ("code and error", "GET", "code={code}&state={state}&error=access_denied", 400, "code_and_error"),
    ("provider error", "GET", "error=server_error&error_description=oops&state={state}", 400, "provider_error"),
    ("next off-site", "GET", "code={code}&state={state}&next=https%3A%2F%2Fevil.example%2F", 400, "return_target"),
    ("redirect protocol-relative", "GET", "code={code}&state={state}&redirect=%2F%2Fevil.example", 400,
     "return_target"),
    ("return_to", "GET", "code={code}&state={state}&return_to=https://evil.example", 400, "return_target"),
    ("url javascript", "GET", "code={code}&state={state}&url=javascript:alert(1)", 400, "return_target"),
    ("continue", "GET", "code={code}&state={state}&continue=https://evil.example", 400, "return_target"),
    ("NEXT upper-case", "GET", "code={code}&state={state}&NEXT=https://evil.example", 400, "return_target"),
    ("4 KB code", "GET", f"code={BIG}&state={{state}}", 400, "oversized_parameter"),
    ("4 KB state", "GET", f"code={{code}}&state={BIG}", 400, "oversized_parameter"),
    ("4 KB extra parameter", "GET", f"code={{code}}&state={{state}}&x={BIG}", 400, "oversized_parameter"),
    ("9 KB address", "GET", f"code={{code}}&state={{state}}&x={HUGE}", 414, "uri_too_long"),
    ("bad percent-encoding in code", "GET", "code=abc%zz&state={state}", 400, "bad_encoding"),
    ("invalid UTF-8 in state", "GET", "code={code}&state=%ff%fe", 400, "bad_encoding"),
    ("truncated percent-encoding", "GET", "code={code}&state={state}%2", 400, "bad_encoding"),
    ("a thousand junk parameters", "GET", "&".join(f"p{i}=v" for i in range(1000)) + "&state={state}", 400,
     "missing_code"),
    ("POST", "POST", "code={code}&state={state}", 405, ""),
    ("PUT", "PUT", "code={code}&state={state}", 405, ""),
    ("DELETE", "DELETE", "code={code}&state={state}", 405, ""),
    ("PATCH", "PATCH", "code={code}&state={state}", 405, ""),
    ("HEAD", "HEAD", "code={code}&state={state}", 405, ""),
    ("OPTIONS", "OPTIONS", "code={code}&state={state}", 405, ""),
]
SESSION_CASES = ["no session cookie", "forged session cookie", "session after sign-out"]


@contextlib.contextmanager
def _staged(sandbox, filmroll: RunningFilmroll, database_url: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A signed-in admin with one pending, valid state and its valid code, plus states that must not pass."""
    admin = signed_in(filmroll)
    params = consent(sandbox, start_connect(admin))
    other = signed_in(filmroll)
    foreign = consent(sandbox, start_connect(other))["state"]
    values = {"code": params["code"], "state": params["state"], "state_upper": params["state"].upper(),
              "foreign": foreign, "expired": _expired_state(database_url), "cli": _cli_state(filmroll, database_url)}
    sandbox.control.clear_calls()
    try:
        yield admin, values
    finally:
        admin.close()
        other.close()


@pytest.fixture
def stage(sandbox, filmroll, database_url):
    with _staged(sandbox, filmroll, database_url) as staged:
        yield staged


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crafted_stage(request, _sandbox_server, tmp_path_factory):
    """One stage per database for every crafted request: each case asserts that it changed nothing in filmroll and
    called nothing at Instagram, so each meets the very state the first one did. The sandbox is not reset between
    the cases, so the code stays one Instagram would accept: a request wrongly let through would exchange it."""
    sandbox = _sandbox_server
    sandbox.control.reset()
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("crafted") / "filmroll.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url, name = f"sqlite:///{path}", None
    else:
        url, name = databases.postgres_database()
    try:
        with running_filmroll(sandbox, url, socket=False) as app, _staged(sandbox, app, url) as (admin, values):
            yield sandbox, url, admin, values
    finally:
        if name is not None:
            databases.drop_postgres_database(name)


def _assert_untouched(sandbox, database_url, before) -> None:
    assert snapshot(database_url) == before
    assert sandbox.control.calls(endpoint="token") == []


@pytest.mark.parametrize(("name", "method", "query", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_crafted_callback_is_refused_without_side_effects(crafted_stage, name, method, query, status, reason):
    sandbox, database_url, admin, values = crafted_stage
    sandbox.control.clear_calls()
    before = snapshot(database_url)
    response = _ask(admin, method, query.format(**values))
    assert response.status_code == status, (response.status_code, response.text[:500])
    if reason:
        assert f'<code id="problem-code">{reason}</code>' in response.text
        assert "location" not in response.headers
        assert response.headers["referrer-policy"] == "no-referrer"
    _assert_untouched(sandbox, database_url, before)


@pytest.mark.parametrize("case", SESSION_CASES)
def test_callback_without_a_live_session_is_refused(sandbox, filmroll, database_url, stage, case):
    admin, values = stage
    query = urlencode({"code": values["code"], "state": values["state"]})
    client = filmroll.client()
    if case == "forged session cookie":
        client.cookies.set("filmroll_session", "x" * 43)
    elif case == "session after sign-out":
        session_id = admin.cookies.get("filmroll_session")
        token = __import__("re").search(r'name="csrf_token" value="([^"]+)"', admin.get("/accounts").text).group(1)
        admin.post("/logout", data={"csrf_token": token})
        client.cookies.set("filmroll_session", session_id)
    before = snapshot(database_url)
    with client:
        response = _ask(client, "GET", query)
    assert response.status_code == 401
    assert '<code id="problem-code">no_session</code>' in response.text
    _assert_untouched(sandbox, database_url, before)


@pytest.mark.socket
def test_raw_non_ascii_bytes_in_the_query(sandbox, filmroll, database_url, stage):
    admin, values = stage
    before = snapshot(database_url)
    host, port = filmroll.base_url.removeprefix("http://").split(":")
    import socket

    with socket.create_connection((host, int(port))) as sock:
        cookie = f"filmroll_session={admin.cookies.get('filmroll_session')}"
        sock.sendall(b"GET /callback?code=\xff\xfe&state=" + values["state"].encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Cookie: " + cookie.encode() + b"\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    _assert_untouched(sandbox, database_url, before)


def test_the_valid_callback_works_once_then_replays_are_refused(sandbox, filmroll, database_url, stage):
    admin, values = stage
    query = urlencode({"code": values["code"], "state": values["state"]}) + "#_"
    first = _ask(admin, "GET", query.split("#")[0])
    assert first.status_code == 303 and first.headers["location"].startswith("/connections/")
    assert first.headers["referrer-policy"] == "no-referrer"
    summary = admin.get(first.headers["location"])
    account = sandbox.control.account(0)
    assert f"Connected as @{account['username']}" in summary.text
    before = snapshot(database_url)
    replay = _ask(admin, "GET", query.split("#")[0])
    assert replay.status_code == 400 and '<code id="problem-code">used_state</code>' in replay.text
    assert snapshot(database_url) == before
    assert len(sandbox.control.calls(endpoint="token")) == 1


def test_two_concurrent_deliveries_make_exactly_one_exchange(sandbox, filmroll, database_url, stage):
    admin, values = stage
    sandbox.control.add_fault("latency", endpoint="token", latency_ms=300)
    query = urlencode({"code": values["code"], "state": values["state"]})
    cookie = admin.cookies.get("filmroll_session")
    barrier, statuses = threading.Barrier(2), []

    def deliver() -> None:
        with filmroll.client(cookies={"filmroll_session": cookie}, timeout=30) as client:
            barrier.wait()
            statuses.append(_ask(client, "GET", query).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [303, 400]
    assert len(sandbox.control.calls(endpoint="token")) == 1


def test_instagram_failing_after_the_state_is_spent_explains_itself(sandbox, filmroll, database_url, stage):
    admin, values = stage
    sandbox.control.add_fault("status", endpoint="exchange", status=503, times=1)
    response = _ask(admin, "GET", urlencode({"code": values["code"], "state": values["state"]}))
    assert response.status_code == 303
    summary = admin.get(response.headers["location"])
    assert "The account was not connected" in summary.text and "temporary problem" in summary.text
    assert quote(values["code"]) not in summary.text and values["code"] not in summary.text
