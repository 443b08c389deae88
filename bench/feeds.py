"""Serving a feed: nginx with the published file, a bare Starlette app answering the same bytes from memory, and
`filmroll serve`'s app, on uvicorn and on Granian, measured by wrk on loopback in one run.

    .venv/bin/python bench/feeds.py [--duration 8] [--connections 64 256] [--posts 25]

Rows: nginx; each server with a raw ASGI app (no framework: the server's floor; on Granian also through its own RSGI
interface), the bare app and filmroll's app (how the server was chosen); then `filmroll serve --no-worker` itself as
shipped. The 304 rows send the identity answer's ETag, checked to give a 304 first. It makes a real feed first (the
sandbox in its own process, `filmroll connect --token`, `sync`, `mirror`, `feeds create`, `publish`), so every
server answers the same JSON document. One server runs at a time, with one worker process; wrk runs one thread: on
two cores, the server gets one and wrk the other. Needs Debian's nginx and wrk (installed here when missing).
Timings are this machine's, noisy by ±10-15 %: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, start_sandbox

from filmroll.sandbox.client import SandboxControl

BENCH = Path(__file__).resolve().parent


KINDS = {"raw": "raw ASGI", "rsgi": "raw RSGI", "bare": "bare Starlette", "filmroll": "filmroll app"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def need(program: str, package: str) -> str:
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin")
    if not found:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, capture_output=True)
        found = shutil.which(program) or shutil.which(program, path="/usr/sbin")
    assert found, f"{program} is missing (apt-get install {package})"
    return found


def make_feed(directory: Path, sandbox: str, posts: int) -> tuple[dict[str, str], Path]:
    """A connected, synced, mirrored account and a feed of its newest ``posts`` posts, published to a directory."""
    control = SandboxControl(sandbox)
    app = control.summary()
    account = next(a for a in control.accounts(limit=60)["data"] if a["media_count"] >= posts + 5)
    env = {**os.environ, "COLUMNS": "200", "FILMROLL_DATABASE_URL": f"sqlite:///{directory}/filmroll.db",
           "FILMROLL_VAULT__KEYS_FILE": str(directory / "filmroll.keys"),
           "FILMROLL_INSTAGRAM__APP_ID": app["app_id"], "FILMROLL_INSTAGRAM__APP_SECRET": app["app_secret"],
           "FILMROLL_INSTAGRAM__REDIRECT_URI": app["redirect_uris"][0],
           "FILMROLL_INSTAGRAM__AUTHORIZE_URL": sandbox + "/oauth/authorize",
           "FILMROLL_INSTAGRAM__TOKEN_URL": sandbox + "/oauth/access_token", "FILMROLL_INSTAGRAM__GRAPH_URL": sandbox,
           "FILMROLL_MIRROR__CDN_HOSTS": json.dumps([sandbox]), "FILMROLL_MIRROR__PROCESSES": "1",
           "FILMROLL_STORAGE__URL": f"file:{directory}/media", "FILMROLL_LOG_LEVEL": "ERROR"}
    env.pop("FILMROLL_VAULT__KEYS", None)

    def filmroll(*args: str, stdin: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "filmroll", *args], env=env, input=stdin, text=True, check=True,
                       capture_output=True, cwd=directory, timeout=600)

    token = control.mint_token(account["index"], kind="long", age_seconds=2 * 86_400)["access_token"]
    filmroll("keys", "generate")
    filmroll("db", "upgrade")  # only db upgrade, serve, worker and demo create the schema
    filmroll("connect", "--token", stdin=token + "\n")
    user = "@" + account["username"]
    filmroll("sync", user)
    filmroll("mirror", user)
    filmroll("feeds", "create", "Bench", "--account", user, "--limit", str(posts), "--slug", "bench")
    filmroll("publish", str(directory / "site"))
    return env, directory / "site"


def nginx(root: Path, directory: Path, port: int) -> subprocess.Popen:
    (directory / "nginx.conf").write_text(f"""
user root; worker_processes 1; daemon off; pid {directory}/nginx.pid; error_log {directory}/nginx.log warn;
events {{ worker_connections 4096; }}
http {{
  include /etc/nginx/mime.types;
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; open_file_cache max=100;
  client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy; fastcgi_temp_path {directory}/fcgi;
  uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {root};
    location /feeds/ {{ add_header Cache-Control "public, max-age=60, stale-while-revalidate=86400"; }}
  }}
}}
""")
    return subprocess.Popen([need("nginx", "nginx"), "-c", str(directory / "nginx.conf"), "-p", str(directory)])


def python_server(kind: str, server: str, port: int, env: dict[str, str], body: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(BENCH / "feed_servers.py"), kind, server, str(port), str(body)],
                            env=env, cwd=directory_of(env), stdout=subprocess.DEVNULL)


def directory_of(env: dict[str, str]) -> str:
    return str(Path(env["FILMROLL_VAULT__KEYS_FILE"]).parent)


def wait_up(url: str, process: subprocess.Popen) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            # Identity, as wrk asks: the ETag the 304 rows send must be the identity answer's (httpx would
            # otherwise ask for br/gzip and get their ETags, which an identity request never matches: a 200).
            answer = httpx.get(url, timeout=2, headers={"Accept-Encoding": "identity"})
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.1)


def not_modified(url: str, etag: str) -> list[str]:
    """The If-None-Match header of a 304 row, checked to really give a 304 (wrk counts a 200 as a success too)."""
    answer = httpx.get(url, headers={"If-None-Match": etag, "Accept-Encoding": "identity"}, timeout=5)
    if answer.status_code != 304:
        raise RuntimeError(f"{url} answered {answer.status_code}, not 304, to If-None-Match: {etag}")
    return [f"If-None-Match: {etag}"]


def wrk(url: str, connections: int, seconds: float, headers: list[str]) -> tuple[float, float]:
    """Requests per second and the 99th percentile latency in ms."""
    command = [need("wrk", "wrk"), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if "Non-2xx or 3xx" in out:
        raise RuntimeError(f"errors from {url}:\n{out}")
    return rate, float(p99.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--posts", type=int, default=25)
    parser.add_argument("--servers", nargs="+", default=["uvicorn", "granian"], choices=["uvicorn", "granian"])
    options = parser.parse_args()
    sandbox_process, sandbox = start_sandbox(seed=11)
    directory = Path(tempfile.mkdtemp(prefix="filmroll-bench-feeds-"))
    try:
        env, site = make_feed(directory, sandbox, options.posts)
        sandbox_process.terminate()  # nothing below calls Instagram: the sandbox would only take CPU
        body = site / "feeds" / "bench.json"
        raw = body.read_bytes()
        document = json.loads(raw)
        print(f"feed: {len(document['posts'])} posts, {len(raw) / 1024:.1f} KB, "
              f"{len(gzip.compress(raw, 9)) / 1024:.1f} KB gzipped; wrk -t1, {options.duration:g} s a row\n")
        rows: list[tuple[str, str, dict[int, tuple[float, float]]]] = []

        def measure(name: str, what: str, url: str, headers: list[str] = ()) -> None:  # type: ignore[assignment]
            wrk(url, 16, 1, list(headers))  # warm up
            rows.append((name, what, {c: wrk(url, c, options.duration, list(headers)) for c in options.connections}))
            figures = "  ".join(f"c{c}: {r:8.0f}/s p99 {p:5.1f} ms" for c, (r, p) in rows[-1][2].items())
            print(f"  {name:<22} {what:<14} {figures}", flush=True)

        port = free_port()
        server = nginx(site, directory, port)
        try:
            served = wait_up(f"http://127.0.0.1:{port}/feeds/bench.json", server)
            assert served.content == raw
            measure("nginx (static file)", "JSON 200", f"http://127.0.0.1:{port}/feeds/bench.json")
        finally:
            server.terminate()
            server.wait()
        for name in options.servers:
            for kind in ("raw", *(("rsgi",) if name == "granian" else ()), "bare", "filmroll"):
                port = free_port()
                process = python_server(kind, name, port, env, body)
                try:
                    url = f"http://127.0.0.1:{port}/feeds/bench.json"
                    answer = wait_up(url, process)
                    assert answer.content == raw, "the servers must answer the same bytes"
                    label = f"{name} + {KINDS[kind]}"
                    wrk(url, 64, max(2.0, options.duration / 2), [])  # the server warms up (excluded)
                    measure(label, "JSON 200", url)
                    measure(label, "JSON 304", url, not_modified(url, answer.headers["etag"]))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        # `filmroll serve` itself, as shipped (Granian, its one worker process, the collector frozen after start-up).
        # Its access log off, as nginx's is here; then on (a line per request to a file), for its cost.
        for access_log in ("false", "true"):
            port = free_port()
            with (directory / "serve.log").open("w") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "filmroll", "serve", "--no-worker", "--port", str(port)],
                    env={**env, "FILMROLL_WEB__ACCESS_LOG": access_log,
                         "FILMROLL_INSTAGRAM__REDIRECT_URI": f"http://127.0.0.1:{port}/callback"},
                    cwd=directory, stdout=log, stderr=log)
            try:
                url = f"http://127.0.0.1:{port}/feeds/bench.json"
                answer = wait_up(url, process)
                assert answer.content == raw
                wrk(url, 64, max(2.0, options.duration / 2), [])
                if access_log == "true":
                    measure("filmroll serve, logging", "JSON 200", url)
                    continue
                label = "filmroll serve"
                measure(label, "JSON 200", url)
                measure(label, "JSON 304", url, not_modified(url, answer.headers["etag"]))
                measure(label, "JSON 200 br", url, ["Accept-Encoding: br, gzip"])  # what browsers get: 10 KB
                measure(label, "HTML fragment", f"http://127.0.0.1:{port}/feeds/bench.html")
            finally:
                process.terminate()
                process.wait(timeout=30)
        print()
        figures = {(label, what): by for label, what, by in rows}
        for c in options.connections:
            nginx_rate = figures[("nginx (static file)", "JSON 200")][c][0]
            for name in options.servers:
                for what in ("JSON 200", "JSON 304"):
                    ours = figures[(f"{name} + filmroll app", what)][c]
                    bare = figures[(f"{name} + bare Starlette", what)][c]
                    print(f"  c{c} {name} + filmroll app, {what}: {ours[0] / bare[0]:.2f}x the bare app on {name}, "
                          f"{ours[0] / nginx_rate:.2f}x nginx")
            for what in ("JSON 200", "JSON 304"):
                ours, bare = figures[("filmroll serve", what)][c], figures[("granian + bare Starlette", what)][c]
                print(f"  c{c} filmroll serve, {what}: {ours[0] / bare[0]:.2f}x the bare app on granian, "
                      f"{ours[0] / nginx_rate:.2f}x nginx, p99 {ours[1]:.1f} ms")
    finally:
        if sandbox_process.poll() is None:
            sandbox_process.terminate()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
