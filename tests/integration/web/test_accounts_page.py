"""The accounts page tells the truth and acts through the same paths as the CLI: a dead token never reads as valid;
*Refresh now* is the leased refresh (refused while a worker holds the token, and without a call while the token is
too young); *Copy reconnect link* mints a single-use link shown once. Both need the session's CSRF token."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from filmroll.store.database import Database
from filmroll.store.tables import Account, ReconnectLink, Token
from filmroll.vault import Keyring, Vault, parse_keys
from tests import aio
from tests.e2e.test_database_outage import _read as _query
from tests.integration.web.conftest import csrf, signed_in
from tests.seeding import seed_accounts


def _seed(app, database_url: str, sandbox) -> list[int]:  # type: ignore[no-untyped-def]
    async def run() -> list[int]:
        database = Database(database_url)
        try:
            vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
            ids = await seed_accounts(database, vault, sandbox, 3, first=40, due=False)
            async with database.transaction() as session:
                await session.execute(update(Account).where(Account.id == ids[1]).values(
                    status="needs_reauth", status_reason="the owner changed their Instagram password"))
            return ids
        finally:
            await database.dispose()

    return aio.run(run())


def _row(page: str, account_id: int) -> str:
    found = re.search(rf'<tr>\s*<td data-label="Account"><a href="/accounts/{account_id}">.*?</tr>', page, re.S)
    assert found is not None
    return found[0]


def _set(database_url: str, account_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                await session.execute(update(Token).where(Token.account_id == account_id).values(**values))
        finally:
            await database.dispose()

    aio.run(run())


def test_the_accounts_page_tells_the_truth_and_refreshes_through_the_leased_path(filmroll, sandbox, database_url):
    active, dead, young = _seed(filmroll, database_url, sandbox)
    _set(database_url, young, issued_at=datetime.now(UTC) - timedelta(hours=2))
    admin = signed_in(filmroll)
    page = admin.get("/accounts").text
    assert re.search(r"in \d+ days", _row(page, active))
    assert "not working: the owner must sign in again" in _row(page, dead)
    assert not re.search(r"in \d+ days", _row(page, dead)) and 'id="refresh-' not in _row(page, dead)
    assert f'id="reconnect-link-{dead}"' in _row(page, dead)

    refused = admin.post(f"/accounts/{active}/refresh", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert _query(database_url, select(Token.refreshed_at).where(Token.account_id == active)) == [(None,)]
    sandbox.control.clear_calls()
    token = csrf(admin)
    done = admin.post(f"/accounts/{active}/refresh", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == f"/accounts?refreshed={active}"
    assert "refreshed just now" in _row(admin.get(done.headers["location"]).text, active)
    (refreshed_at,), = _query(database_url, select(Token.refreshed_at).where(Token.account_id == active))
    assert refreshed_at is not None
    assert len(sandbox.control.calls(endpoint="refresh")) == 1

    too_young = admin.post(f"/accounts/{young}/refresh", data={"csrf_token": token})
    assert too_young.status_code == 409 and "under 24 hours old" in too_young.text
    _set(database_url, active, issued_at=datetime.now(UTC) - timedelta(days=2), lease_owner="worker-elsewhere",
         lease_until=datetime.now(UTC) + timedelta(minutes=1))
    busy = admin.post(f"/accounts/{active}/refresh", data={"csrf_token": token})
    assert busy.status_code == 409 and "a worker is refreshing or probing" in busy.text
    assert len(sandbox.control.calls(endpoint="refresh")) == 1  # neither called Instagram


def test_copy_reconnect_link_mints_a_single_use_link_shown_once(filmroll, sandbox, database_url):
    _, dead, _ = _seed(filmroll, database_url, sandbox)
    admin = signed_in(filmroll)
    assert admin.post(f"/accounts/{dead}/reconnect-link", data={"csrf_token": "forged"}).status_code == 403
    assert _query(database_url, select(ReconnectLink.id)) == []
    shown = admin.post(f"/accounts/{dead}/reconnect-link", data={"csrf_token": csrf(admin)})
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    url = re.search(r'id="reconnect-url" value="([^"]+)"', shown.text)
    assert url is not None and "/reconnect?link=" in url[1]
    owner = filmroll.client()  # the owner, not signed in
    landing = owner.get(url[1].replace(filmroll.settings.public_origin(), ""))
    assert landing.status_code == 200 and "Reconnect @sandbox41" in landing.text
    assert "Why: the owner changed their Instagram password." in landing.text and "))" not in landing.text
    assert len(_query(database_url, select(ReconnectLink.id).where(ReconnectLink.account_id == dead))) == 1
    assert admin.post("/accounts/999999/reconnect-link", data={"csrf_token": csrf(admin)}).status_code == 404


def test_the_list_pages_those_that_need_their_owner_first_and_finds_by_username(filmroll, database_url, sandbox):
    async def run() -> list[int]:
        database = Database(database_url)
        try:
            vault = Vault(Keyring(parse_keys(filmroll.settings.vault.keys.get_secret_value())))
            ids = await seed_accounts(database, vault, sandbox, 120, first=200, due=False)
            async with database.transaction() as session:
                await session.execute(update(Account).where(Account.id.in_(ids[100:107])).values(
                    status="needs_reauth"))
                await session.execute(update(Account).where(Account.id.in_(ids[5:8])).values(status="disconnected"))
            return ids
        finally:
            await database.dispose()

    ids = aio.run(run())
    admin = signed_in(filmroll)
    seen, url = [], "/accounts"
    while url:
        page = admin.get(url)
        assert page.status_code == 200, page.text
        rows = [int(i) for i in re.findall(r'<td data-label="Account"><a href="/accounts/(\d+)"', page.text)]
        assert len(rows) <= 50
        seen += rows
        found = re.search(r'href="(/accounts\?after=[^"]+)" id="next-page"', page.text)
        url = found[1].replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))  # every account exactly once
    assert seen[:7] == ids[100:107]  # those whose owner must sign in again first
    assert seen[-3:] == ids[5:8]  # disconnected ones last
    first = admin.get("/accounts").text
    assert 'All <span class="count">120</span>' in first and "Need their owner <span class=\"count\">7</span>" in first

    only = admin.get("/accounts?status=needs_reauth").text
    assert sorted(int(i) for i in re.findall(r'href="/accounts/(\d+)"', only)) == ids[100:107]
    name = admin.get(f"/accounts/{ids[42]}").text
    username = re.search(r"<h1>@([\w.]+)</h1>", name)[1]
    found = admin.get(f"/accounts?q={username[-5:].upper()}").text
    assert ids[42] in [int(i) for i in re.findall(r'href="/accounts/(\d+)"', found)]
    assert "No account matches" in admin.get("/accounts?q=zzzzzzzz").text
    for bad in ("after=active:x", "after=gone:3", "status=gone", "q=%27%3B"):
        assert admin.get(f"/accounts?{bad}").status_code == 400, bad
