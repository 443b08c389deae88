from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from filmroll.store.database import Database
from filmroll.store.tables import Base
from tests import aio
from tests.helpers import owner_allows
from tests.webapp import ADMIN, RunningFilmroll, running_filmroll


@pytest.fixture
def filmroll(request, sandbox, database_url) -> Iterator[RunningFilmroll]:
    """filmroll in process; on a loopback socket for a test marked ``socket`` (its behaviour is the socket's)."""
    socket = request.node.get_closest_marker("socket") is not None
    with running_filmroll(sandbox, database_url, socket=socket) as app:
        yield app


def signed_in(app: RunningFilmroll, username: str = ADMIN[0], password: str = ADMIN[1]) -> httpx.Client:
    client = app.client()
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    done = client.post("/login", data={"csrf_token": token, "username": username, "password": password})
    assert done.status_code == 303, done.text
    return client


def csrf(client: httpx.Client) -> str:
    page = client.get("/accounts")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def start_connect(client: httpx.Client) -> str:
    """Press Connect; returns the authorize URL filmroll redirected to."""
    response = client.post("/connect", data={"csrf_token": csrf(client)})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def consent(sandbox, authorize_url: str, account: int = 0) -> dict[str, str]:
    """Let the sandbox's owner press Allow; returns the redirect's query parameters (code, state)."""
    location = owner_allows(sandbox, authorize_url, account)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def snapshot(database_url: str) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a request changed nothing."""

    async def read() -> dict[str, list[tuple]]:
        database = Database(database_url)
        try:
            async with database.read() as session:
                found = {}
                for table in Base.metadata.sorted_tables:
                    rows = await session.execute(select(table))
                    found[table.name] = sorted(tuple(map(repr, row)) for row in rows)
                return found
        finally:
            await database.dispose()

    return aio.run(read())
