"""The sync tests' harness: seeded accounts, due on demand, synced by real workers against the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from filmroll.service.sync import Syncer, SyncPolicy
from filmroll.store.database import Database
from filmroll.store.tables import Account, MediaItem
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.worker import Worker, sync_job
from tests.integration.service.conftest import instagram_for
from tests.seeding import seed_accounts


class Env:
    def __init__(self, database, vault, instagram, sandbox) -> None:
        self.database, self.vault, self.instagram, self.sandbox = database, vault, instagram, sandbox

    async def seed(self, indexes: list[int]) -> list[int]:
        ids = []
        for index in indexes:
            ids += await seed_accounts(self.database, self.vault, self.sandbox, 1, first=index, due=False)
        await self.due(ids)
        return ids

    async def due(self, ids: list[int], *, full: bool = False) -> None:
        async with self.database.transaction() as session:
            for account_id in ids:
                account = await session.get(Account, account_id)
                account.next_sync_at = datetime.now(UTC) - timedelta(seconds=1)
                if full:
                    account.full_synced_at = datetime.now(UTC) - timedelta(days=2)

    def syncer(self, owner: str, policy: SyncPolicy | None = None) -> Syncer:
        return Syncer(self.database, self.vault, self.instagram, owner=owner, policy=policy)

    async def sync(self, owners: int = 1, policy: SyncPolicy | None = None) -> dict[str, int]:
        async def one(owner: str) -> dict[str, int]:
            syncer = self.syncer(owner, policy)
            worker = Worker(self.database, [sync_job(syncer)], owner=owner, idle_poll=0.05)
            return dict((await worker.run(asyncio.Event(), until_idle=True)).outcomes)

        results = await asyncio.gather(*(one(f"sync-{n}") for n in range(owners)))
        merged: dict[str, int] = {}
        for result in results:
            for key, value in result.items():
                merged[key] = merged.get(key, 0) + value
        return merged

    async def media(self, account_id: int, live: bool = True) -> list[MediaItem]:
        async with self.database.read() as session:
            query = select(MediaItem).where(MediaItem.account_id == account_id).order_by(MediaItem.timestamp.desc())
            rows = list((await session.execute(query)).scalars())
        return [m for m in rows if m.deleted_at is None] if live else rows

    async def media_map(self, account_id: int) -> dict[str, MediaItem]:
        return {m.ig_media_id: m for m in await self.media(account_id)}


@pytest.fixture
async def env(sandbox, database_url) -> AsyncIterator[Env]:
    database = Database(database_url)
    instagram = instagram_for(sandbox)
    yield Env(database, Vault(Keyring(parse_keys(generate_key()))), instagram, sandbox)
    await instagram.aclose()
    await database.dispose()
