"""graph.instagram.com /access_token (short → long) and /refresh_access_token, with every switch."""

from __future__ import annotations

import re

import pytest

from tests.helpers import consent_code, exchange, graph_error

LONG_LIFETIME = 5_183_944


def _short(http, sandbox) -> str:
    return exchange(http, sandbox, consent_code(http, sandbox)).json()["access_token"]


def _exchange_long(http, sandbox, token, method="GET", **extra):
    params = {"grant_type": "ig_exchange_token", "client_secret": sandbox.app_secret, "access_token": token, **extra}
    return http.request(method, "/access_token", params=params)


def test_short_to_long_lived(sandbox, http):
    short = _short(http, sandbox)
    response = _exchange_long(http, sandbox, short, client_id=sandbox.app_id)  # extra client_id is tolerated
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == LONG_LIFETIME
    assert body["access_token"] != short
    assert sandbox.control.inspect(body["access_token"])["kind"] == "long"


def test_versioned_path_serves_the_same_endpoint(sandbox, http):
    response = http.get("/v25.0/access_token", params={"grant_type": "ig_exchange_token",
                                                       "client_secret": sandbox.app_secret,
                                                       "access_token": _short(http, sandbox)})
    assert response.status_code == 200


def test_expired_short_token_cannot_be_exchanged(sandbox, http):
    short = _short(http, sandbox)
    sandbox.control.advance(3601)
    error = graph_error(_exchange_long(http, sandbox, short))
    assert error["code"] == 190 and error["error_subcode"] == 463
    assert re.fullmatch(r"Error validating access token: Session has expired on \w+day, \d\d-\w{3}-\d\d "
                        r"\d\d:\d\d:\d\d P[SD]T\. The current time is \w+day, \d\d-\w{3}-\d\d \d\d:\d\d:\d\d P[SD]T\.",
                        error["message"]), error["message"]


def test_wrong_secret_and_missing_parameters(sandbox, http):
    short = _short(http, sandbox)
    error = graph_error(_exchange_long(http, sandbox, short, client_secret="f" * 32))
    assert (error["code"], error["message"]) == (1, "Error validating client secret.")
    assert graph_error(http.get("/access_token", params={"grant_type": "ig_exchange_token",
                                                         "access_token": short}))["code"] == 100
    assert graph_error(http.get("/access_token", params={"client_secret": sandbox.app_secret,
                                                         "access_token": short}))["code"] == 100
    assert graph_error(_exchange_long(http, sandbox, "IGAAnope"))["code"] == 190


@pytest.mark.parametrize(("accepted", "refused"), [("GET", "POST"), ("POST", "GET")])
def test_method_flip_answers_unsupported_request_method_type(sandbox, http, accepted, refused):
    sandbox.control.switches(exchange_method=accepted)
    short = _short(http, sandbox)
    error = graph_error(_exchange_long(http, sandbox, short, method=refused))
    assert error == {**error, "code": 100, "type": "IGApiException",
                     "message": f"Unsupported request - method type: {refused.lower()}"}
    if accepted == "POST":  # a POST may carry its parameters in the body as well
        response = http.post("/access_token", data={"grant_type": "ig_exchange_token",
                                                    "client_secret": sandbox.app_secret, "access_token": short})
    else:
        response = _exchange_long(http, sandbox, short, method=accepted)
    assert response.status_code == 200, response.text


def test_both_methods_when_switched_to_both(sandbox, http):
    sandbox.control.switches(exchange_method="both")
    assert _exchange_long(http, sandbox, _short(http, sandbox), method="POST").status_code == 200
    assert _exchange_long(http, sandbox, _short(http, sandbox), method="GET").status_code == 200


def _refresh(http, token, **params):
    return http.get("/refresh_access_token", params={"grant_type": "ig_refresh_token", "access_token": token,
                                                     **params})


def _long(sandbox, age=0):
    return sandbox.control.mint_token(0, kind="long", age_seconds=age)["access_token"]


def test_refresh_before_24_hours_is_refused(sandbox, http):
    token = _long(sandbox, age=86_399)
    error = graph_error(_refresh(http, token))
    assert error["code"] == 100 and "24 hours" in error["message"]


def test_refresh_before_24_hours_is_a_noop_behind_the_switch(sandbox, http):
    sandbox.control.switches(refresh_too_early="noop")
    token = _long(sandbox, age=3600)
    body = _refresh(http, token).json()
    assert body["access_token"] == token
    assert LONG_LIFETIME - 3600 - 5 <= body["expires_in"] <= LONG_LIFETIME - 3600


def test_refresh_returns_the_same_string_with_a_new_60_days_by_default(sandbox, http):
    token = _long(sandbox, age=86_400)
    sandbox.control.advance(10 * 86_400)
    body = _refresh(http, token).json()
    assert body == {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIFETIME}
    # Refreshed means "issued now": the next refresh is again 24 h away.
    assert graph_error(_refresh(http, token))["code"] == 100


def test_refresh_with_new_string_keeps_the_old_one_valid_by_default(sandbox, http):
    sandbox.control.switches(refresh_token_string="new")
    token = _long(sandbox, age=2 * 86_400)
    fresh = _refresh(http, token).json()["access_token"]
    assert fresh != token
    assert http.get("/me", params={"access_token": token}).status_code == 200
    assert http.get("/me", params={"access_token": fresh}).status_code == 200


def test_refresh_with_new_string_can_revoke_the_old_one(sandbox, http):
    sandbox.control.switches(refresh_token_string="new", old_token_after_refresh="revoked")
    token = _long(sandbox, age=2 * 86_400)
    fresh = _refresh(http, token).json()["access_token"]
    assert graph_error(http.get("/me", params={"access_token": token}))["code"] == 190
    assert graph_error(_refresh(http, token))["code"] == 190
    assert http.get("/me", params={"access_token": fresh}).status_code == 200


def test_refresh_of_an_expired_token_is_190_463(sandbox, http):
    token = _long(sandbox, age=86_400)
    sandbox.control.advance(LONG_LIFETIME)
    error = graph_error(_refresh(http, token))
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on ")


def test_refresh_just_before_expiry_still_works(sandbox, http):
    token = _long(sandbox, age=86_400)
    sandbox.control.advance(LONG_LIFETIME - 86_400 - 60)
    assert _refresh(http, token).json()["expires_in"] == LONG_LIFETIME


def test_short_lived_tokens_cannot_be_refreshed(sandbox, http):
    short = sandbox.control.mint_token(0, kind="short", age_seconds=1800)["access_token"]
    assert graph_error(_refresh(http, short))["code"] == 100


def test_refresh_accepts_the_bearer_header_and_refuses_post(sandbox, http):
    token = _long(sandbox, age=86_400 * 2)
    response = http.get("/refresh_access_token", params={"grant_type": "ig_refresh_token"},
                        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    error = graph_error(http.post("/refresh_access_token", params={"grant_type": "ig_refresh_token",
                                                                   "access_token": token}))
    assert error["message"] == "Unsupported request - method type: post"


def test_refresh_needs_the_right_grant_type(sandbox, http):
    token = _long(sandbox, age=86_400 * 2)
    assert graph_error(_refresh(http, token, grant_type="refresh_token"))["code"] == 100


@pytest.mark.parametrize(("reason", "subcode", "words"), [
    ("password_changed", 460, "changed their password"),
    ("revoked", 467, "logged out"),
    ("app_removed", 458, "has not authorized application"),
])
def test_revoked_tokens_answer_190_with_the_subcode(sandbox, http, reason, subcode, words):
    token = _long(sandbox, age=86_400 * 3)
    other = sandbox.control.mint_token(1, kind="long")["access_token"]
    sandbox.control.revoke(0, reason)
    for response in (http.get("/me", params={"access_token": token}), _refresh(http, token)):
        error = graph_error(response)
        assert (error["code"], error["error_subcode"]) == (190, subcode)
        assert words in error["message"]
        assert "invalid_token" in response.headers["www-authenticate"]
    assert http.get("/me", params={"access_token": other}).status_code == 200  # other accounts untouched
    # A new authorization after the revocation works again.
    assert http.get("/me", params={"access_token": _long(sandbox)}).status_code == 200


def test_single_token_revocation(sandbox, http):
    token, sibling = _long(sandbox), _long(sandbox)
    sandbox.control.revoke_token(token)
    assert graph_error(http.get("/me", params={"access_token": token}))["error_subcode"] == 467
    assert http.get("/me", params={"access_token": sibling}).status_code == 200


def test_token_marker_appears_in_every_issued_token():
    from filmroll.sandbox.auth import AuthState

    state = AuthState(token_marker="CANARY-1234")
    assert state.new_token_value().startswith("IGAACANARY-1234")
