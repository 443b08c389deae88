"""Connecting, reconnecting, refreshing and disconnecting, on SQLite and PostgreSQL, against the sandbox."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from filmroll import errors
from filmroll.secret import Secret
from filmroll.service import accounts as account_service
from filmroll.service import keys as key_service
from filmroll.store import migrate, states
from filmroll.store.database import Database
from filmroll.store.tables import Account, Event, OAuthState, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from tests.helpers import owner_allows
from tests.integration.service.conftest import instagram_for

pytestmark = pytest.mark.anyio


def _consent(sandbox, authorize_url: str, account: int = 0) -> str:
    """The redirect's query string, with the "#_" Instagram appends."""
    return urlsplit(owner_allows(sandbox, authorize_url, account)).query + "#_"


async def _connect(stack, http, sandbox, account=0, session_id="browser-1"):
    url = await stack.connector.begin(flow="web", session_id=session_id)
    return await stack.connector.complete(_consent(sandbox, url, account), flow="web",
                                          session_id=session_id, actor="test")


async def test_connect_stores_the_account_and_an_encrypted_working_token(stack, sandbox, http):
    connected = await _connect(stack, http, sandbox, account=6)
    profile = sandbox.control.account(6)
    assert connected.created and connected.ig_user_id == profile["ig_id"] and connected.username == profile["username"]
    assert set(connected.permissions) == {"instagram_business_basic", "instagram_business_manage_insights"}
    async with stack.database.read() as session:
        token = await session.get(Token, connected.account_id)
        account = await session.get(Account, connected.account_id)
        stored_states = list((await session.execute(select(OAuthState))).scalars())
        events = list((await session.execute(select(Event))).scalars())
    plain = stack.vault.open(token.ciphertext, token.key_id, token.account_id).reveal()
    assert sandbox.control.inspect(plain) == {**sandbox.control.inspect(plain), "valid": True, "kind": "long"}
    assert plain.encode() not in token.ciphertext
    assert account.status == "active" and account.app_scoped_id == profile["scoped_id"]
    assert token.next_refresh_at is not None and token.issued_at < token.next_refresh_at < token.expires_at
    assert len(stored_states) == 1 and stored_states[0].used_at is not None
    assert [e.kind for e in events] == ["account.connected"]
    assert sandbox.control.calls(endpoint="token")[0]["outcome"] == "ok"


async def test_state_is_stored_only_as_a_hash_and_is_long_enough(stack, sandbox):
    url = await stack.connector.begin(flow="web", session_id="s")
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert len(state) >= 43  # 256 bits in base64url
    async with stack.database.read() as session:
        row = (await session.execute(select(OAuthState))).scalar_one()
    assert row.state_hash == states.digest(state) and state not in row.state_hash


async def test_reconnect_replaces_the_token_in_place(stack, sandbox, http):
    first = await _connect(stack, http, sandbox, account=2)
    async with stack.database.read() as session:
        before = await session.get(Token, first.account_id)
    second = await _connect(stack, http, sandbox, account=2)
    assert second.account_id == first.account_id and not second.created
    async with stack.database.read() as session:
        after = await session.get(Token, first.account_id)
        count = len(list((await session.execute(select(Account))).scalars()))
    assert count == 1 and after.version == before.version + 1 and after.ciphertext != before.ciphertext


async def test_state_reuse_and_foreign_session_are_refused_before_any_exchange(stack, sandbox, http):
    url = await stack.connector.begin(flow="web", session_id="mine")
    query = _consent(sandbox, url)
    with pytest.raises(errors.CallbackError) as foreign:
        await stack.connector.complete(query, flow="web", session_id="someone-else")
    assert foreign.value.code == "foreign_state"
    await stack.connector.complete(query, flow="web", session_id="mine")
    with pytest.raises(errors.CallbackError) as reused:
        await stack.connector.complete(query, flow="web", session_id="mine")
    assert reused.value.code == "used_state"
    assert len(sandbox.control.calls(endpoint="token")) == 1


async def test_denied_authorization_changes_nothing(stack, sandbox):
    await stack.connector.begin(flow="web", session_id="s")
    with pytest.raises(errors.AuthorizationDeniedError):
        await stack.connector.complete("error=access_denied&error_reason=user_denied&state=x", flow="web",
                                       session_id="s")
    async with stack.database.read() as session:
        assert (await session.execute(select(OAuthState))).scalar_one().used_at is None
    assert sandbox.control.calls(endpoint="token") == []


async def test_import_dashboard_token_checks_it_first(stack, sandbox):
    fresh = sandbox.control.mint_token(8, kind="long")["access_token"]
    connected = await stack.connector.import_token(Secret(fresh))
    assert connected.ig_user_id == sandbox.control.account(8)["ig_id"]
    older = sandbox.control.mint_token(9, kind="long", age_seconds=20 * 86_400)["access_token"]
    refreshed = await stack.connector.import_token(Secret(older))
    assert (refreshed.expires_at - connected.expires_at).total_seconds() > 0  # refreshed: a full 60 days
    with pytest.raises(errors.TokenInvalidError):
        await stack.connector.import_token(Secret("IGAAnot-a-token"))


async def test_refresh_and_needs_reauth(stack, sandbox, http):
    connected = await _connect(stack, http, sandbox, account=3)
    sandbox.control.advance(2 * 86_400)
    view = await account_service.refresh(stack.database, stack.vault, stack.instagram, str(connected.account_id),
                                         actor="test")
    assert view.token_refreshed_at is not None and view.status == "active"
    sandbox.control.revoke(3, "password_changed")
    sandbox.control.advance(2 * 86_400)
    with pytest.raises(errors.TokenInvalidError):
        await account_service.refresh(stack.database, stack.vault, stack.instagram, view.username, actor="test")
    listing = await account_service.listing(stack.database)
    assert listing[0].status == "needs_reauth" and "password" in listing[0].status_reason


async def test_refresh_write_is_fenced_on_the_version(stack, sandbox, http):
    from datetime import UTC, datetime

    from filmroll.store import tokens

    connected = await _connect(stack, http, sandbox, account=5)
    async with stack.database.read() as session:
        token = await session.get(Token, connected.account_id)
    sealed = stack.vault.seal(Secret("IGAAnewer"), connected.account_id)
    now = datetime.now(UTC)
    async with stack.database.transaction() as session:
        assert await tokens.replace_if_version(session, connected.account_id, token.version, sealed, issued_at=now,
                                               expires_at=now, refreshed_at=now, next_refresh_at=None)
    async with stack.database.transaction() as session:  # a second writer holding the old version writes nothing
        assert not await tokens.replace_if_version(session, connected.account_id, token.version, sealed,
                                                   issued_at=now, expires_at=now, refreshed_at=now,
                                                   next_refresh_at=None)


async def test_disconnect_deletes_the_ciphertext(stack, sandbox, http):
    connected = await _connect(stack, http, sandbox, account=4)
    view = await account_service.disconnect(stack.database, str(connected.account_id), actor="test")
    assert view.status == "disconnected"
    async with stack.database.read() as session:
        assert await session.get(Token, connected.account_id) is None
    with pytest.raises(errors.AccountNotFoundError):
        await account_service.reveal(stack.database, stack.vault, str(connected.account_id), actor="t")


async def test_key_rotation_reencrypts_every_row_and_the_old_key_can_go(stack, sandbox, http):
    for account in range(3):
        await _connect(stack, http, sandbox, account=account, session_id=f"s{account}")
    new_key = generate_key()
    rotated = Vault(Keyring(parse_keys(f"{new_key},{stack.keys[0]}")))
    assert await key_service.reencrypt(stack.database, rotated) == 3
    assert await key_service.usage(stack.database) == {rotated.keyring.primary_id: 3}
    only_new = Vault(Keyring(parse_keys(new_key)))
    async with stack.database.read() as session:
        rows = list((await session.execute(select(Token))).scalars())
    for row in rows:
        assert sandbox.control.inspect(only_new.open(row.ciphertext, row.key_id, row.account_id).reveal())["valid"]
    assert await key_service.reencrypt(stack.database, only_new) == 0


async def test_a_missing_key_stops_start_up(stack, sandbox, http):
    await _connect(stack, http, sandbox)
    async with stack.database.read() as session:
        from filmroll.store.tokens import key_ids_in_use

        used = await key_ids_in_use(session)
    with pytest.raises(errors.KeyMissingError, match="Restore the key"):
        Keyring(parse_keys(generate_key())).require(used)


async def test_account_and_token_survive_a_restart(stack, sandbox, http, database_url):
    connected = await _connect(stack, http, sandbox, account=7)
    await stack.database.dispose()
    reopened = Database(database_url)
    try:
        assert await migrate.current(reopened) == migrate.head()
        _account, token = await account_service.reveal(reopened, stack.vault, f"@{connected.username}", actor="t")
        assert sandbox.control.inspect(token.reveal())["valid"]
        ig = instagram_for(sandbox)
        try:
            assert (await ig.me(token)).user_id == connected.ig_user_id
        finally:
            await ig.aclose()
    finally:
        await reopened.dispose()
