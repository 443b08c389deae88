"""Each emulated host has its own route table: reachable under its name, and Instagram's also at the root, so a
second provider's hosts (whose paths collide with Instagram's) can be added without touching Instagram's."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from filmroll.sandbox.app import host_tables
from tests.helpers import authorize_params, long_lived
from tests.seeding import index_with


def test_every_host_answers_under_its_own_name_as_at_the_root(http, sandbox):
    token = long_lived(http, sandbox, account=index_with(sandbox, 5, 60))
    bearer = {"Authorization": f"Bearer {token}"}
    at_root = http.get("/v25.0/me", params={"fields": "id,username"}, headers=bearer)
    on_host = http.get("/graph.instagram.com/v25.0/me", params={"fields": "id,username"}, headers=bearer)
    assert at_root.status_code == on_host.status_code == 200 and at_root.json() == on_host.json()
    media = http.get("/graph.instagram.com/v25.0/me/media", params={"fields": "id,media_url", "limit": "4"},
                     headers=bearer).json()
    assert media["paging"]["next"].startswith(sandbox.base_url + "/graph.instagram.com/v25.0/")  # stays on its host
    picture = next(item["media_url"] for item in media["data"] if "media_url" in item)
    assert urlsplit(picture).path.startswith("/cdn/")  # the CDN is its own host, served from the root
    assert httpx.get(picture).status_code == 200
    cdn_host = picture.replace(sandbox.base_url, sandbox.base_url + "/scontent.cdninstagram.com")
    assert httpx.get(cdn_host).status_code == 200
    page = http.get("/www.instagram.com/oauth/authorize", params=authorize_params(sandbox))
    assert page.status_code == 200 and 'name="request_id"' in page.text
    refused = http.post("/api.instagram.com/oauth/access_token", data={"client_id": sandbox.app_id})
    assert refused.status_code == 400 and "error_message" in refused.json()


def test_a_host_table_holds_only_its_own_routes():
    tables = host_tables()
    assert set(tables) == {"www.instagram.com", "api.instagram.com", "graph.instagram.com",
                           "scontent.cdninstagram.com", "www.facebook.com", "graph.facebook.com"}
    paths = {name: [route.path for route in routes] for name, routes in tables.items()}
    graphs = ("graph.instagram.com", "graph.facebook.com")
    assert all(paths[name][-1] == "/{path:path}" for name in graphs)  # each Graph's catch-all is last
    assert all("{path:path}" not in p for name, table in paths.items() if name not in graphs for p in table)


def test_facebook_hosts_answer_only_under_their_names(http, sandbox):
    """graph.facebook.com's paths collide with Instagram's: at the root, Instagram answers them."""
    facebook = http.get("/_sandbox/facebook").json()
    params = {"client_id": facebook["app_id"], "client_secret": facebook["app_secret"], "code": "AQnothing",
              "redirect_uri": sandbox.redirect_uri}
    on_host = http.get("/graph.facebook.com/v25.0/oauth/access_token", params=params)
    assert on_host.status_code == 400 and on_host.json()["error"]["message"] == "Invalid verification code format."
    at_root = http.get("/v25.0/oauth/access_token", params=params)
    assert at_root.status_code == 400 and "verification code" not in at_root.text  # Instagram's Graph answered
    dialog = http.get("/www.facebook.com/v25.0/dialog/oauth", params={"client_id": facebook["app_id"]})
    assert dialog.status_code == 400 and "URL Blocked" in dialog.text
    assert http.get("/v25.0/dialog/oauth", params={"client_id": facebook["app_id"]}).status_code != 200
