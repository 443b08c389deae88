"""Turning settings into the live objects the use-cases take: database, vault, Instagram client.

Only the edges (CLI commands, the web app's lifespan, the worker entry) call :func:`open_runtime`; everything below
receives plain objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from filmroll.clock import Clock
from filmroll.platform import InstagramClient
from filmroll.secret import Secret
from filmroll.settings import Settings
from filmroll.store import migrate
from filmroll.store.database import Database
from filmroll.store.tokens import key_ids_in_use
from filmroll.vault import Vault, load_keyring


@dataclass
class Runtime:
    settings: Settings
    database: Database
    vault: Vault
    instagram: InstagramClient


def instagram_client(settings: Settings, clock: Clock | None = None) -> InstagramClient:
    ig = settings.instagram
    return InstagramClient(app_id=ig.app_id, app_secret=Secret(ig.app_secret.get_secret_value()),
                           redirect_uri=ig.redirect_uri, authorize_url=ig.authorize_url, token_url=ig.token_url,
                           graph_url=ig.graph_url, graph_version=ig.graph_version, timeout=ig.timeout,
                           clock=clock)


def webhook(settings: Settings):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from filmroll.service.alerts import Webhook

    alerting = settings.alerts
    return Webhook(url=Secret(alerting.webhook_url.get_secret_value()),
                   secret=Secret(alerting.webhook_secret.get_secret_value()), link_base=settings.public_origin(),
                   link_ttl=timedelta(days=alerting.reconnect_link_days),
                   expiring_within=timedelta(days=alerting.expiring_days))


@asynccontextmanager
async def open_runtime(settings: Settings, *, upgrade: bool = True,
                       clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """Open everything, check the keyring against the stored tokens, and close it all on exit."""
    keyring = load_keyring(Secret(settings.vault.keys.get_secret_value()), settings.vault.keys_file)
    database = Database(settings.database_url, clock=clock)
    instagram = instagram_client(settings, database.clock)
    try:
        if upgrade:
            await migrate.upgrade(database)
        async with database.read() as session:
            keyring.require(await key_ids_in_use(session))
        yield Runtime(settings, database, Vault(keyring), instagram)
    finally:
        await instagram.aclose()
        await database.dispose()


def worker_for(runtime: Runtime, *, concurrency: int = 32, lease_seconds: int = 60, sync: bool = True,
               fault_points: str = "", idle_poll: float = 2.0, sync_policy=None):  # type: ignore[no-untyped-def]
    """The standard worker (refresh, probe and, unless ``sync`` is off, media sync) over a runtime; ``sync_policy``
    replaces the settings' (the demo syncs every few seconds)."""
    from datetime import timedelta

    from filmroll.faults import FaultPoints
    from filmroll.service.alerts import Alerter
    from filmroll.service.probe import Prober
    from filmroll.service.refresh import Refresher
    from filmroll.service.sync import Syncer
    from filmroll.store.batch import WriteBatch
    from filmroll.worker import Worker, alert_job, probe_job, refresh_job, sync_job, worker_id

    owner = worker_id()
    args = (runtime.database, runtime.vault, runtime.instagram)
    # In order of importance: the worker offers free slots to the first kinds first.
    policy = runtime.settings.refresh.policy()
    jobs = [refresh_job(Refresher(*args, owner=owner, policy=policy, faults=FaultPoints(fault_points)))]
    if runtime.settings.alerts.webhook_url.get_secret_value():
        jobs.append(alert_job(Alerter(runtime.database, webhook(runtime.settings), owner=owner)))
    batch = WriteBatch(runtime.database)
    jobs.append(probe_job(Prober(*args, owner=owner, policy=policy, batch=batch)))
    if sync:
        jobs.append(sync_job(Syncer(*args, owner=owner, batch=batch,
                                    policy=sync_policy or runtime.settings.sync.policy())))
    return Worker(runtime.database, jobs, owner=owner, concurrency=concurrency,
                  lease=timedelta(seconds=lease_seconds), idle_poll=idle_poll)
