"""Instagram's wire format, from strings: both shapes of every response, and every error class."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from filmroll import errors
from filmroll.platform import wire
from filmroll.secret import Secret

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("body", [
    {"access_token": "IGAAx", "user_id": 27640875392278831, "permissions": ["instagram_business_basic"]},
    {"access_token": "IGAAx", "user_id": "27640875392278831", "permissions": "instagram_business_basic"},
    {"data": [{"access_token": "IGAAx", "user_id": "27640875392278831",
               "permissions": "instagram_business_basic"}]},
])
def test_short_lived_flat_and_wrapped(body):
    grant = wire.parse_short_lived(body)
    assert grant.access_token.reveal() == "IGAAx" and grant.user_id == "27640875392278831"
    assert grant.permissions == ("instagram_business_basic",)


def test_permissions_split_on_commas_and_spaces():
    grant = wire.parse_short_lived({"access_token": "t", "user_id": 1, "permissions": "a,b c"})
    assert grant.permissions == ("a", "b", "c")


def test_large_numeric_user_ids_keep_every_digit():
    grant = wire.parse_short_lived(json.loads('{"access_token":"t","user_id":17841405793187218999}'))
    assert grant.user_id == "17841405793187218999"


@pytest.mark.parametrize("body", [
    {}, {"access_token": "", "user_id": 1}, {"access_token": "t"}, {"access_token": "t", "user_id": "abc"},
    {"access_token": 5, "user_id": 1}, {"access_token": "has space", "user_id": 1}, {"data": []},
    {"data": [{}, {}]}, [], "IGAA", None, {"access_token": "t", "user_id": True},
    {"access_token": "t", "user_id": 1, "permissions": 7},
])
def test_short_lived_malformed(body):
    with pytest.raises(errors.MalformedResponseError):
        wire.parse_short_lived(body)


def test_long_lived_expiry_counts_from_the_request():
    grant = wire.parse_long_lived({"access_token": "L", "token_type": "bearer", "expires_in": 5183944}, NOW)
    assert grant.expires_in == 5183944 and (grant.expires_at - NOW).total_seconds() == 5183944
    assert wire.parse_long_lived({"access_token": "L", "expires_in": "5184000"}, NOW).expires_in == 5184000


@pytest.mark.parametrize("body", [
    {"access_token": "L"}, {"access_token": "L", "expires_in": "soon"}, {"access_token": "L", "expires_in": -1},
    {"access_token": "L", "expires_in": 0}, {"access_token": "", "expires_in": 100},
    {"access_token": "L", "expires_in": 10**12}, {"access_token": "L", "expires_in": 1.5},
])
def test_long_lived_malformed_never_yields_a_token(body):
    with pytest.raises(errors.MalformedResponseError):
        wire.parse_long_lived(body, NOW)


@pytest.mark.parametrize("body", [
    {"id": "28978671838402975", "user_id": "17841477965412210", "username": "a", "account_type": "Business"},
    {"data": [{"id": "28978671838402975", "user_id": "17841477965412210", "username": "a",
               "account_type": "BUSINESS"}]},
])
def test_profile_flat_wrapped_and_account_type_case(body):
    profile = wire.parse_profile(body)
    assert profile.user_id == "17841477965412210" and profile.app_scoped_id == "28978671838402975"
    assert profile.account_type == "BUSINESS"


_EDGE = {"data": [{"id": "1"}, {"id": "2"}], "paging": {"cursors": {"after": "QVFI"}, "next": "https://g/next"}}


@pytest.mark.parametrize("body", [
    {"id": "28978671838402975", "user_id": "17841477965412210", "media": _EDGE},
    {"data": [{"id": "28978671838402975", "user_id": "17841477965412210", "media": _EDGE}]},
])
def test_the_media_edge_is_read_from_the_profile_flat_or_wrapped(body):
    profile, page = wire.parse_profile_and_media(body)
    assert profile.user_id == "17841477965412210"
    assert [item.id for item in page.items] == ["1", "2"] and page.next_url == "https://g/next"


def test_a_profile_without_the_media_edge_has_an_empty_page():
    _, page = wire.parse_profile_and_media({"data": [{"id": "28978671838402975"}]})
    assert page.items == () and page.next_url is None


def test_media_item_with_children_and_missing_optional_fields():
    media = wire.parse_media({"id": "1", "media_type": "CAROUSEL_ALBUM", "timestamp": "2019-09-26T22:36:43+0000",
                              "children": {"data": [{"id": "2", "media_type": "IMAGE"}, {"id": "3"}]}})
    assert media.timestamp == datetime(2019, 9, 26, 22, 36, 43, tzinfo=UTC)
    assert media.caption is None and media.media_url is None
    assert [c.id for c in media.children] == ["2", "3"]


def test_media_page_with_and_without_next():
    page = wire.parse_media_page({"data": [{"id": "1"}], "paging": {"cursors": {"after": "QVFI"},
                                                                    "next": "https://g/next"}})
    assert page.next_url == "https://g/next" and page.after == "QVFI"
    assert wire.parse_media_page({"data": []}).next_url is None
    with pytest.raises(errors.MalformedResponseError):
        wire.parse_media_page({"paging": {}})


def test_usage_headers():
    usage = wire.parse_usage({
        "X-Business-Use-Case-Usage": json.dumps({"1784": [{"type": "instagram", "call_count": 91,
                                                           "total_cputime": 5, "total_time": 7,
                                                           "estimated_time_to_regain_access": 19}]}),
        "X-App-Usage": '{"call_count":28,"total_cputime":25,"total_time":25}'})
    assert (usage.account_percent, usage.app_percent, usage.regain_seconds) == (91, 28, 19 * 60)
    assert wire.parse_usage({"X-App-Usage": "not json"}) == wire.parse_usage({})


def _graph(code, subcode=None, message="m", status=400, headers=None):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode:
        error["error_subcode"] = subcode
    return wire.error_from_response(status, headers or {}, json.dumps({"error": error}).encode())


@pytest.mark.parametrize(("subcode", "words"), [
    (460, "changed their Instagram password"), (463, "expired"), (467, "revoked"), (458, "removed the app"),
    (None, "no longer accepts"),
])
def test_190_is_token_invalid_with_a_human_reason(subcode, words):
    error = _graph(190, subcode)
    assert isinstance(error, errors.TokenInvalidError) and words in error.reason
    assert error.subcode == subcode and "Reconnect" in str(error)


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001, 80002])
def test_throttling_codes(code):
    buc = json.dumps({"1": [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 7}]})
    error = _graph(code, headers={"X-Business-Use-Case-Usage": buc})
    assert isinstance(error, errors.RateLimitedError) and error.retry_after == 420


def test_http_429_and_retry_after():
    error = wire.error_from_response(429, {"Retry-After": "120"}, b"")
    assert isinstance(error, errors.RateLimitedError) and error.retry_after == 120


@pytest.mark.parametrize(("status", "body", "kind"), [
    (400, {"error": {"code": 1, "message": "An unknown error has occurred."}}, errors.TransientError),
    (500, {"error": {"code": 2, "message": "x"}}, errors.TransientError),
    (502, None, errors.TransportError),
    (400, {"error": {"code": 10, "message": "(#10) Application does not have permission"}},
     errors.PermissionMissingError),
    (400, {"error": {"code": 100, "error_subcode": 33, "message": "Unsupported get request."}}, errors.NotFoundError),
    (400, {"error": {"code": 100, "message": "Unsupported request - method type: get"}}, errors.MethodFlipError),
    (400, {"error": {"code": 100, "message": "(#100) must be at least 24 hours old"}}, errors.RefreshTooEarlyError),
    (400, {"error": {"code": 100, "message": "(#100) Tried accessing nonexisting field"}}, errors.RequestError),
    (400, {"error": {"code": 1, "message": "Error validating client secret."}}, errors.AppCredentialsError),
    (400, {"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was "
                                                                       "already used"}, errors.CodeRejectedError),
    (400, {"error_type": "OAuthException", "code": 400, "error_message": "This authorization code has been used"},
     errors.CodeRejectedError),
    (400, {"error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app"},
     errors.AppCredentialsError),
    (400, {"meta": {"error_type": "OAuthException", "code": 400, "error_message": "Invalid Client ID"}},
     errors.RequestError),
    (403, "<html>", errors.MalformedResponseError),
])
def test_error_classification(status, body, kind):
    raw = (json.dumps(body) if not isinstance(body, str) else body).encode() if body is not None else b""
    error = wire.error_from_response(status, {}, raw)
    assert type(error) is kind, (type(error), str(error))


def test_callback_parsing():
    result = wire.parse_callback("https://localhost:8000/callback?code=AQBx-hBsH3&state=s1#_")
    assert result.code == Secret("AQBx-hBsH3") and result.state == "s1"
    assert wire.parse_callback("code=AQ%23_&state=x").code.reveal() == "AQ"  # an encoded #_ survives paste


@pytest.mark.parametrize(("query", "code"), [
    ("error=access_denied&error_reason=user_denied&state=s", "access_denied"),
    ("code=a&error=access_denied", "code_and_error"),
    ("state=s", "missing_code"),
    ("code=&state=s", "missing_code"),
    ("code=a&code=b&state=s", "duplicate_parameter"),
    ("code=a&state=s&state=t", "duplicate_parameter"),
    ("code=" + "a" * 9000, "oversized_parameter"),
    ("code=%ff%fe&state=s", "bad_encoding"),
    ("code=abc%zz&state=s", "bad_encoding"),
    ("error=server_error&error_description=oops", "provider_error"),
])
def test_bad_callbacks(query, code):
    with pytest.raises(errors.CallbackError) as raised:
        wire.parse_callback(query)
    assert raised.value.code == code


def test_strip_access_token_from_paging_urls():
    url = "https://graph.instagram.com/v25.0/1/media?access_token=SECRET&limit=25&after=QVFI"
    stripped = wire.strip_access_token(url)
    assert "SECRET" not in stripped and "after=QVFI" in stripped and "limit=25" in stripped


def test_secret_never_prints():
    secret = Secret("IGAAsecret")
    assert "IGAAsecret" not in f"{secret} {secret!r} {[secret]} {secret:>20}"
    assert secret.reveal() == "IGAAsecret" and secret == Secret("IGAAsecret")
