"""Facebook Login as the second provider, against the sandbox's Facebook half over loopback HTTP: one sign-in
connects every Instagram account linked to the user's Pages; each is synced from graph.facebook.com with Instagram
Login's guarantees; the token is never refreshed, only inspected daily (``debug_token``), and a lost data access makes
the accounts ``needs_reauth`` while the alert sweep warns before it happens."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from filmroll import errors
from filmroll.secret import Secret
from filmroll.store import alerts
from filmroll.store.tables import Token
from filmroll.vocabulary import AccountStatus, Outcome, Provider
from tests.helpers import facebook_owner_allows

pytestmark = pytest.mark.anyio

MANAGER, CLIENT = 6, 8  # a Facebook user (known by their IG account 6) who also manages account 8's Page


async def _connect(harness, sandbox, account=MANAGER, session_id="browser-1"):
    url = await harness.connector.begin(flow="web", session_id=session_id, provider=Provider.FACEBOOK)
    landing = facebook_owner_allows(sandbox, url, account)
    return await harness.connector.complete(urlsplit(landing).query + "#_=_", flow="web", session_id=session_id,
                                            actor="test")


async def test_one_facebook_sign_in_connects_every_account_linked_to_the_users_pages(harness, sandbox):
    sandbox.control._call("POST", f"/facebook/users/{MANAGER}/pages", {"account": CLIENT})
    url = await harness.connector.begin(flow="web", session_id="b", provider=Provider.FACEBOOK)
    query = parse_qs(urlsplit(url).query)
    facebook = sandbox.control._call("GET", "/facebook")
    assert url.startswith(sandbox.base_url + "/www.facebook.com/v25.0/dialog/oauth?")
    assert query["client_id"] == [facebook["app_id"]] and "instagram_basic" in query["scope"][0]
    landing = facebook_owner_allows(sandbox, url, MANAGER)
    assert landing.endswith("#_=_")
    connection = await harness.connector.complete(urlsplit(landing).query, flow="web", session_id="b",
                                                  actor="test")
    expected = {sandbox.control.account(i)["ig_id"]: sandbox.control.account(i)["username"]
                for i in (MANAGER, CLIENT)}
    assert {c.ig_user_id: c.username for c in connection.accounts} == expected
    accounts, tokens = await harness.accounts(), await harness.tokens()
    assert {a.ig_user_id for a in accounts.values() if a.provider == Provider.FACEBOOK} == set(expected)
    now = harness.database.clock.now()
    for connected in connection.accounts:
        token = tokens[connected.account_id]
        assert token.provider == Provider.FACEBOOK and token.next_refresh_at is None  # never refreshed
        assert harness.plain(token).startswith("EAA")
        assert timedelta(days=89) < token.data_access_expires_at - now <= timedelta(days=90)
        assert timedelta(days=59) < token.expires_at - now <= timedelta(days=60)
        assert "instagram_basic" in token.permissions.split(",")
    # The page without an Instagram account was passed over; the code was exchanged once.
    assert len(connection.accounts) == 2
    assert len(sandbox.control.calls(endpoint="fb_token")) == 1


async def test_a_facebook_account_is_synced_from_graph_facebook_com_and_costs_one_call_when_unchanged(
        harness, sandbox):
    connected = (await _connect(harness, sandbox)).first
    await harness.due([connected.account_id])
    assert (await harness.sync()).get(Outcome.SYNCED_FULL) == 1
    stored = await harness.media_map(connected.account_id)
    assert set(stored) == set(sandbox.control.media_ids(MANAGER, limit=200))
    account = (await harness.accounts())[connected.account_id]
    assert account.username == sandbox.control.account(MANAGER)["username"] and account.followers_count
    mark = max(c["id"] for c in sandbox.control.calls())
    await harness.due([connected.account_id])
    assert (await harness.sync()).get(Outcome.SYNCED) == 1
    later = sandbox.control.calls(since_id=mark)
    assert [c["endpoint"] for c in later] == ["fb_user"]  # one call on graph.facebook.com, nothing on Instagram's


async def test_the_daily_probe_reads_debug_token_and_a_lost_data_access_needs_the_owner(harness, sandbox):
    connection = await _connect(harness, sandbox)
    ids = [c.account_id for c in connection.accounts]
    sandbox.control._call("POST", f"/facebook/users/{MANAGER}/data-access", {"expires_in": 5 * 86_400})
    await _probe_now(harness, ids)
    assert (await harness.run_worker()).get(Outcome.ALIVE) == len(ids)
    tokens = await harness.tokens()
    now = harness.database.clock.now()
    assert all(timedelta(days=4) < tokens[i].data_access_expires_at - now <= timedelta(days=5) for i in ids)
    async with harness.database.transaction() as session:  # the worker's alert sweep, a minute on
        assert await alerts.sweep_expiring(session, now=now, within=timedelta(days=7)) == len(ids)
    assert {a.kind for a in await harness.alerts()} == {alerts.EXPIRING}
    sandbox.control._call("POST", f"/facebook/users/{MANAGER}/data-access", {"expires_in": 0})
    await _probe_now(harness, ids)
    assert (await harness.run_worker()).get(Outcome.NEEDS_REAUTH) == len(ids)
    accounts = await harness.accounts()
    assert all(accounts[i].status == AccountStatus.NEEDS_REAUTH for i in ids)
    assert all("data access" in (accounts[i].status_reason or "") for i in ids)
    assert not [c for c in sandbox.control.calls() if "refresh" in c["endpoint"] or c["endpoint"] == "exchange"]


async def test_a_facebook_token_is_never_refreshed_and_reconnecting_revives_every_account(harness, sandbox):
    connection = await _connect(harness, sandbox)
    with pytest.raises(errors.ConfigError):
        await harness.facebook.refresh(Secret("EAAnothing"))
    sandbox.control._call("POST", f"/facebook/users/{MANAGER}/data-access", {"expires_in": 0})
    await _probe_now(harness, [connection.first.account_id])
    await harness.run_worker()
    assert (await harness.accounts())[connection.first.account_id].status == AccountStatus.NEEDS_REAUTH
    again = await _connect(harness, sandbox, session_id="browser-2")
    assert not again.first.created
    assert (await harness.accounts())[connection.first.account_id].status == AccountStatus.ACTIVE


async def test_a_sign_in_whose_pages_link_no_instagram_account_connects_nothing(harness, sandbox):
    sandbox.control.account(11, account_type="PERSONAL")
    with pytest.raises(errors.CallbackError) as refused:
        await _connect(harness, sandbox, account=11)
    assert refused.value.code == "no_instagram_account"
    assert not await harness.accounts()


async def _probe_now(harness, ids):
    async with harness.database.transaction() as session:
        for account_id in ids:
            token = await session.get(Token, account_id)
            token.next_probe_at = harness.database.clock.now() - timedelta(seconds=1)
