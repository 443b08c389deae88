"""``filmroll demo``: the sandbox and filmroll together on SQLite, live in the terminal.

It connects sandbox accounts through the real OAuth flow (the sandbox consents automatically), runs the worker,
and shows accounts, token expiry and sync progress as they change. Meanwhile the sandbox plays Instagram's part:
new posts appear, and one owner changes their password, which the health probe catches.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from filmroll.cli.common import console, run


def _table(views: list[tuple[Any, Any]], media: dict[int | None, int], started: float, stats: Any, calls: int,
           log: list[str]) -> Group:
    # Columns as wide as they will ever get from the first frame: a column widening later would leave a stale copy
    # of the header behind in some terminals.
    # Sized for an 80-column terminal: the status (with why an account needs its owner) is what the demo is about,
    # so it takes the room that is left and wraps; the others are as wide as their widest value.
    table = Table(title="filmroll demo: accounts", title_justify="left", box=None, padding=(0, 1),
                  header_style="bold underline")
    for name, width in (("account", 16), ("status", 14), ("posts", 7), ("last sync", 9), ("expires", 10),
                        ("refresh", 10)):
        table.add_column(name, min_width=width, no_wrap=name != "status", overflow="fold")
    now = datetime.now(UTC)
    for view, account in views:
        synced = f"{media.get(account.id, 0)} / {account.media_count if account.media_count is not None else '?'}"
        last = f"{(now - view.last_synced_at).total_seconds():.0f} s ago" if view.last_synced_at else "pending"
        status = Text(view.status, style="green" if view.status == "active" else "red")
        if view.status_reason:
            status.append(f"\n{view.status_reason}", style="dim")
        table.add_row(f"@{view.username}", status, synced, last,
                      f"{view.token_expires_at:%Y-%m-%d}" if view.token_expires_at else "-",
                      f"{view.next_refresh_at:%Y-%m-%d}" if view.next_refresh_at else "-")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "starting"
    footer = Text(f"{time.monotonic() - started:.0f} s · worker: {outcomes} · calls to Instagram: {calls}",
                  style="bold")
    return Group(table, footer, *(Text(line, style="dim") for line in log[-5:]))


def demo(
    accounts: int = typer.Option(6, min=1, max=50, help="How many sandbox accounts to connect"),
    duration: float = typer.Option(0, min=0, help="Stop after this many seconds (0: run until Ctrl-C)"),
    directory: Path | None = typer.Option(None, help="Where the demo's database and key go (default: a temp dir)"),
    sync_interval: int = typer.Option(10, min=1, help="Seconds between syncs of an account (real default: 600)"),
) -> None:
    """Run the whole story offline: sandbox, OAuth connect, encrypted tokens, worker, live sync."""
    from sqlalchemy import func, select

    from filmroll.runtime import open_runtime
    from filmroll.sandbox import SandboxConfig, running_sandbox
    from filmroll.service import accounts as account_service
    from filmroll.service.policy import SyncPolicy
    from filmroll.settings import InstagramSettings, MirrorSettings, Settings, StorageSettings, VaultSettings
    from filmroll.store.tables import Account, MediaItem, Source, Token
    from filmroll.vault import generate_key, write_keys_file

    home = directory or Path(tempfile.mkdtemp(prefix="filmroll-demo-"))
    if directory is None:  # the demo's own: gone when it ends, however it ends
        atexit.register(shutil.rmtree, home, True)
    home.mkdir(parents=True, exist_ok=True)
    keys_file = home / "filmroll.keys"
    if not keys_file.exists():
        write_keys_file(keys_file, [generate_key()])

    with running_sandbox(SandboxConfig(seed=2026, auto_consent=True)) as sandbox:
        redirect_uri = sandbox.redirect_uri
        settings = Settings(
            database_url=f"sqlite:///{home / 'filmroll.db'}",
            instagram=InstagramSettings(app_id=sandbox.app_id, app_secret=sandbox.app_secret,
                                        redirect_uri=redirect_uri, authorize_url=sandbox.base_url + "/oauth/authorize",
                                        token_url=sandbox.base_url + "/oauth/access_token",
                                        graph_url=sandbox.base_url),
            vault=VaultSettings(keys_file=keys_file),
            # The sandbox's CDN, not Instagram's; one rendering process and a few posts' variants at once keep the
            # demo light (the rest are made when first asked for).
            mirror=MirrorSettings(cdn_hosts=[sandbox.base_url], eager_posts=6, processes=1),
            storage=StorageSettings(url=f"file:{home / 'media'}"))
        console.print(f"sandbox on {sandbox.base_url}; filmroll data in {home}")

        async def body() -> None:
            import aiohttp

            async with open_runtime(settings, upgrade=True) as runtime:
                connector = runtime.connector()
                log: list[str] = []
                async with aiohttp.ClientSession() as browser:
                    for index in range(accounts):
                        sandbox.control.switches(auto_consent_account=index)
                        url = await connector.begin(flow="cli", session_id="demo")
                        async with browser.get(url, allow_redirects=False) as response:
                            landing = response.headers["Location"]
                        connected = (await connector.complete(landing, flow="cli", session_id="demo",
                                                              actor="demo")).first
                        console.print(f"connected @{connected.username} through OAuth; token valid until "
                                      f"{connected.expires_at:%Y-%m-%d} UTC, stored encrypted")
                worker = runtime.worker(idle_poll=0.5,
                                        sync_policy=SyncPolicy(interval=timedelta(seconds=sync_interval)))
                stop = asyncio.Event()
                task = asyncio.create_task(worker.run(stop))
                started, rng, revoked = time.monotonic(), random.Random(7), False
                try:
                    with Live(console=console, refresh_per_second=4) as live:
                        next_post = started + 3
                        while not duration or time.monotonic() - started < duration:
                            if time.monotonic() > next_post:  # Instagram life goes on
                                index = rng.randrange(accounts)
                                sandbox.control.add_media(index, caption="A new post from the demo")
                                log.append(f"@{sandbox.control.account(index)['username']} posted on Instagram")
                                next_post = time.monotonic() + 4
                            if not revoked and time.monotonic() - started > 8 and accounts > 1:
                                revoked = True
                                sandbox.control.revoke(accounts - 1, "password_changed")
                                async with runtime.database.transaction() as session:  # probe it now, not tomorrow
                                    for token in (await session.execute(select(Token))).scalars():
                                        token.next_probe_at = datetime.now(UTC)
                                log.append(f"the owner of @{sandbox.control.account(accounts - 1)['username']} "
                                           "changed their password")
                            views = {v.id: v for v in await account_service.listing(runtime.database)}
                            async with runtime.database.read() as session:
                                rows = list((await session.execute(select(Account).order_by(Account.id))).scalars())
                                counts = dict((await session.execute(
                                    select(Source.account_id, func.count()).select_from(MediaItem)
                                    .join(Source, Source.id == MediaItem.source_id)
                                    .where(MediaItem.deleted_at.is_(None)).group_by(Source.account_id))).all())
                            calls = len(sandbox.control.calls())
                            live.update(_table([(views[a.id], a) for a in rows], counts, started, worker.stats, calls,
                                               log))
                            await asyncio.sleep(0.5)
                finally:
                    stop.set()
                    await task

        run(body())
    kept = f" (its data stays in {home})" if directory is not None else ""
    console.print(f"\nThe demo is over{kept}. Next, try:\n"
                  "  1. `filmroll sandbox` and the README's \"sandbox way\": connect an account yourself, through your "
                  "browser\n"
                  "  2. `filmroll serve`: the web UI, where you connect accounts and make feeds for a website\n"
                  "  3. `filmroll doctor` with your own Instagram app's settings, to connect a real account")
