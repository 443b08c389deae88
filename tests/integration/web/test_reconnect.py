"""An owner's reconnect link, over HTTP: no admin login, single use, expiring, bound to the browser and to the
account it was made for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from filmroll.service.alerts import mint_link
from filmroll.store import links
from filmroll.store.database import Database
from filmroll.store.tables import Account, Event, ReconnectLink, Token
from filmroll.vault import Keyring, Vault, parse_keys
from tests import aio
from tests.helpers import owner_allows
from tests.integration.web.conftest import snapshot
from tests.seeding import seed_accounts
from tests.webapp import RunningFilmroll


def _prepare(app: RunningFilmroll, database_url: str, sandbox, count: int = 2, dead: int = 1,
             ttl: timedelta = timedelta(days=7)) -> tuple[int, str]:
    """Seed ``count`` accounts, mark sandbox account ``dead`` as needing re-authorisation; returns (id, secret)."""

    async def run() -> tuple[int, str]:
        database = Database(database_url)
        try:
            vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
            ids = await seed_accounts(database, vault, sandbox, count, due=False)
            async with database.transaction() as session:
                await session.execute(update(Account).where(Account.id == ids[dead])
                                      .values(status="needs_reauth", status_reason="the owner changed the password"))
            secret, _ = await mint_link(database, ids[dead], ttl)
            return ids[dead], secret
        finally:
            await database.dispose()

    return aio.run(run())


def _read(database_url: str, account_id: int) -> tuple[Account, Token, list[ReconnectLink], int, list[str]]:
    async def run():  # type: ignore[no-untyped-def]
        database = Database(database_url)
        try:
            async with database.read() as session:
                account = await session.get(Account, account_id)
                token = await session.get(Token, account_id)
                found = list((await session.execute(select(ReconnectLink))).scalars())
                accounts = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
                kinds = list((await session.execute(select(Event.kind).where(Event.account_id == account_id)
                                                    .order_by(Event.id))).scalars())
                return account, token, found, accounts, kinds
        finally:
            await database.dispose()

    return aio.run(run())


@pytest.fixture
def browsers(filmroll) -> Iterator[Callable[[], httpx.Client]]:
    """Separate cookie jars, as separate browsers would have."""
    opened: list[httpx.Client] = []

    def new() -> httpx.Client:
        opened.append(filmroll.client())
        return opened[-1]

    yield new
    for client in opened:
        client.close()


def _go_to_instagram(owner: httpx.Client, secret: str) -> str:
    response = owner.post("/reconnect", data={"link": secret})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _return(owner: httpx.Client, location: str) -> httpx.Response:
    parts = urlsplit(location)
    return owner.get(f"{parts.path}?{parts.query}")


def test_the_owner_reconnects_once_without_an_admin_login(sandbox, filmroll, browsers, database_url):
    account_id, secret = _prepare(filmroll, database_url, sandbox)
    owner = browsers()
    before = snapshot(database_url)
    page = owner.get("/reconnect", params={"link": secret})
    assert page.status_code == 200 and "Reconnect @sandbox1" in page.text and "changed the password" in page.text
    assert snapshot(database_url) == before  # opening the link (or a mail scanner doing so) changes nothing
    authorize = _go_to_instagram(owner, secret)
    assert authorize.startswith(sandbox.base_url + "/oauth/authorize?") and "force_reauth=true" in authorize
    cookie = owner.cookies.jar
    (binding,) = [c for c in cookie if c.name == "filmroll_reconnect"]
    assert binding.has_nonstandard_attr("HttpOnly") and binding.path == "/"
    assert binding.expires is not None
    done = _return(owner, owner_allows(sandbox, authorize, account=1))
    assert done.status_code == 303 and done.headers["location"] == "/reconnected"
    confirmation = owner.get("/reconnected")
    username = sandbox.control.account(1)["username"]  # read from Instagram again at reconnect
    assert confirmation.status_code == 200 and f"@{username} is reconnected" in confirmation.text
    account, token, found, count, kinds = _read(database_url, account_id)
    assert account.status == "active" and account.status_reason is None and token.version == 2
    assert [link.used_at is not None for link in found] == [True] and count == 2
    assert kinds[-1] == "account.reconnected"
    assert len(sandbox.control.calls(endpoint="token")) == 1
    # Single use: the same link, from the same or any other browser, no longer works.
    for client in (owner, browsers()):
        again = client.get("/reconnect", params={"link": secret})
        assert again.status_code == 410 and '<code id="problem-code">used_link</code>' in again.text
        assert client.post("/reconnect", data={"link": secret}).status_code == 410


def test_signing_in_as_another_account_stores_nothing_and_keeps_the_link(sandbox, filmroll, browsers, database_url):
    account_id, secret = _prepare(filmroll, database_url, sandbox)
    owner = browsers()
    authorize = _go_to_instagram(owner, secret)
    refused = _return(owner, owner_allows(sandbox, authorize, account=5))
    assert refused.status_code == 400 and '<code id="problem-code">wrong_account</code>' in refused.text
    other = sandbox.control.account(5)["username"]
    assert f"as @{other}" in refused.text and "reconnects @sandbox1" in refused.text
    account, token, found, count, kinds = _read(database_url, account_id)
    assert account.status == "needs_reauth" and token.version == 1 and count == 2  # the stranger was not added
    assert [link.used_at for link in found] == [None] and kinds[-1:] == []
    # The owner signs in as the right account with the same link.
    authorize = _go_to_instagram(owner, secret)
    assert _return(owner, owner_allows(sandbox, authorize, account=1)).status_code == 303
    assert _read(database_url, account_id)[0].status == "active"


def test_a_reconnect_finished_in_another_browser_is_refused(sandbox, filmroll, browsers, database_url):
    _, secret = _prepare(filmroll, database_url, sandbox)
    location = owner_allows(sandbox, _go_to_instagram(browsers(), secret), account=1)
    before = snapshot(database_url)
    stranger = _return(browsers(), location)  # no binding cookie: not the browser that started it
    assert stranger.status_code == 400 and '<code id="problem-code">foreign_state</code>' in stranger.text
    assert snapshot(database_url) == before
    assert sandbox.control.calls(endpoint="token") == []


@pytest.mark.parametrize(("case", "status", "code"), [("unknown", 404, "unknown_link"), ("empty", 404, "unknown_link"),
                                                      ("expired", 410, "expired_link")])
def test_links_that_cannot_be_used_say_why_and_change_nothing(sandbox, filmroll, browsers, database_url, case, status,
                                                              code):
    _, secret = _prepare(filmroll, database_url, sandbox, ttl=timedelta(seconds=-1) if case == "expired" else
                         timedelta(days=7))
    link = {"unknown": secret[:-2] + "xy", "empty": "", "expired": secret}[case]
    owner = browsers()
    before = snapshot(database_url)
    page = owner.get("/reconnect", params={"link": link})
    assert page.status_code == status and f'<code id="problem-code">{code}</code>' in page.text
    assert "Back to the accounts" not in page.text  # an owner is not an admin
    assert owner.post("/reconnect", data={"link": link}).status_code == 410
    assert snapshot(database_url) == before and not owner.cookies


def test_links_are_stored_only_as_hashes(sandbox, filmroll, browsers, database_url):
    account_id, secret = _prepare(filmroll, database_url, sandbox)
    _, _, found, _, _ = _read(database_url, account_id)
    assert [link.secret_hash for link in found] == [links.digest(secret)]
    assert secret not in repr(snapshot(database_url))


def _disconnect(database_url: str, account_id: int) -> None:
    from filmroll.service import accounts

    async def run() -> None:
        database = Database(database_url)
        try:
            await accounts.disconnect(database, str(account_id), actor="test")
        finally:
            await database.dispose()

    aio.run(run())


def test_a_link_made_before_a_disconnect_is_refused_after_it(sandbox, filmroll, browsers, database_url):
    account_id, secret = _prepare(filmroll, database_url, sandbox)
    _disconnect(database_url, account_id)
    before = snapshot(database_url)
    owner = browsers()
    page = owner.get("/reconnect", params={"link": secret})
    assert page.status_code == 410 and '<code id="problem-code">used_link</code>' in page.text
    assert owner.post("/reconnect", data={"link": secret}).status_code == 410
    assert snapshot(database_url) == before


def test_a_reconnect_under_way_at_a_disconnect_stores_nothing(sandbox, filmroll, browsers, database_url):
    """The owner is at Instagram's consent screen when the operator disconnects the account: their Allow brings
    nothing back, and no code is exchanged."""
    account_id, secret = _prepare(filmroll, database_url, sandbox)
    owner = browsers()
    authorize = _go_to_instagram(owner, secret)
    _disconnect(database_url, account_id)
    location = owner_allows(sandbox, authorize, account=1)
    sandbox.control.clear_calls()
    before = snapshot(database_url)
    refused = _return(owner, location)
    assert refused.status_code == 400 and '<code id="problem-code">used_state</code>' in refused.text
    assert snapshot(database_url) == before
    assert sandbox.control.calls(endpoint="token") == []
    account, token, *_ = _read(database_url, account_id)
    assert account.status == "disconnected" and token is None
