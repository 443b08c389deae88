"""POST api.instagram.com/oauth/access_token: the flat envelope, single use, exact redirect URI."""

from __future__ import annotations

import pytest

from tests.helpers import consent_code, exchange


def test_urlencoded_exchange_returns_the_observed_flat_shape(sandbox, http):
    code = consent_code(http, sandbox)
    response = exchange(http, sandbox, code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "user_id", "permissions"}
    assert body["access_token"].startswith("IGAA")
    assert isinstance(body["user_id"], int)
    assert str(body["user_id"]) == sandbox.control.account(0)["scoped_id"]
    assert body["permissions"] == ["instagram_business_basic", "instagram_business_manage_insights"]
    inspected = sandbox.control.inspect(body["access_token"])
    assert inspected["kind"] == "short" and inspected["expires_at"] - inspected["issued_at"] == 3600


def test_multipart_body_works_like_curl_dash_f(sandbox, http):
    code = consent_code(http, sandbox)
    files = {k: (None, v) for k, v in {"client_id": sandbox.app_id, "client_secret": sandbox.app_secret,
                                        "grant_type": "authorization_code", "redirect_uri": sandbox.redirect_uri,
                                        "code": code}.items()}
    response = http.post("/oauth/access_token", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"].startswith("IGAA")


def test_documented_data_wrapped_shape_behind_the_switch(sandbox, http):
    sandbox.control.switches(token_response="data")
    body = exchange(http, sandbox, consent_code(http, sandbox)).json()
    assert list(body) == ["data"] and len(body["data"]) == 1
    grant = body["data"][0]
    assert isinstance(grant["user_id"], str)
    assert grant["permissions"] == "instagram_business_basic,instagram_business_manage_insights"


def _flat(response):
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error_type", "code", "error_message"} and body["code"] == 400
    assert body["error_type"] == "OAuthException"
    return body["error_message"]


def test_code_is_single_use(sandbox, http):
    code = consent_code(http, sandbox)
    assert exchange(http, sandbox, code).status_code == 200
    assert _flat(exchange(http, sandbox, code)) == "This authorization code has been used"


def test_code_expires_after_one_hour(sandbox, http):
    code = consent_code(http, sandbox)
    sandbox.control.advance(3601)
    assert _flat(exchange(http, sandbox, code)) == "This authorization code has expired"


def test_code_within_the_hour_still_works(sandbox, http):
    code = consent_code(http, sandbox)
    sandbox.control.advance(3500)
    assert exchange(http, sandbox, code).status_code == 200


def test_redirect_uri_must_equal_the_authorize_one_and_a_mismatch_does_not_burn_the_code(sandbox, http):
    code = consent_code(http, sandbox)
    message = _flat(exchange(http, sandbox, code, redirect_uri=sandbox.redirect_uri + "/"))
    assert message.startswith("Error validating verification code. Please make sure your redirect_uri is identical")
    assert exchange(http, sandbox, code).status_code == 200


@pytest.mark.parametrize(("overrides", "message"), [
    ({"client_id": ""}, "You must provide a client_id"),
    ({"client_id": "999"}, "Invalid platform app"),
    ({"client_secret": ""}, "You must provide a client_secret"),
    ({"client_secret": "0" * 32}, "Error validating client secret."),
    ({"grant_type": "client_credentials"}, "Invalid grant_type: only authorization_code is supported"),
    ({"redirect_uri": ""}, "You must provide a redirect_uri"),
    ({"code": ""}, "You must provide a code"),
    ({"code": "AQnotacode"}, "Matching code was not found or was already used"),
])
def test_each_bad_field_gets_instagrams_flat_error(sandbox, http, overrides, message):
    code = consent_code(http, sandbox)
    assert _flat(exchange(http, sandbox, code, **overrides)) == message
    assert exchange(http, sandbox, code).status_code == 200  # nothing was consumed by the bad attempt


def test_code_with_the_hash_underscore_left_on_is_not_found(sandbox, http):
    code = consent_code(http, sandbox)
    assert _flat(exchange(http, sandbox, code + "#_")) == "Matching code was not found or was already used"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method(sandbox, http, method):
    message = _flat(http.request(method, "/oauth/access_token"))
    assert message == f"Unsupported request - method type: {method.lower()}"


def test_json_body_is_not_read(sandbox, http):
    code = consent_code(http, sandbox)
    response = http.post("/oauth/access_token", json={"client_id": sandbox.app_id, "code": code})
    assert _flat(response) == "You must provide a client_id"


def test_repeated_field_takes_the_last_value(sandbox, http):
    code = consent_code(http, sandbox)
    body = (f"client_id=1&client_id={sandbox.app_id}&client_secret={sandbox.app_secret}&grant_type=authorization_code"
            f"&redirect_uri={sandbox.redirect_uri}&code=bogus&code={code}")
    response = http.post("/oauth/access_token", content=body.encode(),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("body", [b"code=%ff%fe", b"client_id=%zz", b"\xff\xfe\xfd"])
def test_broken_encodings_are_a_clean_400(sandbox, http, body):
    response = http.post("/oauth/access_token", content=body,
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


def test_broken_multipart_is_a_clean_400(sandbox, http):
    response = http.post("/oauth/access_token", content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400
