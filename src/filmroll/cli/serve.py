"""``filmroll serve``: the web UI, the OAuth callback and the feeds (upgrades the database schema on start).

The HTTP server is Granian, chosen by ``bench/feeds.py`` (docs/benchmarks.md): on this machine it answered a feed
1.2-2x as fast as uvicorn with the same app. It runs one worker process (forked from this one, which only
supervises it and passes on SIGINT/SIGTERM): the app, its feed cache and the embedded worker live there.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import typer

from filmroll.cli.common import ExitStatus, console, fail, settings


def serve(
    host: str | None = typer.Option(None, help="Interface (default: FILMROLL_WEB__HOST or 127.0.0.1)"),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default: FILMROLL_WEB__PORT or 8000)"),
    tls_cert: Path | None = typer.Option(None, help="PEM certificate, to serve HTTPS directly"),
    tls_key: Path | None = typer.Option(None, help="PEM private key for --tls-cert"),
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
    host = host or current.web.host
    port = port if port is not None else current.web.port
    cert, key = tls_cert or current.web.tls_cert, tls_key or current.web.tls_key
    if bool(cert) != bool(key):
        fail("--tls-cert and --tls-key go together", ExitStatus.CONFIG)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a server says what it is doing
    if not current.web.access_log:
        logging.getLogger("filmroll.access").setLevel(logging.WARNING)
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
