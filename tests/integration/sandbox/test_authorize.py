"""GET/POST /oauth/authorize: validation, the consent page, and where the owner is sent back to."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import authorize_params, consent_code, exchange


def _request_id(html: str) -> str:
    return re.search(r'name="request_id" value="([^"]+)"', html).group(1)


def test_unknown_client_id_shows_instagrams_unavailable_page(sandbox, http):
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, client_id="123"))
    assert response.status_code == 404
    assert "Sorry, this page isn't available." in html.unescape(response.text)
    assert "location" not in response.headers


def test_missing_client_id_is_the_unavailable_page(sandbox, http):
    params = authorize_params(sandbox)
    del params["client_id"]
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 404


def test_meta_app_id_instead_of_instagram_app_id_is_invalid_platform_app(sandbox, http):
    meta_app_id = sandbox.control.summary()["meta_app_id"]
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, client_id=meta_app_id))
    assert response.status_code == 400
    assert response.json() == {"error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app"}


@pytest.mark.parametrize("variant", [
    "https://localhost:8000/callback/",  # the trailing slash the dashboard adds
    "http://localhost:8000/callback",  # http is never registered
    "https://localhost:8000/callback?next=/admin",
    "https://LOCALHOST:8000/callback",
    "https://evil.example/callback",
])
def test_redirect_uri_must_match_byte_for_byte_and_is_never_redirected_to(sandbox, http, variant):
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, redirect_uri=variant))
    assert response.status_code == 400
    assert response.json()["error_message"] == "Invalid redirect_uri"
    assert "location" not in response.headers


def test_missing_redirect_uri(sandbox, http):
    params = authorize_params(sandbox)
    del params["redirect_uri"]
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 400 and "redirect_uri" in response.json()["error_message"]


@pytest.mark.parametrize("response_type", ["token", "", "code token", "CODE"])
def test_only_response_type_code(sandbox, http, response_type):
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, response_type=response_type))
    assert response.status_code == 400
    assert response.json()["error_message"] == 'Only response type "code" is allowed'


@pytest.mark.parametrize("scope", [
    "instagram_business_basic",
    "instagram_business_basic,instagram_business_manage_insights",
    "instagram_business_basic instagram_business_content_publish",
    "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments",
])
def test_current_scopes_comma_or_space_separated_reach_the_consent_page(sandbox, http, scope):
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, scope=scope))
    assert response.status_code == 200
    for name in scope.replace(",", " ").split():
        assert f"<li>{name}</li>" in response.text


@pytest.mark.parametrize(("scope", "message"), [
    ("business_basic", "Invalid scope field(s): business_basic"),
    ("instagram_business_basic,business_manage_comments", "Invalid scope field(s): business_manage_comments"),
    ("user_profile,user_media", "Invalid scope field(s): user_profile,user_media"),
    ("instagram_business_basic+instagram_business_manage_insights",  # double-encoded "+"
     "Invalid scope field(s): instagram_business_basic+instagram_business_manage_insights"),
    ("instagram_business_manage_insights", "Invalid scope: instagram_business_basic is required"),
    ("", "Invalid scope: the scope parameter is required"),
])
def test_deprecated_unknown_and_missing_scopes_are_refused(sandbox, http, scope, message):
    response = http.get("/oauth/authorize", params=authorize_params(sandbox, scope=scope))
    assert response.status_code == 400
    assert response.json()["error_message"] == message


def test_allow_redirects_with_code_state_and_the_hash_underscore(sandbox, http):
    page = http.get("/oauth/authorize", params=authorize_params(sandbox, state="abc/+=?&"))
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    username = sandbox.control.account(0)["username"]
    done = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "username": username,
                                               "password": "password", "action": "allow"})
    assert done.status_code == 302
    location = done.headers["location"]
    assert location.startswith(sandbox.redirect_uri + "?")
    assert location.endswith("#_")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["abc/+=?&"]
    assert query["code"][0].startswith("AQ") and len(query["code"][0]) > 100
    assert not urlsplit(location).fragment.startswith("code")


def test_no_state_means_no_state_in_the_redirect(sandbox, http):
    params = authorize_params(sandbox)
    del params["state"]
    page = http.get("/oauth/authorize", params=params)
    done = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "action": "allow",
                                               "username": sandbox.control.account(0)["username"],
                                               "password": "password"})
    assert "state" not in parse_qs(urlsplit(done.headers["location"]).query)


def test_cancel_redirects_with_access_denied(sandbox, http):
    page = http.get("/oauth/authorize", params=authorize_params(sandbox))
    done = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "action": "cancel"})
    assert done.status_code == 302
    location = done.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query == {"error": ["access_denied"], "error_reason": ["user_denied"],
                     "error_description": ["The user denied your request"], "state": ["st4te"]}
    assert location.startswith(sandbox.redirect_uri + "?")
    # The pending request is gone: replaying the form shows the expired page, never a second redirect.
    again = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "action": "allow"})
    assert again.status_code == 400 and "expired" in again.text


@pytest.mark.parametrize(("username", "password", "message"), [
    ("nobody_here", "password", "doesn't belong to an account"),
    (None, "wrong", "your password was incorrect"),
])
def test_bad_login_stays_on_the_page_with_instagrams_message(sandbox, http, username, password, message):
    page = http.get("/oauth/authorize", params=authorize_params(sandbox))
    username = username or sandbox.control.account(0)["username"]
    retry = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "username": username,
                                                "password": password, "action": "allow"})
    assert retry.status_code == 200
    assert message in html.unescape(retry.text)
    assert "location" not in retry.headers


def test_logged_in_owner_sees_continue_as_until_force_reauth(sandbox, http):
    consent_code(http, sandbox, account=3)
    page = http.get("/oauth/authorize", params=authorize_params(sandbox))
    assert f"@{sandbox.control.account(3)['username']}" in page.text
    assert 'name="password"' not in page.text
    done = http.post("/oauth/authorize", data={"request_id": _request_id(page.text), "action": "allow"})
    assert "code=" in done.headers["location"]
    for flag in ({"force_reauth": "true"}, {"force_authentication": "1", "enable_fb_login": "0"}):
        forced = http.get("/oauth/authorize", params=authorize_params(sandbox, **flag))
        assert 'name="password"' in forced.text


def test_password_change_logs_the_owner_out_of_the_consent_page(sandbox, http):
    consent_code(http, sandbox, account=4)
    sandbox.control.revoke(4, "password_changed")
    page = http.get("/oauth/authorize", params=authorize_params(sandbox))
    assert 'name="password"' in page.text


def test_enable_fb_login_false_hides_the_facebook_option(sandbox, http):
    shown = http.get("/oauth/authorize", params=authorize_params(sandbox))
    hidden = http.get("/oauth/authorize", params=authorize_params(sandbox, enable_fb_login="false"))
    assert "Log in with Facebook" in shown.text and "Log in with Facebook" not in hidden.text


def test_auto_consent_redirects_at_once_for_the_chosen_account(sandbox, http):
    sandbox.control.switches(auto_consent=True, auto_consent_account=7)
    response = http.get("/oauth/authorize", params=authorize_params(sandbox))
    assert response.status_code == 302
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = exchange(http, sandbox, code).json()
    assert str(token["user_id"]) == sandbox.control.account(7)["scoped_id"]


def test_consent_form_without_a_choice_or_with_garbage_is_refused(sandbox, http):
    page = http.get("/oauth/authorize", params=authorize_params(sandbox))
    assert http.post("/oauth/authorize", data={"request_id": _request_id(page.text)}).status_code == 400
    assert http.post("/oauth/authorize", content=b"request_id=%ff%fe&action=allow",
                     headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400


def test_redirect_uri_added_through_control_api_is_accepted_but_only_https(sandbox, http):
    with pytest.raises(Exception, match="https"):
        sandbox.control.add_redirect_uri("http://127.0.0.1:9999/callback")
    sandbox.control.add_redirect_uri("https://127.0.0.1:9999/cb?tenant=1")
    code = consent_code(http, sandbox, redirect_uri="https://127.0.0.1:9999/cb?tenant=1")
    assert exchange(http, sandbox, code, redirect_uri="https://127.0.0.1:9999/cb?tenant=1").status_code == 200
