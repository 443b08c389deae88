"""`filmroll serve` alone keeps tokens alive and media synced: its embedded worker does the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from filmroll.store.database import Database
from filmroll.store.tables import Account, MediaItem, Token
from tests import aio
from tests.integration.web.conftest import consent, signed_in, start_connect
from tests.webapp import running_filmroll


def _read(database_url: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        database = Database(database_url)
        try:
            async with database.read() as session:
                token = (await session.execute(select(Token))).scalar_one()
                account = (await session.execute(select(Account))).scalar_one()
                media = len(list((await session.execute(select(MediaItem.id))).all()))
                return token.version, account.last_synced_at, media
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


def test_serve_refreshes_and_syncs_on_its_own(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True) as app:
        admin = signed_in(app)
        params = consent(sandbox, start_connect(admin), account=8)
        assert admin.get("/callback?" + urlencode(params)).status_code == 303
        deadline = time.monotonic() + 30
        while (state := _read(database_url))[1] is None:  # connect schedules the first sync at once
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        assert state[2] == sandbox.control.account(8)["media_count"]
        sandbox.control.advance(2 * 86_400)  # old enough for Instagram to allow a refresh
        _make_refresh_due(database_url)
        while _read(database_url)[0] == 1:
            assert time.monotonic() < deadline + 30
            time.sleep(0.2)
        assert len(sandbox.control.calls(endpoint="refresh")) == 1
        admin.close()
