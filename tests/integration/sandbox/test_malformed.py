"""Malformed requests of every kind get Instagram's error, never a 500 from the sandbox."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import long_lived

TOKEN = "{token}"
CASES = [
    # (method, raw path+query, body, content-type)
    ("GET", "/me?access_token=%ff%fe", None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=%c3%28", None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=" + "id," * 3000, None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=" + "a" * 20_000, None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=media{media{media{media{id}}}}", None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=media.limit(abc){id}", None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=media.limit(-3){id}", None, None),
    ("GET", "/me?access_token=" + TOKEN + "&fields=%00", None, None),
    ("GET", "/me/media?access_token=" + TOKEN + "&after=%ff", None, None),
    ("GET", "/me/media?access_token=" + TOKEN + "&after=QVFI%2F%2F%2F%2F", None, None),
    ("GET", "/me/media?access_token=" + TOKEN + "&since=99999999999999999999", None, None),
    ("GET", "/me/media?access_token=" + TOKEN + "&limit=1&limit=%ff", None, None),
    ("GET", "/me/insights?access_token=" + TOKEN + "&metric=reach&period=day&since=abc", None, None),
    ("GET", "/me/insights?access_token=" + TOKEN + "&metric=,,,&period=day", None, None),
    ("GET", "/%ff%fe?access_token=" + TOKEN, None, None),
    ("GET", "/v25.0?access_token=" + TOKEN, None, None),
    ("GET", "/v25.0/?access_token=" + TOKEN, None, None),
    ("GET", "/v.0/me?access_token=" + TOKEN, None, None),
    ("GET", "/me?" + "x=1&" * 5000, None, None),
    ("GET", "/me?access_token", None, None),
    ("GET", "/me?=&&=", None, None),
    ("HEAD", "/me?access_token=" + TOKEN, None, None),
    ("OPTIONS", "/me", None, None),
    ("PATCH", "/me?access_token=" + TOKEN, b"{}", "application/json"),
    ("POST", "/access_token?grant_type=ig_exchange_token", b"\xff\xfe", "application/x-www-form-urlencoded"),
    ("GET", "/access_token?grant_type=%ff", None, None),
    ("GET", "/refresh_access_token?grant_type=ig_refresh_token&access_token=%80", None, None),
    ("DELETE", "/refresh_access_token", None, None),
    ("GET", "/oauth/authorize?client_id=%ff", None, None),
    ("GET", "/oauth/authorize?" + "client_id=1&" * 2000, None, None),
    ("POST", "/oauth/authorize", b"\x00\x01\x02", "application/octet-stream"),
    ("POST", "/oauth/authorize", b"request_id=" + b"a" * 100_000, "application/x-www-form-urlencoded"),
    ("PUT", "/oauth/authorize", None, None),
    ("POST", "/oauth/access_token", b"a" * 200_000, "application/x-www-form-urlencoded"),
    ("POST", "/oauth/access_token", b"--b\r\n\r\n--b--", "multipart/form-data; boundary=b"),
    ("POST", "/oauth/access_token", b"{}", "multipart/form-data"),
    ("POST", "/oauth/access_token", b"client_id=1", "text/plain"),
    ("GET", "/cdn/v/t51.29350-15/x.jpg?oh=00_x&oe=%ff", None, None),
    ("GET", "/cdn/v/t51.29350-15/..%2F..%2Fetc%2Fpasswd?oh=a&oe=1", None, None),
    ("POST", "/cdn/v/t51.29350-15/x.jpg", None, None),
    ("GET", "/_sandbox/accounts?limit=abc", None, None),
    ("GET", "/_sandbox/accounts/%ff", None, None),
    ("POST", "/_sandbox/faults", b"[]", "application/json"),
    ("POST", "/_sandbox/tokens", b'{"first": -1}', "application/json"),
    ("PATCH", "/_sandbox/switches", b"[1,2]", "application/json"),
    ("PATCH", "/_sandbox/switches", b"\xff", "application/json"),
    ("GET", "/_sandbox/calls?since_id=x", None, None),
    ("DELETE", "/_sandbox/media/123", None, None),
]


@pytest.mark.parametrize(("method", "target", "body", "content_type"), CASES)
def test_malformed_request_gets_a_clean_4xx(sandbox, http, method, target, body, content_type):
    token = long_lived(http, sandbox, 99)
    headers = {"content-type": content_type} if content_type else {}
    request = http.build_request(method, sandbox.base_url, content=body, headers=headers)
    request.url = httpx.URL(sandbox.base_url + target.replace(TOKEN, token))
    response = http.send(request)
    assert 400 <= response.status_code < 500 or (method in ("HEAD",) and response.status_code == 200), (
        response.status_code, response.text[:300])
    assert all(c["outcome"] != "http 500" for c in sandbox.control.calls())


def test_an_8kb_access_token_parameter(sandbox, http):
    response = http.get("/me", params={"access_token": "IGAA" + "x" * 8192})
    assert response.status_code == 400 and response.json()["error"]["code"] == 190


_text = st.text(alphabet=string.printable + "é☕\x00", max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/me", "/me/media", "/me/insights", "/access_token", "/refresh_access_token",
                             "/oauth/access_token", "/oauth/authorize", "/v25.0/me/media", "/17900000000000000"]),
       params=st.dictionaries(st.sampled_from(["fields", "limit", "after", "before", "since", "until", "metric",
                                               "period", "grant_type", "client_id", "redirect_uri", "scope",
                                               "breakdown", "metric_type", "response_type", "code"]),
                              _text, max_size=5),
       method=st.sampled_from(["GET", "POST"]))
def test_fuzzed_parameters_never_make_the_sandbox_fail(sandbox_for_fuzz, path, params, method):
    _sandbox, client, token = sandbox_for_fuzz
    response = client.request(method, path, params={**params, "access_token": token})
    assert response.status_code < 500, (path, params, response.text[:300])


@pytest.fixture
def sandbox_for_fuzz(sandbox, http):
    return sandbox, http, long_lived(http, sandbox, 99)
