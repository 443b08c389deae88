"""`filmroll serve` alone keeps tokens alive and media synced: its embedded worker does the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from filmroll.store.database import Database
from filmroll.store.tables import MediaItem, Source, Token
from tests import aio
from tests.integration.web.conftest import consent, signed_in, start_connect
from tests.webapp import running_filmroll


def _read(database_url: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        database = Database(database_url)
        try:
            async with database.read() as session:
                token = (await session.execute(select(Token))).scalar_one()
                source = (await session.execute(select(Source))).scalar_one()
                media = len(list((await session.execute(select(MediaItem.id))).all()))
                return token.version, source.last_synced_at, media
        finally:
            await database.dispose()

    return aio.run(read())


def _make_refresh_due(database_url: str) -> None:
    async def change() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                token = (await session.execute(select(Token))).scalar_one()
                token.next_refresh_at = datetime.now(UTC) - timedelta(seconds=1)
        finally:
            await database.dispose()

    aio.run(change())


def _connect_and_wait_for_the_first_sync(app, sandbox, database_url: str, account: int):  # type: ignore[no-untyped-def]
    """Sign in, connect the sandbox account through the web flow, and wait for the embedded worker's first sync
    (connecting schedules it at once); returns the signed-in client and (token version, last sync, posts)."""
    admin = signed_in(app)
    params = consent(sandbox, start_connect(admin), account=account)
    assert admin.get("/callback?" + urlencode(params)).status_code == 303
    deadline = time.monotonic() + 30
    while (state := _read(database_url))[1] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return admin, state


def test_serve_refreshes_and_syncs_on_its_own(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True, socket=False) as app:
        admin, state = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 8)
        deadline = time.monotonic() + 30
        assert state[2] == sandbox.control.account(8)["media_count"]
        sandbox.control.advance(2 * 86_400)  # old enough for Instagram to allow a refresh
        _make_refresh_due(database_url)
        while _read(database_url)[0] == 1:
            assert time.monotonic() < deadline + 30
            time.sleep(0.2)
        assert len(sandbox.control.calls(endpoint="refresh")) == 1
        admin.close()


def test_sync_now_on_the_accounts_page_has_the_worker_sync_at_once(sandbox, database_url):
    import re

    from tests.integration.web.conftest import csrf, snapshot

    with running_filmroll(sandbox, database_url, worker=True, socket=False) as app:
        admin, first = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 9)
        deadline = time.monotonic() + 30
        page = admin.get("/accounts").text
        count = sandbox.control.account(9)["media_count"]
        assert re.search(rf'class="posts">{count} <span class="muted">of {count}</span>', page)
        account_id = re.search(r'action="/accounts/(\d+)/sync"', page).group(1)

        # Not due for ten minutes; a new post appears on Instagram and the admin presses Sync now.
        sandbox.control.add_media(9, caption="Just posted")
        before = snapshot(database_url)
        forged = admin.post(f"/accounts/{account_id}/sync", data={"csrf_token": "forged"})
        assert forged.status_code == 403 and snapshot(database_url) == before
        outsider = app.client()  # not signed in
        assert outsider.post(f"/accounts/{account_id}/sync", data={"csrf_token": "x"}).headers["location"] == "/login"
        pressed = admin.post(f"/accounts/{account_id}/sync", data={"csrf_token": csrf(admin)})
        assert pressed.status_code == 303 and pressed.headers["location"] == "/accounts"
        # The sync stores the new post, then records itself: wait for both.
        while (state := _read(database_url))[2] == first[2] or state[1] == first[1]:
            assert time.monotonic() < deadline + 30, state
            time.sleep(0.2)
        assert state[2] == count + 1 and state[1] > first[1]
        assert admin.post("/accounts/999/sync", data={"csrf_token": csrf(admin)}).status_code == 404

        sandbox.control.revoke(9, "password_changed")
        pressed = admin.post(f"/accounts/{account_id}/sync", data={"csrf_token": csrf(admin)})
        while "needs reauth" not in admin.get("/accounts").text:  # the worker finds the token dead
            assert time.monotonic() < deadline + 60
            time.sleep(0.2)
        refused = admin.post(f"/accounts/{account_id}/sync", data={"csrf_token": csrf(admin)})
        assert refused.status_code == 409 and "reconnect it first" in refused.text
        assert f'action="/accounts/{account_id}/sync"' not in admin.get("/accounts").text
        admin.close()
        outsider.close()
