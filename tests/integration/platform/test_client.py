"""filmroll's Instagram client against the sandbox over real HTTP, in every shape the sandbox can take."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from filmroll import errors
from filmroll.platform import InstagramLoginClient
from filmroll.secret import Secret
from tests.helpers import consent_code

pytestmark = pytest.mark.anyio


def _client(sandbox, **overrides) -> InstagramLoginClient:
    options = {"app_id": sandbox.app_id, "app_secret": Secret(sandbox.app_secret),
               "redirect_uri": sandbox.redirect_uri, "authorize_url": sandbox.base_url + "/oauth/authorize",
               "token_url": sandbox.base_url + "/oauth/access_token", "graph_url": sandbox.base_url}
    options.update(overrides)
    return InstagramLoginClient(**options)


def _long(sandbox, account=0, age=0, permissions=("instagram_business_basic",)):
    return Secret(sandbox.control.mint_token(account, kind="long", age_seconds=age,
                                             permissions=list(permissions))["access_token"])


async def test_authorize_url_is_what_the_sandbox_accepts(sandbox, http):
    async with _client(sandbox) as ig:
        url = ig.authorize_url("st", scopes=["instagram_business_basic", "instagram_business_manage_insights"])
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [sandbox.redirect_uri] and query["state"] == ["st"]
    assert http.get(url.replace(sandbox.base_url, "")).status_code == 200


@pytest.mark.parametrize("shape", ["flat", "data"])
async def test_full_connect_story(sandbox, http, shape):
    sandbox.control.switches(token_response=shape, me_response=shape, account_type_case="doc")
    code = consent_code(http, sandbox, account=4)
    async with _client(sandbox) as ig:
        short = await ig.exchange_code(code + "#_")
        assert short.user_id == sandbox.control.account(4)["scoped_id"]
        long = await ig.exchange_long_lived(short.access_token)
        assert long.expires_in == 5_183_944
        profile = await ig.me(long.access_token)
    account = sandbox.control.account(4)
    assert (profile.user_id, profile.app_scoped_id, profile.username) == (account["ig_id"], account["scoped_id"],
                                                                          account["username"])
    assert profile.account_type in ("BUSINESS", "MEDIA_CREATOR")
    assert profile.usage.account_percent is not None


async def test_code_reuse_is_code_rejected(sandbox, http):
    code = consent_code(http, sandbox)
    async with _client(sandbox) as ig:
        await ig.exchange_code(code)
        with pytest.raises(errors.CodeRejectedError, match=r"already used|has been used"):
            await ig.exchange_code(code)


async def test_wrong_secret_and_wrong_app_id(sandbox, http):
    async with _client(sandbox, app_secret=Secret("0" * 32)) as ig:
        with pytest.raises(errors.AppCredentialsError):
            await ig.exchange_code(consent_code(http, sandbox))
    meta_app_id = sandbox.control.summary()["meta_app_id"]
    async with _client(sandbox, app_id=meta_app_id) as ig:
        with pytest.raises(errors.AppCredentialsError, match="not the Meta app ID"):
            await ig.exchange_code(consent_code(http, sandbox))


@pytest.mark.parametrize("accepted", ["GET", "POST"])
async def test_long_lived_exchange_survives_the_method_flip(sandbox, http, accepted):
    sandbox.control.switches(exchange_method=accepted)
    async with _client(sandbox) as ig:
        short = await ig.exchange_code(consent_code(http, sandbox))
        long = await ig.exchange_long_lived(short.access_token)
    assert long.expires_in == 5_183_944
    exchanges = sandbox.control.calls(endpoint="exchange")
    assert [c["method"] for c in exchanges] == (["GET"] if accepted == "GET" else ["GET", "POST"])


@pytest.mark.parametrize("mode", ["same", "new"])
async def test_refresh(sandbox, mode):
    sandbox.control.switches(refresh_token_string=mode)
    token = _long(sandbox, age=2 * 86_400)
    async with _client(sandbox) as ig:
        grant = await ig.refresh(token)
    assert (grant.access_token == token) is (mode == "same")
    assert grant.expires_in == 5_183_944


async def test_refresh_errors_are_classified(sandbox):
    async with _client(sandbox) as ig:
        with pytest.raises(errors.RefreshTooEarlyError):
            await ig.refresh(_long(sandbox, age=60))
        expired = _long(sandbox, age=86_400)
        sandbox.control.advance(5_183_944)
        with pytest.raises(errors.TokenInvalidError) as raised:
            await ig.refresh(expired)
        assert raised.value.subcode == 463 and "expired" in raised.value.reason


@pytest.mark.parametrize(("reason", "words"), [("password_changed", "password"), ("revoked", "revoked"),
                                               ("app_removed", "removed the app")])
async def test_revoked_tokens(sandbox, reason, words):
    token = _long(sandbox)
    sandbox.control.revoke(0, reason)
    async with _client(sandbox) as ig:
        with pytest.raises(errors.TokenInvalidError) as raised:
            await ig.me(token)
    assert words in raised.value.reason


async def test_media_iterates_every_page_with_children(sandbox):
    account = next(a for a in sandbox.control.accounts(limit=50)["data"] if 30 < a["media_count"] < 81)
    token = _long(sandbox, account["index"])
    async with _client(sandbox) as ig:
        items = [m async for m in ig.media(token, limit=10)]
    assert [m.id for m in items] == sandbox.control.media_ids(account["index"], limit=100)
    albums = [m for m in items if m.media_type == "CAROUSEL_ALBUM"]
    assert all(len(m.children) >= 2 for m in albums)
    assert all(m.timestamp is not None for m in items)
    # Paging URLs were followed with the token in a header, never re-sent in the query by us.
    calls = sandbox.control.calls(endpoint="media_list")
    assert len(calls) == -(-len(items) // 10)


async def test_children_and_insights(sandbox):
    for index in range(40):
        token = _long(sandbox, index, permissions=("instagram_business_basic", "instagram_business_manage_insights"))
        async with _client(sandbox) as ig:
            page = await ig.media_page(token, limit=100)
            album = next((m for m in page.items if m.media_type == "CAROUSEL_ALBUM"), None)
            if album is None:
                continue
            children = await ig.children(token, album.id)
            assert [c.id for c in children] == [c.id for c in album.children]
            feed = next(m for m in page.items if m.media_product_type == "FEED" and m.media_type == "IMAGE")
            try:
                insights = await ig.media_insights(token, feed.id, ["reach", "likes"])
            except errors.PermissionMissingError:  # posted before the business conversion: 10/2108006
                continue
            assert [i.name for i in insights] == ["reach", "likes"] and all(i.value is not None for i in insights)
            account = await ig.account_insights(token, ["reach"], metric_type="time_series",
                                                since=int(sandbox.control.now()) - 3 * 86_400,
                                                until=int(sandbox.control.now()))
            assert len(account[0].values) == 3
            return
    raise AssertionError("no account with an album")


async def test_insights_without_permission(sandbox):
    token = _long(sandbox)
    async with _client(sandbox) as ig:
        with pytest.raises(errors.PermissionMissingError, match="instagram_business_manage_insights"):
            await ig.account_insights(token, ["reach"])


async def test_throttling_carries_retry_after(sandbox):
    token = _long(sandbox)
    sandbox.control.throttle(0, minutes=12)
    async with _client(sandbox) as ig:
        with pytest.raises(errors.RateLimitedError) as raised:
            await ig.me(token)
    assert raised.value.retry_after == 12 * 60


async def test_transport_failures_never_show_the_url(sandbox):
    token = _long(sandbox)
    sandbox.control.add_fault("reset", endpoint="refresh", times=1)
    async with _client(sandbox) as ig:
        with pytest.raises(errors.TransportError) as raised:
            await ig.refresh(token)
    assert token.reveal() not in str(raised.value) and "refresh_access_token" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert [c["outcome"] for c in sandbox.control.calls(endpoint="refresh")] == ["reset"]  # never silently re-sent
    sandbox.control.add_fault("status", endpoint="user", status=502, times=1)
    async with _client(sandbox) as ig:
        with pytest.raises(errors.TransientError):
            await ig.me(token)


async def test_unreachable_instagram_is_a_transport_error(sandbox):
    async with _client(sandbox, graph_url="http://127.0.0.1:9", timeout=2) as ig:
        with pytest.raises(errors.TransportError):
            await ig.me(Secret("IGAAx"))


async def test_timeouts_are_transport_errors(sandbox):
    token = _long(sandbox)
    sandbox.control.add_fault("latency", endpoint="user", latency_ms=1500, times=1)
    async with _client(sandbox, timeout=0.3) as ig:
        with pytest.raises(errors.TransportError, match="in time"):
            await ig.me(token)


async def test_large_answers_are_read_whole_under_load(sandbox):
    """Pages of ~20 KB on 200 busy connections arrive in several pieces; each must be read to its end (aiohttp's
    ``content.read(n)`` returns only what has arrived so far)."""
    tokens = [Secret(t["access_token"]) for t in sandbox.control.mint_tokens(first=0, count=400, kind="long")]
    sandbox.control.switches(latency_ms=100)  # as in bench/sync.py, where a cut-short page was first seen
    async with _client(sandbox, max_connections=200) as ig:
        pages = await asyncio.gather(*(ig.profile_and_media(token, limit=25) for token in tokens))
    assert all(profile.user_id for profile, _ in pages) and sum(len(page.items) for _, page in pages) > 5_000
