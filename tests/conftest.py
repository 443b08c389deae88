"""Shared fixtures: one real sandbox on a loopback port per test session, reset to its seed before each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    from tests import databases

    return databases.sqlite_template(tmp_path_factory.mktemp("template") / "filmroll.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty database of each kind, each cloned from a template migrated once per run (a file copy,
    a ``CREATE DATABASE … TEMPLATE``); PostgreSQL ones are dropped after."""
    from tests import databases

    if request.param == "sqlite":
        path = tmp_path / "filmroll.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        path.chmod(0o600)  # as filmroll creates its database (a copy would be 0644)
        yield f"sqlite:///{path}"
    else:
        url, name = databases.postgres_database()
        yield url
        databases.drop_postgres_database(name)


def pytest_collection_modifyitems(session, config, items) -> None:
    """The longest tests first (the simulation, then the rest marked slow): a parallel run hands tests out in this
    order, and one started last would keep the whole run waiting on it alone."""
    items.sort(key=lambda item: (item.get_closest_marker("simulation") is None,
                                 item.get_closest_marker("slow") is None))


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
