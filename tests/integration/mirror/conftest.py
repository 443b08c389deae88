"""The mirror's fixtures: storage on a local directory and on a real S3 server (moto's, one per test session), and
a Mirror wired to the harness's database, vault and Instagram client, fetching only from the sandbox's CDN."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from filmroll.platform.cdn import CdnClient
from filmroll.runtime import mirror_job
from filmroll.secret import Secret
from filmroll.service.mirror import Mirror
from filmroll.service.policy import MirrorPolicy
from filmroll.service.renderer import Renderer
from filmroll.storage import open_storage
from filmroll.worker import Worker
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server, s3_server


@pytest.fixture(scope="session")
def _s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return open_storage(f"file:{tmp_path / 'media'}")
    server: S3Server = request.getfixturevalue("_s3")
    bucket = f"filmroll-{secrets.token_hex(4)}"
    server.create_bucket(bucket)
    store = open_storage(f"s3://{bucket}/media", endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                         secret_access_key=Secret(SECRET_KEY))
    store.server, store.bucket = server, bucket  # type: ignore[attr-defined]  (the test reads the bucket past it)
    return store


@pytest.fixture
def local_storage(tmp_path):
    return open_storage(f"file:{tmp_path / 'media'}")


@pytest.fixture(scope="session")
def renderer() -> Iterator[Renderer]:
    made = Renderer(2)
    yield made
    made.close()


class MirrorRig:
    def __init__(self, harness: Any, storage: Any, renderer: Renderer, hosts: list[str]) -> None:
        self.harness = harness
        self.storage = storage
        self.renderer = renderer
        self.hosts = hosts

    def mirror(self, owner: str = "mirror-a", **policy: Any) -> Mirror:
        cdn = CdnClient(self.harness.http, hosts=self.hosts)
        return Mirror(self.harness.database, self.harness.vault, self.harness.clients, cdn, self.storage,
                      self.renderer, owner=owner, policy=MirrorPolicy(**{"eager_posts": 4, **policy}))

    async def run(self, owner: str = "mirror-a", **policy: Any) -> dict[str, int]:
        """A worker with the mirror job alone, until nothing is due; its outcomes."""
        worker = Worker(self.harness.database, [mirror_job(self.mirror(owner, **policy))], owner=owner,
                        idle_poll=0.05)
        return dict((await worker.run(asyncio.Event(), until_idle=True)).outcomes)

    async def keys(self) -> set[str]:
        """Every media object stored: under sources' prefixes, and accounts' (files from before sources)."""
        return {o.key for prefix in ("sources/", "accounts/") async for o in self.storage.list(prefix)}


@pytest.fixture
def rig(harness, storage, renderer, sandbox):
    return MirrorRig(harness, storage, renderer, [sandbox.base_url])


@pytest.fixture
def local_rig(harness, local_storage, renderer, sandbox):
    return MirrorRig(harness, local_storage, renderer, [sandbox.base_url])
