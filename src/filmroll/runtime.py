"""The composition root: settings in, the live objects the use-cases take out (database, vault, the shared HTTP
session, one client per provider, the policies, the connector, the worker).

Only the edges (CLI commands, the web app's lifespan, the worker entry) call :func:`open_runtime`; everything below
receives plain objects and never sees :class:`~filmroll.settings.Settings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp

from filmroll.clock import Clock
from filmroll.errors import ConfigError
from filmroll.faults import FaultPoints
from filmroll.platform import Clients, FacebookLoginClient, InstagramLoginClient
from filmroll.platform.cdn import CdnClient
from filmroll.secret import Secret
from filmroll.service.activity import ActivityWatch
from filmroll.service.alerts import Alerter, Webhook
from filmroll.service.connect import Connector
from filmroll.service.deletion import Deleter
from filmroll.service.feed_documents import DocumentSettings
from filmroll.service.mirror import ChangedSettingsWatch, Mirror
from filmroll.service.policy import MirrorPolicy, RefreshPolicy, SyncPolicy
from filmroll.service.probe import Prober
from filmroll.service.publish import Publisher
from filmroll.service.refresh import Refresher
from filmroll.service.renderer import Renderer
from filmroll.service.source_kinds import SourceKinds, SourceSyncer, SyncParts
from filmroll.service.sync import Syncer
from filmroll.service.webhooks import WebhookHandler
from filmroll.settings import (
    AlertSettings,
    MirrorSettings,
    RefreshSettings,
    Settings,
    StorageSettings,
    SyncSettings,
)
from filmroll.storage import Storage, open_storage
from filmroll.store import deletions, feeds, migrate, sources, tokens, webhooks
from filmroll.store.alerts import ALERT
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.store.tokens import key_ids_in_use
from filmroll.vault import Vault, load_keyring
from filmroll.vocabulary import Provider
from filmroll.worker import DatabaseHealth, Job, Watch, Worker, worker_id

USER_AGENT = "filmroll"


def http_session(*, max_connections: int = 100) -> aiohttp.ClientSession:
    """The process's one HTTP client session: the Instagram client, the alerter and (next) the media mirror share
    its connection pool. Timeouts are per request; redirects are never followed where it matters (each caller says)."""
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})


def refresh_policy(refresh: RefreshSettings) -> RefreshPolicy:
    return RefreshPolicy(window=timedelta(days=refresh.window_days), jitter=timedelta(hours=refresh.jitter_hours),
                         probe_interval=timedelta(hours=refresh.probe_interval_hours))


def sync_policy(sync: SyncSettings) -> SyncPolicy:
    return SyncPolicy(interval=timedelta(minutes=sync.interval_minutes),
                      full_interval=timedelta(hours=sync.full_pass_hours), slow_down_above=sync.slow_down_above_percent)


def mirror_policy(mirror: MirrorSettings, storage: StorageSettings) -> MirrorPolicy:
    return MirrorPolicy(widths=tuple(mirror.widths), formats=tuple(mirror.formats), eager_posts=mirror.eager_posts,
                        videos=mirror.videos, max_image_bytes=int(mirror.max_image_mb * 1e6),
                        max_video_bytes=int(mirror.max_video_mb * 1e6),
                        retention=timedelta(days=storage.retention_days),
                        variant_budget_bytes=int(storage.variant_budget_mb * 1e6))


def storage(settings: StorageSettings, *, database_url: str = "") -> Storage:
    """The media storage; the default directory lives beside a SQLite database file (not wherever the command was
    run from)."""
    url = settings.url
    default = StorageSettings.model_fields["url"].default
    if url == default and database_url.startswith("sqlite") and "///" in database_url:
        database_file = Path(database_url.split("///", 1)[1].split("?", 1)[0])
        if database_file.name and database_file.name != ":memory:":
            url = f"file:{database_file.parent / default.removeprefix('file:')}"
    return open_storage(url, endpoint=settings.s3_endpoint, region=settings.s3_region,
                        access_key_id=settings.s3_access_key_id,
                        secret_access_key=Secret(settings.s3_secret_access_key.get_secret_value()))


def publish_target(target: str, s3: StorageSettings) -> Storage:
    """Where feeds are published: a directory, or S3 with the storage group's endpoint and keys."""
    url = target if "://" in target or target.startswith("file:") else f"file:{target}"
    return open_storage(url, endpoint=s3.s3_endpoint, region=s3.s3_region, access_key_id=s3.s3_access_key_id,
                        secret_access_key=Secret(s3.s3_secret_access_key.get_secret_value()))


def webhook(alerts: AlertSettings, *, link_base: str) -> Webhook:
    return Webhook(url=Secret(alerts.webhook_url.get_secret_value()),
                   secret=Secret(alerts.webhook_secret.get_secret_value()), link_base=link_base,
                   link_ttl=timedelta(days=alerts.reconnect_link_days),
                   expiring_within=timedelta(days=alerts.expiring_days))


def instagram_client(settings: Settings, *, clock: Clock | None = None,
                     session: aiohttp.ClientSession | None = None) -> InstagramLoginClient:
    ig = settings.instagram
    return InstagramLoginClient(app_id=ig.app_id, app_secret=Secret(ig.app_secret.get_secret_value()),
                                redirect_uri=ig.redirect_uri, authorize_url=ig.authorize_url, token_url=ig.token_url,
                                graph_url=ig.graph_url, graph_version=ig.graph_version, timeout=ig.timeout,
                                clock=clock, session=session)


def facebook_client(settings: Settings, *, clock: Clock | None = None,
                    session: aiohttp.ClientSession | None = None) -> FacebookLoginClient:
    fb = settings.facebook
    return FacebookLoginClient(app_id=fb.app_id, app_secret=Secret(fb.app_secret.get_secret_value()),
                               redirect_uri=settings.facebook_redirect_uri(), dialog_url=fb.dialog_url,
                               graph_url=fb.graph_url, graph_version=fb.graph_version,
                               timeout=settings.instagram.timeout, clock=clock, session=session)


# ----- the job kinds, as the worker knows them (store/lease.py draws their claims) --------------------------------

def refresh_job(refresher: Refresher) -> Job:
    return Job.of("refresh", tokens.REFRESHES, refresher.run, cancel_when_abandoned=False)


def probe_job(prober: Prober) -> Job:
    return Job.of("probe", tokens.PROBES, prober.run)


def sync_job(syncer: SourceSyncer, kinds: SourceKinds | None = None) -> Job:
    """Syncs of the sources of ``kinds`` (default: the built-in ones), each by ``syncer`` (one kind's, or
    :class:`~filmroll.service.source_kinds.SourceSyncers`: each kind's own)."""
    return Job.of("sync", sources.syncs((kinds or SourceKinds.builtin()).names), syncer.run)


def mirror_job(mirror: Mirror, kinds: SourceKinds | None = None) -> Job:
    return Job.of("mirror", sources.mirrors((kinds or SourceKinds.builtin()).names), mirror.run)


def publish_job(publisher: Publisher) -> Job:
    return Job.of("publish", feeds.PUBLISHES, publisher.run)


def alert_job(alerter: Alerter) -> Job:  # its claim step first queues the alerts of tokens about to expire
    return Job("alert", alerter.claim, alerter.run, ALERT)


def deletion_job(deleter: Deleter) -> Job:  # its claim step first requests the deletion of expired accounts
    return Job("deletion", deleter.claim, deleter.run, deletions.DELETION)


def webhook_job(handler: WebhookHandler) -> Job:
    return Job.of("webhook", webhooks.DELIVERIES, handler.run)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    vault: Vault
    http: aiohttp.ClientSession
    clients: Clients  # one per provider: the services ask it for the provider of the row they work on
    storage: Storage
    renderer: Renderer
    published: Storage | None = None  # FILMROLL_PUBLISH__DIR, when set: where the worker republishes feeds
    health: DatabaseHealth = field(default_factory=DatabaseHealth)  # as the embedded worker last saw it
    kinds: SourceKinds = field(default_factory=SourceKinds.builtin)  # the sources the worker syncs and mirrors

    @property
    def refresh_policy(self) -> RefreshPolicy:
        return refresh_policy(self.settings.refresh)

    @property
    def sync_policy(self) -> SyncPolicy:
        return sync_policy(self.settings.sync)

    @property
    def mirror_policy(self) -> MirrorPolicy:
        return mirror_policy(self.settings.mirror, self.settings.storage)

    def document_settings(self) -> DocumentSettings:
        """What a feed's documents are made with (the web tier's and `filmroll publish`'s)."""
        return DocumentSettings(tuple(self.settings.mirror.widths), tuple(self.settings.mirror.formats),
                                self.settings.feeds.dead_account_days, self.settings.feeds.max_posts,
                                self.settings.feeds.revoked_posts)

    def mirror(self, owner: str) -> Mirror:
        cdn = CdnClient(self.http, hosts=self.settings.mirror.cdn_hosts, timeout=self.settings.instagram.timeout)
        return Mirror(self.database, self.vault, self.clients, cdn, self.storage, self.renderer, owner=owner,
                      policy=self.mirror_policy, per_host=self.settings.mirror.per_host)

    def connector(self) -> Connector:
        return Connector(self.database, self.vault, self.clients, policy=self.refresh_policy,
                         scopes={Provider.INSTAGRAM_LOGIN: tuple(self.settings.instagram.scopes),
                                 Provider.FACEBOOK: tuple(self.settings.facebook.scopes)})

    def refresher(self, owner: str, faults: FaultPoints | None = None) -> Refresher:
        return Refresher(self.database, self.vault, self.clients, owner=owner, policy=self.refresh_policy,
                         faults=faults or FaultPoints())

    def prober(self, owner: str) -> Prober:
        return Prober(self.database, self.vault, self.clients, owner=owner, policy=self.refresh_policy)

    def syncer(self, owner: str, *, policy: SyncPolicy | None = None, batch: WriteBatch | None = None) -> Syncer:
        return Syncer(self.database, self.vault, self.clients, owner=owner, policy=policy or self.sync_policy,
                      batch=batch)

    def worker(self, *, concurrency: int = 32, lease_seconds: int = 60, sync: bool = True, fault_points: str = "",
               idle_poll: float = 2.0, sync_policy: SyncPolicy | None = None) -> Worker:
        """The standard worker: refresh, alerts (when a webhook is set), probe, media sync unless ``sync`` is off,
        and the media mirror unless FILMROLL_MIRROR__ENABLED is false; ``sync_policy`` replaces the settings' (the
        demo syncs every few seconds)."""
        owner = worker_id()
        # In order of importance: the worker offers free slots to the first kinds first.
        jobs: list[Job] = [refresh_job(self.refresher(owner, FaultPoints(fault_points)))]
        hook = None
        if self.settings.alerts.webhook_url.get_secret_value():
            hook = webhook(self.settings.alerts, link_base=self.settings.public_origin())
            jobs.append(alert_job(Alerter(self.database, hook, self.http, owner=owner)))
        batch = WriteBatch(self.database)
        jobs.append(probe_job(Prober(self.database, self.vault, self.clients, owner=owner,
                                     policy=self.refresh_policy, batch=batch)))
        if sync:
            parts = SyncParts(self.database, self.vault, self.clients, owner, sync_policy or self.sync_policy, batch,
                              hashtag_poll=timedelta(minutes=self.settings.hashtags.recent_poll_minutes))
            jobs.append(sync_job(self.kinds.syncers(parts), self.kinds))
        watches: list[Watch] = [ActivityWatch(self.database,
                                              timedelta(days=self.settings.meta.inactive_warning_days))]
        if self.settings.mirror.enabled:
            mirror = self.mirror(owner)
            jobs.append(mirror_job(mirror, self.kinds))
            watches.append(ChangedSettingsWatch(mirror))
        jobs.append(webhook_job(WebhookHandler(self.database, owner=owner, http=self.http, forward_to=hook)))
        retention = self.settings.accounts.retention_days
        jobs.append(deletion_job(Deleter(self.database, self.storage, owner=owner, published=self.published,
                                         retention=timedelta(days=retention) if retention else None)))
        if self.published is not None:
            jobs.append(publish_job(Publisher(self.mirror(owner), self.published, self.document_settings(),
                                              base_url=self.settings.publish.base_url.rstrip("/"), owner=owner)))
        return Worker(self.database, jobs, owner=owner, concurrency=concurrency,
                      lease=timedelta(seconds=lease_seconds), idle_poll=idle_poll, health=self.health,
                      watches=watches)


async def stored_key_ids(database_url: str) -> dict[str, int]:
    """Tokens an existing database holds, by key id; none when there is no database, no filmroll schema, or it
    cannot be read (whoever opens it next says why)."""
    database = Database(database_url, create=False)
    try:
        if await migrate.current(database) is None:
            return {}
        async with database.read() as session:
            return await key_ids_in_use(session)
    except Exception:
        return {}
    finally:
        await database.dispose()


async def require_keys(settings: Settings) -> None:
    """The keyring can be loaded; else the error says to make a key, or (the database holds tokens) to restore the
    keys file from a backup."""
    keys = Secret(settings.vault.keys.get_secret_value())
    try:
        load_keyring(keys, settings.vault.keys_file)
    except ConfigError:
        load_keyring(keys, settings.vault.keys_file, stored=await stored_key_ids(settings.database_url))
        raise


@asynccontextmanager
async def open_runtime(settings: Settings, *, upgrade: bool = False,
                       clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """Open everything, check the schema (or, with ``upgrade``, migrate it: `serve`, `worker`, `demo`) and the
    keyring against the stored tokens, and close it all on exit."""
    if upgrade:  # before anything creates a database: a missing keys file leaves nothing behind
        await require_keys(settings)
    database = Database(settings.database_url, clock=clock, create=upgrade)
    try:
        if upgrade:
            await migrate.upgrade(database)
        else:
            await migrate.require_current(database)
        async with database.read() as session:
            used = await key_ids_in_use(session)
        keyring = load_keyring(Secret(settings.vault.keys.get_secret_value()), settings.vault.keys_file,
                               stored=used)
    except BaseException:
        await database.dispose()
        raise
    http = http_session()
    clients = Clients([instagram_client(settings, clock=database.clock, session=http),
                       facebook_client(settings, clock=database.clock, session=http)])
    files = storage(settings.storage, database_url=settings.database_url)
    renderer = Renderer(settings.mirror.processes)
    published = publish_target(settings.publish.dir, settings.storage) if settings.publish.dir else None
    try:
        keyring.require(used)
        yield Runtime(settings, database, Vault(keyring), http, clients, files, renderer, published)
    finally:
        renderer.close()
        if published is not None:
            await published.close()
        await files.close()
        for client in clients:
            await client.aclose()
        await http.close()
        await database.dispose()
