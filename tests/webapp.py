"""Run the real filmroll web app against the sandbox: served by uvicorn on a loopback socket (browsers, the CLI,
anything whose behaviour is the socket's), or in process for HTTP-level tests, where a socket would add only time.

In process, the app runs as uvicorn runs it (the ASGI lifespan, then each request through the whole middleware
stack) on an event loop of its own thread, so the embedded worker and concurrent requests behave as served; only
the bytes never cross a socket (httpx's ASGI transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from filmroll.passwords import hash_password
from filmroll.settings import (
    FacebookSettings,
    FeedsSettings,
    InstagramSettings,
    MetaSettings,
    MirrorSettings,
    PublishSettings,
    Settings,
    StorageSettings,
    VaultSettings,
    WebSettings,
)
from filmroll.store import admins
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
    transport: httpx.BaseTransport | None = None  # in process; None: served on base_url's socket
    # Every client handed out, closed when filmroll stops: a client a test forgot would otherwise be collected later
    # with its socket open, and the ResourceWarning (an error here) would fail whichever test was running then.
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def has_socket(self) -> bool:
        return self.transport is None

    def client(self, **options: Any) -> httpx.Client:
        """A client of this filmroll (a browser, to the app: its own cookie jar), by socket or in process."""
        options.setdefault("follow_redirects", False)
        options.setdefault("timeout", 30)
        client = httpx.Client(base_url=self.base_url, transport=self.transport, **options)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()


class _AppThread(httpx.BaseTransport):
    """An ASGI app with its lifespan on an event loop of its own thread; a sync httpx transport into it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        # Like a server: an exception in the app is a 500 to the client (and a test failure through its status).
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))

    def _call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=120)

    def start(self) -> None:
        self._thread.start()
        self._call(self._startup())

    async def _startup(self) -> None:
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._lifespan = asyncio.create_task(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"filmroll did not start: {answer.get('message')}")

    async def _shutdown(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        answer = await self._outbox.get()
        await self._lifespan
        if answer["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"filmroll did not stop cleanly: {answer.get('message')}")

    def stop(self) -> None:
        try:
            self._call(self._shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()

        async def send() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
                                  extensions=response.extensions)

        return self._call(send())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(sandbox, database_url: str, base_url: str, keys: str | None = None, *,
                 mirror: bool = False, feeds_base_url: str | None = None, publish_dir: str | None = None,
                 web: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> Settings:
    """filmroll's settings against the sandbox; the media mirror only when asked (its rendering is CPU work that
    other tests' timings need not share)."""
    return Settings(
        database_url=database_url,
        instagram=InstagramSettings(app_id=sandbox.app_id, app_secret=sandbox.app_secret,
                                    redirect_uri=f"{base_url}/callback",
                                    authorize_url=sandbox.base_url + "/oauth/authorize",
                                    token_url=sandbox.base_url + "/oauth/access_token", graph_url=sandbox.base_url,
                                    scopes=["instagram_business_basic", "instagram_business_manage_insights"]),
        facebook=FacebookSettings(app_id=sandbox.config.resolved_meta_app_id(),
                                  app_secret=sandbox.config.resolved_meta_app_secret(),
                                  dialog_url=sandbox.base_url + "/www.facebook.com/v25.0/dialog/oauth",
                                  graph_url=sandbox.base_url + "/graph.facebook.com"),
        vault=VaultSettings(keys=keys or generate_key(), keys_file=Path("/nonexistent/filmroll.keys")),
        # Password checks at normal priority: on a test machine kept saturated by four test processes, idle-priority
        # checks crawl (a sign-in takes ~1 s instead of 0.15 s); the priority itself is bench/logins.py's to measure.
        web=WebSettings(public_url=base_url, **{"password_check_priority": "normal", **(web or {})}),
        mirror=MirrorSettings(enabled=mirror, cdn_hosts=[sandbox.base_url], eager_posts=4, processes=1),
        storage=StorageSettings(url=f"file:{tempfile.mkdtemp(prefix='filmroll-media-')}"),
        feeds=FeedsSettings(poll_seconds=0.2, base_url=feeds_base_url),
        publish=PublishSettings(dir=publish_dir),  # a change shows within a test's patience
        meta=MetaSettings(**(meta or {})),
    )


@functools.cache
def _admin_hash() -> str:
    return hash_password(ADMIN[1])  # argon2 is slow by design: hashed once per run, verified at every sign-in


async def _add_admin(database_url: str) -> None:
    """The test admin, on a migrated database (``database_url`` fixtures are), as ``filmroll admin create`` makes it."""
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            if await admins.find(session, ADMIN[0]) is None:
                await admins.create(session, ADMIN[0], _admin_hash(), database.clock.now())
    finally:
        await database.dispose()


@contextlib.contextmanager
def running_filmroll(sandbox, database_url: str, *, https: bool = False, keys: str | None = None,
                     worker: bool = False, socket: bool = True, mirror: bool = False,
                     feeds_base_url: str | None = None, publish_dir: str | None = None,
                     web: dict[str, Any] | None = None,
                     meta: dict[str, Any] | None = None) -> Iterator[RunningFilmroll]:
    port = free_port()
    scheme = "https" if https else "http"
    base_url = f"{scheme}://127.0.0.1:{port}"
    settings = settings_for(sandbox, database_url, base_url, keys, mirror=mirror, feeds_base_url=feeds_base_url,
                            publish_dir=publish_dir, web=web, meta=meta)
    if not https:
        sandbox.control.switches(require_https_redirect=False)
    sandbox.control.add_redirect_uri(settings.instagram.redirect_uri)
    aio.run(_add_admin(database_url))
    if not socket:
        app = _AppThread(create_app(settings, worker=worker))
        app.start()
        running = RunningFilmroll(base_url, settings, settings.instagram.redirect_uri, transport=app)
        try:
            yield running
        finally:
            running.close_clients()
            app.stop()
        return
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
        running = RunningFilmroll(base_url, settings, settings.instagram.redirect_uri)
        try:
            yield running
        finally:
            running.close_clients()
            server.should_exit = True
            thread.join(10)


_SUMMARY = re.compile(r"(\d+) posts · (\d+) mirrored(?:\s*·\s*(?:<span[^>]*>)?([^<\n]*))?")


def wait_until_mirrored(read_summary: Callable[[], str], posts: int, *, stall: float = 90,
                        limit: float = 900) -> str:
    """Wait until the account page says all ``posts`` are mirrored; returns what ``read_summary`` (the page, or its
    ``#mirror-summary``) gave last. The mirror's pace is the machine's (it draws and renders every picture): a test
    run beside others on two cores took over a minute for 78 posts that take 20 s alone. So this waits as long as
    the count keeps rising, and fails when it has not risen for ``stall`` seconds (a hang, or a failed pass waiting
    out its backoff: the mirror error, if any, is in the message), or after ``limit`` in all."""
    started = last_change = time.monotonic()
    best = -1
    while True:
        text = read_summary()
        found = _SUMMARY.search(text)
        assert found, f"no mirror summary in {text[:500]!r}"
        total, mirrored = int(found[1]), int(found[2])
        if total == posts and mirrored == posts:
            return text
        now = time.monotonic()
        if mirrored > best:
            best, last_change = mirrored, now
        assert now - last_change < stall and now - started < limit, found[0]
        time.sleep(0.5)
