"""``filmroll serve``: the web UI and the OAuth callback (upgrades the database schema on start)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from filmroll.cli.common import ExitStatus, console, fail, settings


def serve(
    host: str | None = typer.Option(None, help="Interface (default: FILMROLL_WEB__HOST or 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default: FILMROLL_WEB__PORT or 8000)"),
    tls_cert: Path | None = typer.Option(None, help="PEM certificate, to serve HTTPS directly"),
    tls_key: Path | None = typer.Option(None, help="PEM private key for --tls-cert"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Leave refresh and sync to `filmroll worker` "
                                                              "processes (for several web nodes)"),
) -> None:
    """Serve the admin UI and the OAuth callback, with an embedded worker that keeps tokens alive and media synced."""
    import uvicorn

    from filmroll.web.app import create_app

    current = settings()
    host = host or current.web.host
    port = port if port is not None else current.web.port
    cert, key = tls_cert or current.web.tls_cert, tls_key or current.web.tls_key
    if bool(cert) != bool(key):
        fail("--tls-cert and --tls-key go together", ExitStatus.CONFIG)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a server says what it is doing
    scheme = "https" if cert else "http"
    console.print(f"filmroll on {scheme}://{host}:{port} (callback: {current.instagram.redirect_uri})")
    # uvicorn's access log would print the callback's query string (code, state): filmroll logs requests itself.
    uvicorn.run(create_app(current, worker=not no_worker), host=host, port=port, access_log=False, log_level="info",
                proxy_headers=False, ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None)
