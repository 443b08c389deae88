"""The one test harness for services and workers: a real database (SQLite file or PostgreSQL clone), a vault with a
fresh key, the process's shared HTTP session and an Instagram client pointed at the sandbox, plus the helpers the
tests share (seed accounts, make them due, run a worker until idle, read rows back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import select

from filmroll import errors
from filmroll.clock import Clock
from filmroll.platform import Clients, FacebookLoginClient, InstagramLoginClient
from filmroll.runtime import alert_job, http_session, probe_job, refresh_job, sync_job
from filmroll.secret import Secret
from filmroll.service.alerts import Alerter, Webhook
from filmroll.service.connect import Connector
from filmroll.service.policy import SyncPolicy
from filmroll.service.probe import Prober
from filmroll.service.refresh import Refresher
from filmroll.service.source_kinds import SourceKinds, SyncParts
from filmroll.service.sync import Syncer
from filmroll.store import sources
from filmroll.store.database import Database
from filmroll.store.tables import Account, Alert, Event, MediaItem, Source, Token
from filmroll.vault import Keyring, Vault, generate_key, parse_keys
from filmroll.vocabulary import Provider
from filmroll.worker import Worker
from tests.seeding import seed_accounts
from tests.webhooks import Receiver

WEBHOOK_SECRET = "whsec-test-0f3c9a"
LINK_BASE = "https://feeds.example.org"
SCOPES = ("instagram_business_basic", "instagram_business_manage_insights")


def instagram_for(sandbox: Any, clock: Clock | None = None,
                  session: aiohttp.ClientSession | None = None) -> InstagramLoginClient:
    return InstagramLoginClient(app_id=sandbox.app_id, app_secret=Secret(sandbox.app_secret),
                                redirect_uri=sandbox.redirect_uri, authorize_url=sandbox.base_url + "/oauth/authorize",
                                token_url=sandbox.base_url + "/oauth/access_token", graph_url=sandbox.base_url,
                                clock=clock, session=session)


def facebook_for(sandbox: Any, clock: Clock | None = None,
                 session: aiohttp.ClientSession | None = None) -> FacebookLoginClient:
    return FacebookLoginClient(app_id=sandbox.config.resolved_meta_app_id(),
                               app_secret=Secret(sandbox.config.resolved_meta_app_secret()),
                               redirect_uri=sandbox.redirect_uri,
                               dialog_url=sandbox.base_url + "/www.facebook.com/v25.0/dialog/oauth",
                               graph_url=sandbox.base_url + "/graph.facebook.com", clock=clock, session=session)


class Harness:
    def __init__(self, sandbox: Any, database: Database, http: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.database = database
        self.keys = [generate_key()]
        self.vault = Vault(Keyring(parse_keys(",".join(self.keys))))
        self.http = http
        # The harness moves database.clock forward in some tests; the client reads the same clock.
        self.instagram = instagram_for(sandbox, clock=database.clock, session=http)
        self.facebook = facebook_for(sandbox, clock=database.clock, session=http)
        self.clients = Clients([self.instagram, self.facebook])
        self.connector = Connector(database, self.vault, self.clients, scopes={Provider.INSTAGRAM_LOGIN: SCOPES})
        self.receiver: Receiver | None = None  # set by tests that receive alert webhooks

    # ----- building blocks ------------------------------------------------------------------------------------

    def refresher(self, owner: str = "worker-a", **options: Any) -> Refresher:
        return Refresher(self.database, self.vault, self.clients, owner=owner, **options)

    def prober(self, owner: str = "worker-a", **options: Any) -> Prober:
        return Prober(self.database, self.vault, self.clients, owner=owner, **options)

    def syncer(self, owner: str = "worker-a", policy: SyncPolicy | None = None, **options: Any) -> Syncer:
        return Syncer(self.database, self.vault, self.clients, owner=owner, policy=policy, **options)

    def webhook(self, **options: Any) -> Webhook:
        assert self.receiver is not None, "this test has no webhook receiver"
        return Webhook(url=Secret(self.receiver.url), secret=Secret(WEBHOOK_SECRET), link_base=LINK_BASE, **options)

    # ----- seeding ----------------------------------------------------------------------------------------------

    async def seed(self, indexes: list[int]) -> list[int]:
        """Sandbox accounts by index, connected, with their next sync due now."""
        ids = []
        for index in indexes:
            ids += await seed_accounts(self.database, self.vault, self.sandbox, 1, first=index, due=False)
        await self.due(ids)
        return ids

    async def due(self, ids: list[int], *, full: bool = False) -> None:
        async with self.database.transaction() as session:
            for account_id in ids:
                source = await sources.of_account(session, account_id)
                assert source is not None
                source.next_sync_at = datetime.now(UTC) - timedelta(seconds=1)
                if full:
                    source.full_synced_at = datetime.now(UTC) - timedelta(days=2)

    # ----- running workers --------------------------------------------------------------------------------------

    async def run_worker(self, owner: str = "worker-a", *, webhook: Webhook | None = None,
                         **options: Any) -> dict[str, int]:
        """Refresh and probe (and, with a receiver or ``webhook``, alerts) until nothing is due."""
        jobs = [refresh_job(self.refresher(owner))]
        if webhook is not None or self.receiver is not None:
            jobs.append(alert_job(Alerter(self.database, webhook or self.webhook(), self.http, owner=owner)))
        jobs.append(probe_job(self.prober(owner)))
        stats = await Worker(self.database, jobs, owner=owner, idle_poll=0.05, **options).run(
            asyncio.Event(), until_idle=True)
        return dict(stats.outcomes)

    async def sync(self, owners: int = 1, policy: SyncPolicy | None = None) -> dict[str, int]:
        """Sync workers (``owners`` of them, concurrently) until nothing is due; their outcomes added up."""
        async def one(owner: str) -> dict[str, int]:
            worker = Worker(self.database, [sync_job(self.syncer(owner, policy))], owner=owner, idle_poll=0.05)
            return dict((await worker.run(asyncio.Event(), until_idle=True)).outcomes)

        merged: dict[str, int] = {}
        for result in await asyncio.gather(*(one(f"sync-{n}") for n in range(owners))):
            for key, value in result.items():
                merged[key] = merged.get(key, 0) + value
        return merged

    async def sync_sources(self, owner: str = "sync-a", policy: SyncPolicy | None = None) -> dict[str, int]:
        """A worker syncing every built-in kind of source (accounts, hashtags, profiles) until nothing is due."""
        kinds = SourceKinds.builtin()
        parts = SyncParts(self.database, self.vault, self.clients, owner, policy or SyncPolicy())
        worker = Worker(self.database, [sync_job(kinds.syncers(parts), kinds)], owner=owner, idle_poll=0.05)
        return dict((await worker.run(asyncio.Event(), until_idle=True)).outcomes)

    async def connect_facebook(self, account: int, session_id: str = "browser-fb") -> Any:
        """The sandbox's Facebook user ``account`` signs in through the dialog: every account of their Pages."""
        from tests.helpers import facebook_owner_allows

        url = await self.connector.begin(flow="web", session_id=session_id, provider=Provider.FACEBOOK)
        landing = facebook_owner_allows(self.sandbox, url, account)
        return await self.connector.complete(urlsplit(landing).query, flow="web", session_id=session_id,
                                             actor="test")

    # ----- reading back -----------------------------------------------------------------------------------------

    async def tokens(self) -> dict[int, Token]:
        async with self.database.read() as session:
            return {t.account_id: t for t in (await session.execute(select(Token))).scalars()}

    async def accounts(self) -> dict[int, Account]:
        async with self.database.read() as session:
            return {a.id: a for a in (await session.execute(select(Account))).scalars()}

    async def sources(self) -> dict[int, Source]:
        """Each account's own source, by account id (its sync and mirror schedule, leases and failures)."""
        async with self.database.read() as session:
            return await sources.own(session)

    async def source(self, account_id: int) -> Source:
        async with self.database.read() as session:
            found = await sources.of_account(session, account_id)
        assert found is not None, f"account {account_id} has no source"
        return found

    def plain(self, token: Token) -> str:
        return self.vault.open(token.ciphertext, token.key_id, token.account_id).reveal()

    async def media(self, account_id: int, live: bool = True) -> list[MediaItem]:
        """The posts of the account's own source."""
        async with self.database.read() as session:
            query = (select(MediaItem).join(Source, Source.id == MediaItem.source_id)
                     .where(Source.account_id == account_id, Source.kind == "account")
                     .order_by(MediaItem.timestamp.desc()))
            rows = list((await session.execute(query)).scalars())
        return [m for m in rows if m.deleted_at is None] if live else rows

    async def media_map(self, account_id: int) -> dict[str, MediaItem]:
        return {m.ig_media_id: m for m in await self.media(account_id)}

    async def alerts(self) -> list[Alert]:
        async with self.database.read() as session:
            return list((await session.execute(select(Alert).order_by(Alert.id))).scalars())

    async def events(self, kind: str) -> list[Event]:
        async with self.database.read() as session:
            return list((await session.execute(select(Event).where(Event.kind == kind))).scalars())

    async def link_state(self, url: str) -> str:
        secret = parse_qs(urlsplit(url).query)["link"][0]
        try:
            await self.connector.check_link(secret)
        except errors.CallbackError as exc:
            return exc.code
        return "usable"


@asynccontextmanager
async def harness_for(sandbox: Any, database_url: str) -> AsyncIterator[Harness]:
    database = Database(database_url)
    http = http_session()
    try:
        yield Harness(sandbox, database, http)
    finally:
        await http.close()
        await database.dispose()
