"""Connecting, reconnecting, refreshing and disconnecting, on SQLite and PostgreSQL, against the sandbox."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from filmroll import errors
from filmroll.secret import Secret
from filmroll.service import accounts as account_service
from filmroll.service import keys as key_service
from filmroll.store import migrate, states
from filmroll.store import tokens as token_store
from filmroll.store.database import Database
from filmroll.store.lease import claim_one
from filmroll.store.tables import Account, Event, OAuthState, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from tests.harness import instagram_for
from tests.helpers import owner_allows

pytestmark = pytest.mark.anyio


def _consent(sandbox, authorize_url: str, account: int = 0) -> str:
    """The redirect's query string, with the "#_" Instagram appends."""
    return urlsplit(owner_allows(sandbox, authorize_url, account)).query + "#_"


async def _connect(harness, http, sandbox, account=0, session_id="browser-1"):
    url = await harness.connector.begin(flow="web", session_id=session_id)
    connection = await harness.connector.complete(_consent(sandbox, url, account), flow="web",
                                                  session_id=session_id, actor="test")
    assert len(connection.accounts) == 1  # Instagram Login: one token, one account
    return connection.first


async def test_connect_stores_the_account_and_an_encrypted_working_token(harness, sandbox, http):
    connected = await _connect(harness, http, sandbox, account=6)
    profile = sandbox.control.account(6)
    assert connected.created and connected.ig_user_id == profile["ig_id"] and connected.username == profile["username"]
    assert set(connected.permissions) == {"instagram_business_basic", "instagram_business_manage_insights"}
    async with harness.database.read() as session:
        token = await session.get(Token, connected.account_id)
        account = await session.get(Account, connected.account_id)
        stored_states = list((await session.execute(select(OAuthState))).scalars())
        events = list((await session.execute(select(Event))).scalars())
    plain = harness.vault.open(token.ciphertext, token.key_id, token.account_id).reveal()
    assert sandbox.control.inspect(plain) == {**sandbox.control.inspect(plain), "valid": True, "kind": "long"}
    assert plain.encode() not in token.ciphertext
    assert account.status == "active" and account.app_scoped_id == profile["scoped_id"]
    assert token.next_refresh_at is not None and token.issued_at < token.next_refresh_at < token.expires_at
    assert len(stored_states) == 1 and stored_states[0].used_at is not None
    assert [e.kind for e in events] == ["account.connected"]
    assert sandbox.control.calls(endpoint="token")[0]["outcome"] == "ok"


async def test_state_is_stored_only_as_a_hash_and_is_long_enough(harness, sandbox):
    url = await harness.connector.begin(flow="web", session_id="s")
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert len(state) >= 43  # 256 bits in base64url
    async with harness.database.read() as session:
        row = (await session.execute(select(OAuthState))).scalar_one()
    assert row.state_hash == states.digest(state) and state not in row.state_hash


async def test_reconnect_replaces_the_token_in_place(harness, sandbox, http):
    first = await _connect(harness, http, sandbox, account=2)
    async with harness.database.read() as session:
        before = await session.get(Token, first.account_id)
    second = await _connect(harness, http, sandbox, account=2)
    assert second.account_id == first.account_id and not second.created
    async with harness.database.read() as session:
        after = await session.get(Token, first.account_id)
        count = len(list((await session.execute(select(Account))).scalars()))
    assert count == 1 and after.version == before.version + 1 and after.ciphertext != before.ciphertext


async def test_state_reuse_and_foreign_session_are_refused_before_any_exchange(harness, sandbox, http):
    url = await harness.connector.begin(flow="web", session_id="mine")
    query = _consent(sandbox, url)
    with pytest.raises(errors.CallbackError) as foreign:
        await harness.connector.complete(query, flow="web", session_id="someone-else")
    assert foreign.value.code == "foreign_state"
    await harness.connector.complete(query, flow="web", session_id="mine")
    with pytest.raises(errors.CallbackError) as reused:
        await harness.connector.complete(query, flow="web", session_id="mine")
    assert reused.value.code == "used_state"
    assert len(sandbox.control.calls(endpoint="token")) == 1


async def test_denied_authorization_changes_nothing(harness, sandbox):
    await harness.connector.begin(flow="web", session_id="s")
    with pytest.raises(errors.AuthorizationDeniedError):
        await harness.connector.complete("error=access_denied&error_reason=user_denied&state=x", flow="web",
                                       session_id="s")
    async with harness.database.read() as session:
        assert (await session.execute(select(OAuthState))).scalar_one().used_at is None
    assert sandbox.control.calls(endpoint="token") == []


async def test_import_dashboard_token_checks_it_first(harness, sandbox):
    fresh = sandbox.control.mint_token(8, kind="long")["access_token"]
    connected = await harness.connector.import_token(Secret(fresh))
    assert connected.ig_user_id == sandbox.control.account(8)["ig_id"]
    older = sandbox.control.mint_token(9, kind="long", age_seconds=20 * 86_400)["access_token"]
    refreshed = await harness.connector.import_token(Secret(older))
    assert (refreshed.expires_at - connected.expires_at).total_seconds() > 0  # refreshed: a full 60 days
    with pytest.raises(errors.TokenInvalidError):
        await harness.connector.import_token(Secret("IGAAnot-a-token"))


async def test_refresh_now_goes_through_the_leased_path_and_says_why_it_cannot(harness, sandbox, http):
    connected = await _connect(harness, http, sandbox, account=3)
    calls = len(sandbox.control.calls(endpoint="refresh"))
    with pytest.raises(errors.AccountStateError, match="under 24 hours old") as young:
        await account_service.refresh_now(harness.refresher("cli"), str(connected.account_id))
    assert young.value.status == "too_early" and len(sandbox.control.calls(endpoint="refresh")) == calls
    two_days = timedelta(days=2)
    sandbox.control.advance(two_days.total_seconds())
    harness.database.clock.advance(two_days)
    async with harness.database.transaction() as session:  # a worker is refreshing or probing it right now
        assert await claim_one(session, token_store.REFRESHES, connected.account_id, owner="worker-a",
                                          now=harness.database.clock.now(), lease=timedelta(minutes=1))
    with pytest.raises(errors.AccountStateError, match="a worker is refreshing") as busy:
        await account_service.refresh_now(harness.refresher("cli"), str(connected.account_id))
    assert busy.value.status == "busy" and len(sandbox.control.calls(endpoint="refresh")) == calls
    async with harness.database.transaction() as session:
        await token_store.TOKEN.release(session, [connected.account_id], owner="worker-a")
    report = await account_service.refresh_now(harness.refresher("cli"), str(connected.account_id))
    assert report.outcome == "refreshed" and report.account.refreshed_at is not None
    assert report.account.status == "active" and (await harness.tokens())[connected.account_id].lease_owner is None
    sandbox.control.revoke(3, "password_changed")
    sandbox.control.advance(two_days.total_seconds())
    harness.database.clock.advance(two_days)
    report = await account_service.refresh_now(harness.refresher("cli"), report.account.username)
    assert report.outcome == "needs_reauth" and report.account.status == "needs_reauth"
    assert "password" in report.account.status_reason
    assert [e.kind for e in await harness.events("account.needs_reauth")] == ["account.needs_reauth"]
    assert [a.kind for a in await harness.alerts()] == ["account.needs_reauth"]
    with pytest.raises(errors.AccountStateError, match="reconnect it first") as dead:
        await account_service.refresh_now(harness.refresher("cli"), str(connected.account_id))
    assert dead.value.status == "needs_reauth"


async def test_disconnect_deletes_the_ciphertext(harness, sandbox, http):
    connected = await _connect(harness, http, sandbox, account=4)
    view = await account_service.disconnect(harness.database, str(connected.account_id), actor="test")
    assert view.status == "disconnected"
    async with harness.database.read() as session:
        assert await session.get(Token, connected.account_id) is None
    with pytest.raises(errors.AccountNotFoundError):
        await account_service.reveal(harness.database, harness.vault, str(connected.account_id), actor="t")


async def test_key_rotation_reencrypts_every_row_and_the_old_key_can_go(harness, sandbox, http):
    for account in range(3):
        await _connect(harness, http, sandbox, account=account, session_id=f"s{account}")
    new_key = generate_key()
    rotated = Vault(Keyring(parse_keys(f"{new_key},{harness.keys[0]}")))
    assert await key_service.reencrypt(harness.database, rotated) == 3
    assert await key_service.usage(harness.database) == {rotated.keyring.primary_id: 3}
    only_new = Vault(Keyring(parse_keys(new_key)))
    async with harness.database.read() as session:
        rows = list((await session.execute(select(Token))).scalars())
    for row in rows:
        assert sandbox.control.inspect(only_new.open(row.ciphertext, row.key_id, row.account_id).reveal())["valid"]
    assert await key_service.reencrypt(harness.database, only_new) == 0


async def test_a_missing_key_stops_start_up(harness, sandbox, http):
    await _connect(harness, http, sandbox)
    async with harness.database.read() as session:
        from filmroll.store.tokens import key_ids_in_use

        used = await key_ids_in_use(session)
    with pytest.raises(errors.KeyMissingError, match="Restore the key"):
        Keyring(parse_keys(generate_key())).require(used)


async def test_account_and_token_survive_a_restart(harness, sandbox, http, database_url):
    connected = await _connect(harness, http, sandbox, account=7)
    await harness.database.dispose()
    reopened = Database(database_url)
    try:
        assert await migrate.current(reopened) == migrate.head()
        _account, token = await account_service.reveal(reopened, harness.vault, f"@{connected.username}", actor="t")
        assert sandbox.control.inspect(token.reveal())["valid"]
        ig = instagram_for(sandbox)
        try:
            assert (await ig.me(token)).user_id == connected.ig_user_id
        finally:
            await ig.aclose()
    finally:
        await reopened.dispose()
