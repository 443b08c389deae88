"""Schemathesis against filmroll served on a socket: the public JSON routes from ``/openapi.json`` itself, and the
form routes (admin, owner, callback) from a schema written here, since those are pages and not an API. Every case
must answer without a server error, with a status and a content type its schema names, and (for the feeds) a body
that is the published schema: the day the renderer adds an undocumented field, this fails."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from filmroll.service import feeds as feed_service
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import _wait_until_mirrored, make_served_feed
from tests.webapp import running_filmroll

pytestmark = pytest.mark.slow
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PAGE_STATUSES = ["200", "303", "400", "401", "403", "404", "405", "409", "410", "413", "414", "429", "431", "502",
                 "503"]
TEXT = {"type": "string"}


def _form(*fields: str, csrf: str | None = None) -> dict[str, Any]:
    """A form body; ``csrf``: the signed-in session's token, always sent right, so the cases reach the handler."""
    properties = {name: TEXT for name in fields}
    required = []
    if csrf is not None:
        properties["csrf_token"], required = {"type": "string", "enum": [csrf]}, ["csrf_token"]
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _operation(*, body: dict[str, Any] | None = None, query: tuple[str, ...] = (),
               path: tuple[tuple[str, dict[str, Any]], ...] = ()) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "parameters": [{"name": n, "in": "query", "schema": TEXT} for n in query] +
                      [{"name": n, "in": "path", "required": True, "schema": s} for n, s in path],
        "responses": {status: {"description": status, "content": {"text/html": {"schema": TEXT}}}
                      for status in PAGE_STATUSES} | {"303": {"description": "a redirect, no body"}}}
    if body is not None:
        operation["requestBody"] = body
    return operation


ANY_INTEGER = {"type": "integer"}  # negative, zero and beyond 2^63 included: each must answer 404, not 500


def form_routes(csrf: str) -> dict[str, Any]:
    """The form routes (pages, not an API, so not in /openapi.json). Sign-out is sent any token but the right one
    (it would end the session the other cases use)."""
    editor = ("title", "slug", "post_limit", "accounts", "media_types", "reels", "include_hashtags",
              "exclude_hashtags", "allowed_origins")
    return {
        "openapi": "3.0.3", "info": {"title": "filmroll's form routes", "version": "1"},
        "paths": {
            "/login": {"get": _operation(), "post": _operation(body=_form("csrf_token", "username", "password"))},
            "/logout": {"post": _operation(body=_form("csrf_token"))},
            "/connect": {"post": _operation(body=_form("force_reauth", csrf=csrf))},
            "/accounts/{account_id}": {"get": _operation(path=(("account_id", ANY_INTEGER),))},
            "/accounts/{account_id}/sync": {"post": _operation(body=_form(csrf=csrf),
                                                               path=(("account_id", ANY_INTEGER),))},
            "/connections/{event_id}": {"get": _operation(path=(("event_id", ANY_INTEGER),))},
            "/callback": {"get": _operation(query=("code", "state", "error", "error_reason", "error_description"))},
            "/reconnect": {"get": _operation(query=("link",)), "post": _operation(body=_form("link"))},
            "/admin/feeds/new": {"post": _operation(body=_form(*editor, csrf=csrf))},
            "/admin/feeds/{slug}/edit": {"get": _operation(path=(("slug", TEXT),)),
                                         "post": _operation(body=_form(*editor, csrf=csrf), path=(("slug", TEXT),))},
            "/admin/feeds/{slug}/posts/{ig_media_id}": {
                "post": _operation(body=_form("action", csrf=csrf), path=(("slug", TEXT), ("ig_media_id", TEXT)))},
        },
    }


def _fuzz(schema: Any, base_url: str, cookies: dict[str, str], examples: int,
          known: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> dict[str, Counter[int]]:
    """Run every operation's generated cases, and first one made of ``known`` good path values (so the 200s and
    their bodies are checked too); returns the statuses each operation answered (all checks passed, or this
    raised)."""
    seen: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        seen[label] = Counter()

        def check(case: Any, label: str = label) -> None:
            response = case.call(base_url=base_url, cookies=cookies, headers=headers, allow_redirects=False,
                                 timeout=30)
            case.validate_response(response, checks=CHECKS)
            seen[label][response.status_code] += 1

        if known:
            names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"}
            check(operation.Case(path_parameters={name: known[name] for name in names}))

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            check(case)

        run()
    return seen


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the inputs are the point, not the database
def test_no_input_makes_a_server_error_or_leaves_the_schema(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 5)
        _wait_until_mirrored(admin, posts)
        make_served_feed(admin, database_url, feed_service.FeedSpec("The bakery", "bakery", ("1",), post_limit=4))
        first = admin.get("/feeds/bakery.json").json()
        cookies = {name: value for name, value in admin.cookies.items()}

        with httpx.Client() as client:
            published = client.get(f"{app.base_url}/openapi.json").json()
        assert "/feeds/{slug}.json" in published["paths"] and "/login" not in published["paths"]
        public = _fuzz(schemathesis.openapi.from_dict(published), app.base_url, {}, examples=60,
                       known={"slug": "bakery", "after": first["posts"][-1]["id"]})
        token = re.search(r'name="csrf_token" value="([^"]+)"', admin.get("/accounts").text).group(1)
        forms = _fuzz(schemathesis.openapi.from_dict(form_routes(token)), app.base_url, cookies, examples=40,
                      known={"slug": "bakery", "ig_media_id": first["posts"][0]["id"], "account_id": "1",
                             "event_id": "1"})
        admin.close()
    print("statuses:", public, forms)
    assert len(public) == 5 and len(forms) == 14
    assert all(statuses[200] >= 1 for statuses in public.values())  # each published route answered a real 200 too
    assert all(sum(statuses.values()) >= 1 for statuses in forms.values())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_management_api_answers_any_input_within_its_own_schema(sandbox, database_url):
    """/api/v1 from its own /api/v1/openapi.json, with a write key: every operation, known ids first (so the 200s
    are checked too), then generated cases; deletes and disconnects among them, in whatever order they come."""
    from filmroll.service import api_keys
    from filmroll.store.database import Database
    from filmroll.vault import Keyring, Vault, parse_keys
    from tests import aio
    from tests.seeding import seed_accounts

    with running_filmroll(sandbox, database_url) as app:
        async def prepare() -> str:
            database = Database(database_url)
            try:
                vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
                await seed_accounts(database, vault, sandbox, 2, first=40, due=False)
                await feed_service.create(database, feed_service.FeedSpec("The bakery", "bakery", ("41",)))
                return (await api_keys.create(database, "fuzz", "write", actor="test"))[1]
            finally:
                await database.dispose()

        key = aio.run(prepare())
        with httpx.Client() as client:
            document = client.get(f"{app.base_url}/api/v1/openapi.json").json()
        assert document["openapi"].startswith("3.1")
        schema = schemathesis.openapi.from_dict(document)
        seen = _fuzz(schema, f"{app.base_url}/api/v1", {}, examples=20,
                     known={"account_id": "41", "slug": "bakery", "post_id": "17000000000000001"},
                     headers={"Authorization": f"Bearer {key}"})
    print("statuses:", seen)
    assert len(seen) == len([op for path in document["paths"].values() for op in path])
    assert sum(statuses[200] + statuses[202] for statuses in seen.values()) >= 8
