"""The management API (/api/v1) as an agency's backend calls it: keys made by the service, checked on every
request (401 without a good one, 403 for a read key that asks to change something, nothing changed either way), a
budget a minute with RateLimit-* headers, one error shape with the CLI's vocabulary, and the CLI's rules: a refresh
while a worker holds the token's lease is 409 busy and makes no call. In process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from filmroll.service import api_keys
from filmroll.store.tables import Event, Token
from filmroll.vault import Keyring, Vault, parse_keys
from tests import aio
from tests.integration.web.conftest import snapshot
from tests.seeding import seed_accounts
from tests.webapp import running_filmroll


def _key(database_url: str, scope: str, name: str = "agency backend") -> tuple[int, str]:
    view, key = aio.with_database(database_url, lambda db: api_keys.create(db, name, scope, actor="test"))
    return view.id, key


def _seed(app, sandbox, database_url: str, count: int, first: int = 30) -> list[int]:
    async def body(database):
        vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
        return await seed_accounts(database, vault, sandbox, count, first=first, due=False)
    return aio.with_database(database_url, body)


def test_keys_scopes_and_the_error_shape(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        ids = _seed(app, sandbox, database_url, 3)
        _, read = _key(database_url, "read")
        _, write = _key(database_url, "write", "deployer")

        before = snapshot(database_url)
        for headers, status, code in (({}, 401, "unauthorized"),
                                      ({"Authorization": "Basic abc"}, 401, "unauthorized"),
                                      ({"Authorization": "Bearer flr_" + "a" * 49}, 401, "unauthorized"),  # checksum
                                      ({"Authorization": f"Bearer {write[:-1]}x"}, 401, "unauthorized"),
                                      ({"Authorization": f"Bearer {read}"}, 403, "forbidden")):
            refused = client.post(f"/api/v1/accounts/{ids[0]}/sync", headers=headers)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["code"] == code and refused.json()["error"]["message"]
        assert snapshot(database_url)["accounts"] == before["accounts"]  # nothing changed
        assert snapshot(database_url)["sources"] == before["sources"]

        listed = client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {read}"})
        assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
        assert [a["id"] for a in listed.json()["data"]] == ids and listed.json()["next_cursor"] is None
        assert int(listed.headers["ratelimit-limit"]) == 600 and int(listed.headers["ratelimit-remaining"]) < 600
        missing = client.get("/api/v1/accounts/999", headers={"Authorization": f"Bearer {read}"})
        assert missing.status_code == 404 and missing.json() == {
            "error": {"code": "not_found", "message": "there is no account 999"}}
        bad = client.get("/api/v1/accounts?cursor=bm9wZQ", headers={"Authorization": f"Bearer {read}"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
        bad = client.get("/api/v1/accounts?limit=0", headers={"Authorization": f"Bearer {read}"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid" and "limit" in bad.text

        synced = client.post(f"/api/v1/accounts/{ids[0]}/sync", headers={"Authorization": f"Bearer {write}"})
        assert synced.status_code == 202 and synced.json()["id"] == ids[0]
        kinds = aio.with_database(database_url, lambda db: _events(db))
        assert any(actor.startswith("api:") and "deployer" in actor for _, actor in kinds)
        assert write not in repr(snapshot(database_url))  # the key is in no row, no event
        stored = snapshot(database_url)["api_keys"]
        assert len(stored) == 2 and all(write not in repr(row) for row in stored)


async def _events(database) -> list[tuple[str, str]]:
    from sqlalchemy import select

    async with database.read() as session:
        return [(e.kind, e.actor or "") for e in (await session.execute(select(Event))).scalars()]


def test_cursor_paging_filters_and_revocation(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        ids = _seed(app, sandbox, database_url, 7)
        _key(database_url, "read", "old key")  # two events: api_key.created twice
        key_id, key = _key(database_url, "read")
        auth = {"Authorization": f"Bearer {key}"}
        seen, cursor = [], None
        while True:
            page = client.get("/api/v1/accounts", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                              headers=auth).json()
            seen += [a["id"] for a in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids
        name = client.get(f"/api/v1/accounts/{ids[2]}", headers=auth).json()["username"]
        found = client.get("/api/v1/accounts", params={"username": name[-4:].upper()}, headers=auth).json()["data"]
        assert ids[2] in [a["id"] for a in found]
        assert client.get("/api/v1/accounts", params={"status": "revoked"}, headers=auth).json()["data"] == []
        assert client.get("/api/v1/accounts", params={"status": "gone"}, headers=auth).status_code == 422
        events = client.get("/api/v1/events", params={"limit": 1}, headers=auth).json()
        assert len(events["data"]) == 1 and events["next_cursor"]
        older = client.get("/api/v1/events", params={"limit": 1, "cursor": events["next_cursor"]}, headers=auth)
        assert older.json()["data"][0]["id"] < events["data"][0]["id"]

        aio.with_database(database_url, lambda db: api_keys.revoke(db, str(key_id), actor="test"))
        gone = client.get("/api/v1/accounts", headers=auth)
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthorized"


def test_a_refresh_while_a_worker_holds_the_lease_is_busy_and_calls_nobody(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        (account_id,) = _seed(app, sandbox, database_url, 1)
        _, key = _key(database_url, "write")

        async def hold(database):  # a worker is refreshing it right now
            async with database.transaction() as session:
                token = await session.get(Token, account_id)
                token.lease_owner, token.lease_until = "worker-x", database.clock.now() + timedelta(minutes=5)

        aio.with_database(database_url, hold)
        calls = len(sandbox.control.calls(endpoint="refresh_access_token"))
        busy = client.post(f"/api/v1/accounts/{account_id}/refresh", headers={"Authorization": f"Bearer {key}"})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy", busy.text
        assert len(sandbox.control.calls(endpoint="refresh_access_token")) == calls


def test_a_key_over_its_budget_is_told_when_to_come_back(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        app.transport.app.state.runtime  # noqa: B018 (started)
        api = next(r.app for r in app.transport.app.routes if getattr(r, "path", "") == "/api/v1")
        api.state.limiter.per_minute = 3
        client = app.client()
        _, key = _key(database_url, "read")
        answers = [client.get("/api/v1/feeds", headers={"Authorization": f"Bearer {key}"}) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert answers[3].status_code == 429 and answers[3].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[3].headers["retry-after"]) <= 60


def test_the_management_api_has_its_own_openapi_document(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        schema = client.get("/api/v1/openapi.json").json()
        assert schema["openapi"].startswith("3.1") and "/accounts/{account_id}/refresh" in schema["paths"]
        public = client.get("/openapi.json").json()
        assert not any(p.startswith("/api/v1") for p in public["paths"])  # the public feed schema stays apart


def test_feeds_made_changed_and_moderated_through_the_api(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        ids = _seed(app, sandbox, database_url, 2)
        _, key = _key(database_url, "write")
        auth = {"Authorization": f"Bearer {key}"}
        made = client.post("/api/v1/feeds", headers=auth, json={"title": "Café wall", "accounts": [str(ids[0])],
                                                                   "post_limit": 9})
        assert made.status_code == 201, made.text
        assert made.json()["slug"] == "cafe-wall" and made.json()["post_limit"] == 9
        before = snapshot(database_url)["feeds"]
        for bad in ({"post_limit": 0}, {"media_types": ["GIF"]}, {"moderation": "sometimes"},
                    {"accounts": ["@nobody"]}):
            refused = client.patch("/api/v1/feeds/cafe-wall", headers=auth, json=bad)
            assert refused.status_code in (404, 422) and refused.json()["error"]["code"] in ("invalid", "not_found")
        assert snapshot(database_url)["feeds"] == before  # nothing changed
        changed = client.patch("/api/v1/feeds/cafe-wall", headers=auth,
                               json={"accounts": [str(ids[0]), str(ids[1])], "block_words": ["spam"]})
        assert changed.status_code == 200 and changed.json()["block_words"] == ["spam"]
        assert len(changed.json()["sources"]) == 2
        taken = client.post("/api/v1/feeds", headers=auth, json={"title": "Café wall", "accounts": [str(ids[1])]})
        assert taken.status_code == 422 and "already" in taken.json()["error"]["message"]
        assert client.get("/api/v1/feeds/cafe-wall/posts", headers=auth).json() == []  # no stranger's posts
        assert client.delete("/api/v1/feeds/cafe-wall", headers=auth).json() == {"status": "deleted"}
        assert client.get("/api/v1/feeds/cafe-wall", headers=auth).status_code == 404


def test_connect_links_are_checked_before_anything_is_made(sandbox, database_url):
    with running_filmroll(sandbox, database_url, socket=False) as app:
        client = app.client()
        _, key = _key(database_url, "write")
        auth = {"Authorization": f"Bearer {key}"}
        before = snapshot(database_url)
        for body in ({"custom_id": "has space"}, {"custom_id": "ok", "expires_in": 10},
                     {"custom_id": "ok", "return_url": "https://not-allowed.example/back"},
                     {"custom_id": "ok", "return_url": "javascript:alert(1)"}, {"custom_id": "ok", "provider": "x"}):
            refused = client.post("/api/v1/connect-links", headers=auth, json=body)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid", (body, refused.text)
        after = snapshot(database_url)
        assert after["connect_links"] == before["connect_links"] == []
        made = client.post("/api/v1/connect-links", headers=auth, json={"custom_id": "client-7"}).json()
        secret = made["url"].split("link=")[1]
        assert secret not in repr(snapshot(database_url))  # only its hash is kept, in no event either
        page = client.get(made["url"].removeprefix(app.settings.public_origin()))
        assert page.status_code == 200 and "Connect your Instagram account" in page.text
