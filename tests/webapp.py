"""Run the real filmroll web app (uvicorn, real sockets) against the sandbox, for integration and browser tests."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from filmroll.service import admins
from filmroll.settings import InstagramSettings, Settings, VaultSettings, WebSettings
from filmroll.store import migrate
from filmroll.store.database import Database
from filmroll.tlscert import self_signed
from filmroll.vault import generate_key
from filmroll.web.app import create_app
from tests import aio

ADMIN = ("admin", "correct horse battery staple")


@dataclass
class RunningFilmroll:
    base_url: str
    settings: Settings
    redirect_uri: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(sandbox, database_url: str, base_url: str, keys: str | None = None) -> Settings:
    return Settings(
        database_url=database_url,
        instagram=InstagramSettings(app_id=sandbox.app_id, app_secret=sandbox.app_secret,
                                    redirect_uri=f"{base_url}/callback",
                                    authorize_url=sandbox.base_url + "/oauth/authorize",
                                    token_url=sandbox.base_url + "/oauth/access_token", graph_url=sandbox.base_url,
                                    scopes=["instagram_business_basic", "instagram_business_manage_insights"]),
        vault=VaultSettings(keys=keys or generate_key(), keys_file=Path("/nonexistent/filmroll.keys")),
        web=WebSettings(public_url=base_url),
    )


async def _prepare(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate.upgrade(database)
        with contextlib.suppress(Exception):
            await admins.create(database, *ADMIN)
    finally:
        await database.dispose()


@contextlib.contextmanager
def running_filmroll(sandbox, database_url: str, *, https: bool = False, keys: str | None = None,
                     worker: bool = False) -> Iterator[RunningFilmroll]:
    port = free_port()
    scheme = "https" if https else "http"
    base_url = f"{scheme}://127.0.0.1:{port}"
    settings = settings_for(sandbox, database_url, base_url, keys)
    if not https:
        sandbox.control.switches(require_https_redirect=False)
    sandbox.control.add_redirect_uri(settings.instagram.redirect_uri)
    aio.run(_prepare(database_url))
    with tempfile.TemporaryDirectory() as directory:
        options = {}
        if https:
            cert, key = self_signed(Path(directory))
            options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        config = uvicorn.Config(create_app(settings, worker=worker), host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, lifespan="on", **options)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("filmroll did not start")
            time.sleep(0.02)
        try:
            yield RunningFilmroll(base_url, settings, settings.instagram.redirect_uri)
        finally:
            server.should_exit = True
            thread.join(10)
