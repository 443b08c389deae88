"""Shared fixtures: one real sandbox on a loopback port per test session, reset to its seed before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from filmroll.sandbox import RunningSandbox, SandboxConfig, running_sandbox

SEED = 20261123


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxConfig(seed=SEED)) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_sandbox_server: RunningSandbox) -> RunningSandbox:
    _sandbox_server.control.reset()
    return _sandbox_server


@pytest.fixture
def http(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty database of each kind; PostgreSQL ones are cloned from a template and dropped after."""
    from tests import databases

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'filmroll.db'}"
        from filmroll.store import migrate
        from filmroll.store.database import Database
        from tests import aio

        async def build() -> None:
            database = Database(url)
            await migrate.upgrade(database)
            await database.dispose()

        aio.run(build())
        yield url
    else:
        url, name = databases.postgres_database()
        yield url
        databases.drop_postgres_database(name)


def pytest_sessionfinish(session, exitstatus) -> None:
    from tests import databases

    databases.drop_template()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated, empty PostgreSQL database, for tests of what only a multi-machine deployment meets."""
    from tests import databases

    url, name = databases.postgres_database()
    yield url
    databases.drop_postgres_database(name)


@pytest.fixture
async def harness(sandbox, database_url):
    """The one harness of the service and worker tests (``tests/harness.py``), on each database."""
    from tests.harness import harness_for

    async with harness_for(sandbox, database_url) as harness:
        yield harness
