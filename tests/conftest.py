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
