"""Serving the sandbox: in the foreground for ``filmroll sandbox``, or in a background thread for tests.

uvicorn's access log is off on purpose: Graph URLs carry access tokens and app secrets in their query strings.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from filmroll.sandbox.app import TRANSPORT_KEY, create_app
from filmroll.sandbox.client import SandboxControl
from filmroll.sandbox.state import SandboxConfig


class _ResettableProtocol(HttpToolsProtocol):
    """Hands the app its TCP transport, so a fault can reset the connection like a flaky network would."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, Any] = dict(self.scope.get("extensions") or {})
        extensions[TRANSPORT_KEY] = self.transport
        self.scope["extensions"] = extensions


def uvicorn_config(config: SandboxConfig, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config), host=host, port=port, http=_ResettableProtocol, access_log=False,
        log_level=log_level, backlog=4096, timeout_keep_alive=30, lifespan="off",
    )


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(config: SandboxConfig, host: str, port: int, sock: socket.socket | None = None,
          announce: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then exit 0 after uvicorn's graceful shutdown.

    ``announce`` runs once the stop signals are handled, so whoever reads its output may stop us at once.
    """
    server = uvicorn.Server(uvicorn_config(config, host, port, log_level="info"))
    # uvicorn re-raises the signal it caught once it has shut down; these handlers turn that into a clean exit.
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    if announce is not None:
        announce()
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock] if sock else None)


@dataclass
class RunningSandbox:
    base_url: str
    control: SandboxControl
    app_id: str
    app_secret: str
    redirect_uri: str
    config: SandboxConfig


@contextlib.contextmanager
def running_sandbox(config: SandboxConfig | None = None, host: str = "127.0.0.1") -> Iterator[RunningSandbox]:
    """Start a sandbox on a free loopback port in this process; stop it on exit.

    ``with running_sandbox(SandboxConfig(seed=7)) as sandbox: httpx.get(sandbox.base_url + "/me", ...)``
    """
    config = config or SandboxConfig()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(config, host, port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="filmroll-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.01)
    base_url = f"http://{host}:{port}"
    control = SandboxControl(base_url)
    try:
        summary = control.summary()
        yield RunningSandbox(base_url, control, summary["app_id"], summary["app_secret"],
                             summary["redirect_uris"][0], config)
    finally:
        control.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
