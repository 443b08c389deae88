"""/me and /{ig-user-id}: fields, the two ids, versions, token transport and the errors a reader meets."""

from __future__ import annotations

import pytest

from tests.helpers import graph_error, long_lived

ALL_FIELDS = "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count"


def test_me_without_fields_is_only_the_app_scoped_id(sandbox, http):
    token = long_lived(http, sandbox)
    body = http.get("/me", params={"access_token": token}).json()
    assert body == {"id": sandbox.control.account(0)["scoped_id"]}


def test_me_with_every_field(sandbox, http):
    token = long_lived(http, sandbox, account=5)
    account = sandbox.control.account(5)
    response = http.get("/v25.0/me", params={"fields": ALL_FIELDS, "access_token": token})
    body = response.json()
    assert body["id"] == account["scoped_id"] and body["user_id"] == account["ig_id"]
    assert body["id"] != body["user_id"]  # the two-id trap
    assert body["user_id"].startswith("1784") and body["id"].startswith("27")
    assert body["username"] == account["username"] and body["name"] == account["name"]
    assert body["account_type"] in ("BUSINESS", "MEDIA_CREATOR")
    assert body["media_count"] == account["media_count"]
    assert body["profile_picture_url"].startswith(sandbox.base_url + "/cdn/")
    assert all(isinstance(body[k], int) for k in ("followers_count", "follows_count", "media_count"))


def test_ig_user_id_path_reads_the_same_node(sandbox, http):
    token = long_lived(http, sandbox, account=2)
    ig_id = sandbox.control.account(2)["ig_id"]
    me = http.get("/me", params={"fields": "user_id,username", "access_token": token}).json()
    node = http.get(f"/v24.0/{ig_id}", params={"fields": "user_id,username", "access_token": token}).json()
    assert me == node


def test_bearer_header_works_like_the_query_parameter(sandbox, http):
    token = long_lived(http, sandbox)
    response = http.get("/me", params={"fields": "username"}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and "username" in response.json()


def test_account_type_casing_switch(sandbox, http):
    token = long_lived(http, sandbox)
    upper = http.get("/me", params={"fields": "account_type", "access_token": token}).json()["account_type"]
    sandbox.control.switches(account_type_case="doc")
    doc = http.get("/me", params={"fields": "account_type", "access_token": token}).json()["account_type"]
    assert upper in ("BUSINESS", "MEDIA_CREATOR")
    assert doc == {"BUSINESS": "Business", "MEDIA_CREATOR": "Media_Creator"}[upper]


def test_me_data_wrapped_shape_switch(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.switches(me_response="data")
    body = http.get("/me", params={"fields": "user_id,username", "access_token": token}).json()
    assert list(body) == ["data"] and set(body["data"][0]) == {"user_id", "username"}


def test_profile_edits_show_up(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.account(0, name="Renamed Studio", followers_count=12345)
    body = http.get("/me", params={"fields": "name,followers_count", "access_token": token}).json()
    assert body == {"name": "Renamed Studio", "followers_count": 12345}


def test_missing_token(sandbox, http):
    error = graph_error(http.get("/me"))
    assert error["code"] == 2500
    assert error["message"] == "An active access token must be used to query information about the current user."


@pytest.mark.parametrize("token", ["nope", "IGAA" + "x" * 140, "", "a" * 5000])
def test_unknown_tokens(sandbox, http, token):
    error = graph_error(http.get("/me", params={"access_token": token}))
    assert error["code"] in (190, 2500)


def test_unknown_field(sandbox, http):
    token = long_lived(http, sandbox)
    error = graph_error(http.get("/me", params={"fields": "username,email", "access_token": token}))
    assert error["code"] == 100
    assert error["message"] == "(#100) Tried accessing nonexisting field (email) on node type (User)"


@pytest.mark.parametrize("fields", ["username,", "{id}", "media{id", "media.limit(5", "user id", "a,,b"])
def test_field_syntax_errors(sandbox, http, fields):
    token = long_lived(http, sandbox)
    error = graph_error(http.get("/me", params={"fields": fields, "access_token": token}))
    assert error["code"] == 2500 and error["message"].startswith("Syntax error")


def test_another_accounts_id_and_the_app_scoped_id_are_not_readable(sandbox, http):
    token = long_lived(http, sandbox)
    other = sandbox.control.account(1)["ig_id"]
    mine_scoped = sandbox.control.account(0)["scoped_id"]
    for node in (other, mine_scoped, "12345", "not-an-id"):
        error = graph_error(http.get(f"/{node}", params={"access_token": token}))
        assert (error["code"], error["error_subcode"]) == (100, 33)
        assert error["message"].startswith(f"Unsupported get request. Object with ID '{node}' does not exist")


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_writes_to_the_user_node_are_unsupported(sandbox, http, method):
    token = long_lived(http, sandbox)
    error = graph_error(http.request(method, "/me", params={"access_token": token}))
    assert error["message"].startswith(f"Unsupported {method.lower()} request.")


def test_versions(sandbox, http):
    token = long_lived(http, sandbox)
    assert http.get("/v21.0/me", params={"access_token": token}).status_code == 200
    assert graph_error(http.get("/v2.0/me", params={"access_token": token}))["code"] == 2635
    assert graph_error(http.get("/v99.0/me", params={"access_token": token}))["code"] == 2500
    assert graph_error(http.get("/v25.1/me", params={"access_token": token}))["code"] == 2500


def test_unknown_path_components(sandbox, http):
    token = long_lived(http, sandbox)
    error = graph_error(http.get("/me/media/extra", params={"access_token": token}))
    assert error["code"] == 2500 and error["message"] == "Unknown path components: /extra"
    assert graph_error(http.get("/me/friends", params={"access_token": token}))["code"] == 2500


def test_subscribed_apps_and_stories(sandbox, http):
    token = long_lived(http, sandbox)
    assert http.post("/me/subscribed_apps", params={"subscribed_fields": "comments",
                                                    "access_token": token}).json() == {"success": True}
    assert http.get("/me/stories", params={"access_token": token}).json() == {"data": []}


def test_the_last_of_repeated_parameters_wins(sandbox, http):
    token = long_lived(http, sandbox)
    response = http.get(f"/me?fields=name&fields=username&access_token=bogus&access_token={token}")
    assert set(response.json()) == {"username"}


def test_accounts_are_lazily_generated_up_to_the_configured_count(sandbox, http):
    last = sandbox.control.account(99_999)
    token = sandbox.control.mint_token(99_999)["access_token"]
    body = http.get("/me", params={"fields": "user_id,username", "access_token": token}).json()
    assert body == {"user_id": last["ig_id"], "username": last["username"]}
    with pytest.raises(Exception, match="no sandbox account"):
        sandbox.control.account(100_000)
