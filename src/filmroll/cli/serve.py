"""``filmroll serve``: the web UI, the OAuth callback and the feeds (upgrades the database schema on start).

A redirect URI on this machine (``https://localhost:8765/callback``) decides the port and makes serve speak HTTPS
with a certificate made on the fly, as ``filmroll connect`` does, so one set of settings serves both; a redirect
URI serve could not receive (http://, another port) stops it at start-up, saying why.

The HTTP server is Granian, chosen by ``bench/feeds.py`` (docs/benchmarks.md): on this machine it answered a feed
1.2-2x as fast as uvicorn with the same app. It runs one worker process (forked from this one, which only
supervises it and passes on SIGINT/SIGTERM): the app, its feed cache and the embedded worker live there.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from filmroll.cli.common import (
    LOCAL_HOSTS,
    ExitStatus,
    bind,
    console,
    err_console,
    fail,
    run,
    served_at,
    settings,
)

if TYPE_CHECKING:
    from filmroll.settings import Settings


async def _preflight(current: Settings) -> None:
    """What the app's start would do first (keys, then the schema migrated, then the keyring against the stored
    tokens), done here so that a failure is one line and an exit code, not a traceback from the worker process."""
    from filmroll.runtime import open_runtime

    async with open_runtime(current, upgrade=True):
        pass


def serve(
    host: str | None = typer.Option(None, help="Interface (default: FILMROLL_WEB__HOST or 127.0.0.1)"),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default: FILMROLL_WEB__PORT or 8000)"),
    tls_cert: Path | None = typer.Option(None, help="PEM certificate, to serve HTTPS directly"),
    tls_key: Path | None = typer.Option(None, help="PEM private key for --tls-cert"),
    self_signed: bool = typer.Option(False, "--self-signed", help="Serve HTTPS with a certificate made on the fly "
                                     "(the default for an https://localhost redirect URI)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Leave refresh and sync to `filmroll worker` "
                                                              "processes (for several web nodes)"),
) -> None:
    """Serve the admin UI and the OAuth callback, with an embedded worker that keeps tokens alive and media synced."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from filmroll.web.app import create_app

    current = settings()
    _, host, port = served_at(current, host=host, port=port)
    redirect = urlsplit(current.instagram.redirect_uri)
    local = redirect.hostname in LOCAL_HOSTS
    cert, key = tls_cert or current.web.tls_cert, tls_key or current.web.tls_key
    if bool(cert) != bool(key):
        fail("--tls-cert and --tls-key go together", ExitStatus.CONFIG)
    if local:
        default_port = 443 if redirect.scheme == "https" else 80
        if (redirect.port or default_port) != port:
            fail(f"the redirect URI {current.instagram.redirect_uri} brings the owner back to port "
                 f"{redirect.port or default_port}, but filmroll serve would listen on {port}: the browser would "
                 f"land where nothing listens. Use --port {redirect.port or default_port}, or change "
                 "FILMROLL_INSTAGRAM__REDIRECT_URI", ExitStatus.CONFIG)
        if redirect.scheme == "https":
            self_signed = self_signed or not cert  # a certificate made on the fly, as connect does
        else:
            err_console.print(f"[yellow]warning:[/yellow] the redirect URI {current.instagram.redirect_uri} is "
                              "http://; Instagram sends owners only to https:// addresses, even on localhost "
                              f"(https://localhost:{port}/callback would do)")
    # Every start-up failure is one line here, in the supervising process, before Granian forks the app: a second
    # filmroll on the port (Granian's SO_REUSEPORT would share it silently), missing keys, a damaged database.
    bind(host, port).close()
    run(_preflight(current))
    if self_signed and not cert:
        from filmroll.tlscert import self_signed as make_certificate

        made = Path(tempfile.mkdtemp(prefix="filmroll-tls-"))
        atexit.register(shutil.rmtree, made, True)
        cert, key = make_certificate(made, ("localhost", "127.0.0.1", "::1"))
        console.print("serving HTTPS with a self-signed certificate made just now (your browser warns once)")
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a server says what it is doing
    scheme = "https" if cert else "http"
    console.print(f"filmroll on {scheme}://{host}:{port} (callback: {current.instagram.redirect_uri})")
    # Granian's access log would print the callback's query string (code, state): filmroll logs requests itself.
    # Granian's read buffer holds the request line and headers: sized from the edge's own limits (web/limits.py),
    # so what exceeds them is refused (431) before it takes memory; headers must arrive within the body's time too.
    http1 = HTTP1Settings(header_read_timeout=int(current.web.body_timeout_seconds * 1000),
                          max_buffer_size=max(65_536, current.web.max_header_bytes + current.web.max_url_bytes + 8_192))
    server = Granian("filmroll.web.app:create_app", address=host, port=port, interface=Interfaces.ASGI, workers=1,
                     http=HTTPModes.http1 if not cert else HTTPModes.auto, websockets=False, log_access=False,
                     log_level=LogLevels.warning, ssl_cert=Path(cert) if cert else None,
                     ssl_key=Path(key) if key else None, http1_settings=http1)
    server.serve(target_loader=partial(create_app, current, worker=not no_worker, freeze_gc=True), wrap_loader=False)
