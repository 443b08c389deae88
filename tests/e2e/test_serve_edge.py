"""``filmroll serve`` (Granian) against an attacker's requests, as served: a 1 GiB body and a 1 MiB header cost the
server no memory, a TLS-terminating filmroll sends HSTS everywhere, and its database files are private."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from filmroll.tlscert import self_signed
from filmroll.vault import generate_key
from tests.e2e.test_database_outage import _serving
from tests.e2e.test_workers import _env

pytestmark = pytest.mark.slow
GIB = 1 << 30


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (Granian's worker is a child), in bytes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    total, queue = 0, [pid]
    while queue:
        current = queue.pop()
        queue.extend(children.get(current, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _send(port: int, head: bytes, body_bytes: int = 0, *, chunked: bool = False) -> bytes:
    """Send ``head`` and up to ``body_bytes`` of body (stopping when the server closes), then read its answer."""
    block = b"a" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):  # refused and closed while we were still sending: as intended
            sock.settimeout(5)
            while sent < body_bytes:
                sock.sendall(b"100000\r\n" + block + b"\r\n" if chunked else block)
                sent += len(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            sock.settimeout(10)
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def test_a_gigabyte_body_and_a_megabyte_header_cost_no_memory(sandbox, tmp_path):
    env = _env(sandbox, f"sqlite:///{tmp_path / 'filmroll.db'}", generate_key())
    with _serving(env, tmp_path / "serve.log", "--no-worker") as (process, client):
        pid, port = process.pid, client.base_url.port
        time.sleep(1)  # let start-up settle before the baseline
        before = _tree_rss(pid)
        answers = {
            "login, announced": _send(port, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                      b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" % GIB, GIB),
            "login, chunked": _send(port, b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                    b"Content-Type: application/x-www-form-urlencoded\r\n\r\n", GIB, chunked=True),
            "callback, announced": _send(port, b"GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: %d\r\n\r\n" % GIB, GIB),
            "login, 1 MiB header": _send(port, b"GET /login HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) +
                                         b"\r\n\r\n"),
            "callback, 1 MiB header": _send(port, b"GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                            b"a" * (1 << 20) + b"\r\n\r\n"),
        }
        grown = _tree_rss(pid) - before
        statuses = {name: answer[:12].decode("latin-1") for name, answer in answers.items()}
        assert statuses == {"login, announced": "HTTP/1.1 413", "login, chunked": "HTTP/1.1 413",
                            "callback, announced": "HTTP/1.1 413", "login, 1 MiB header": "HTTP/1.1 431",
                            "callback, 1 MiB header": "HTTP/1.1 431"}, answers
        for name in ("login, announced", "login, chunked", "callback, announced"):
            assert b"content-security-policy" in answers[name].lower()  # filmroll's own refusal, its page headers
        print(f"RSS grew by {grown / 1e6:.1f} MB over {len(answers)} hostile requests")
        assert grown < 50e6
        assert client.get("/healthz").status_code == 200  # still serving


def test_serving_tls_sends_hsts_everywhere_and_keeps_the_database_private(sandbox, tmp_path):
    database = tmp_path / "filmroll.db"
    cert, key = self_signed(tmp_path)
    env = _env(sandbox, f"sqlite:///{database}", generate_key())
    env.pop("FILMROLL_WEB__PUBLIC_URL", None)
    old_umask = os.umask(0o022)  # a usual umask: files would be 0644 unless filmroll says otherwise
    try:
        with _serving(env, tmp_path / "serve.log", "--no-worker", "--tls-cert", str(cert), "--tls-key", str(key),
                      scheme="https") as (_, client):
            for path in ("/healthz", "/login", "/feeds/nothing.json", "/no/such/page"):
                response = client.get(path)
                assert response.headers.get("strict-transport-security") == \
                    "max-age=31536000; includeSubDomains", path
            files = {name: stat.S_IMODE(os.stat(name).st_mode) for name in
                     (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if name.exists()}
    finally:
        os.umask(old_umask)
    assert database in files and len(files) == 3, files
    assert set(files.values()) == {0o600}, {str(k): oct(v) for k, v in files.items()}
