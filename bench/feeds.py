"""Serving a feed: nginx with the published file, a bare Starlette app answering the same bytes from memory, and
`filmroll serve`'s app, on uvicorn and on Granian, measured by wrk on loopback in one run.

    .venv/bin/python bench/feeds.py [--rounds 3] [--duration 3] [--connections 64 256] [--posts 25]

Rows: each server with a raw ASGI app (no framework: the server's floor; on Granian also through its own RSGI
interface), the bare app and filmroll's app (how the server was chosen); then `filmroll serve --no-worker` itself as
shipped. The 304 rows send the identity answer's ETag, checked to give a 304 first. It makes a real feed first (the
sandbox in its own process, `filmroll connect --token`, `sync`, `mirror`, `feeds create`, `publish`), so every
server answers the same JSON document. Every server is up at once, each with one worker process, idle until wrk
(one thread) asks it: on two cores, the server gets one and wrk the other. Each round measures every row once per
connection count, with nginx measured again after each row: a row's ratio to nginx is to the mean of the nginx
measurements just before and after it, and the table gives each figure's median over the rounds (this machine's
load drifts over minutes; one long row each made the ratio to nginx move from 0.39x to 0.70x between runs).
Needs Debian's nginx and wrk (installed here when missing). Timings are this machine's: compare rows of one run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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


@dataclass
class Row:
    """One measured row: a server and a request, measured once per round and connection count."""

    label: str
    what: str
    url: str
    headers: list[str] = field(default_factory=list)
    by: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)  # c -> [(rate, p99, nginx's)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def start_python_servers(options: argparse.Namespace, env: dict[str, str], body: Path, directory: Path,
                         processes: list[subprocess.Popen]) -> list[Row]:
    """Every Python server up at once on its own port (idle until wrk asks it), each checked to answer the published
    feed's bytes; its rows, in the order a round measures them."""
    rows: list[Row] = []
    raw = body.read_bytes()

    def up(url: str, process: subprocess.Popen) -> httpx.Response:
        answer = wait_up(url, process)
        assert answer.content == raw, "the servers must answer the same bytes"
        wrk(url, 64, 2, [])  # the server warms up (excluded)
        return answer

    for name in options.servers:
        for kind in ("raw", *(("rsgi",) if name == "granian" else ()), "bare", "filmroll"):
            port = free_port()
            processes.append(python_server(kind, name, port, env, body))
            url = f"http://127.0.0.1:{port}/feeds/bench.json"
            answer = up(url, processes[-1])
            label = f"{name} + {KINDS[kind]}"
            rows += [Row(label, "JSON 200", url),
                     Row(label, "JSON 304", url, not_modified(url, answer.headers["etag"]))]
    # `filmroll serve` itself, as shipped: its default settings (Granian, its one worker process, the collector
    # frozen after start-up, the access log on: a line per request, to a file here); then with the access log off,
    # as nginx's is here, for what the log costs.
    for access_log in ("true", "false"):
        port = free_port()
        with (directory / f"serve-{access_log}.log").open("w") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "filmroll", "serve", "--no-worker", "--port", str(port)],
                env={**env, "FILMROLL_WEB__ACCESS_LOG": access_log,
                     "FILMROLL_INSTAGRAM__REDIRECT_URI": f"http://127.0.0.1:{port}/callback"},
                cwd=directory, stdout=log, stderr=log))
        url = f"http://127.0.0.1:{port}/feeds/bench.json"
        answer = up(url, processes[-1])
        if access_log == "false":
            rows.append(Row("filmroll serve, no log", "JSON 200", url))
            continue
        rows += [Row("filmroll serve", "JSON 200", url),
                 Row("filmroll serve", "JSON 304", url, not_modified(url, answer.headers["etag"])),
                 Row("filmroll serve", "JSON 200 br", url, ["Accept-Encoding: br, gzip"]),  # what browsers get
                 Row("filmroll serve", "HTML fragment", f"http://127.0.0.1:{port}/feeds/bench.html")]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3, help="seconds a row, each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--posts", type=int, default=25)
    parser.add_argument("--servers", nargs="+", default=["uvicorn", "granian"], choices=["uvicorn", "granian"])
    options = parser.parse_args()
    sandbox_process, sandbox = start_sandbox(seed=11)
    directory = Path(tempfile.mkdtemp(prefix="filmroll-bench-feeds-"))
    processes: list[subprocess.Popen] = []
    try:
        env, site = make_feed(directory, sandbox, options.posts)
        sandbox_process.terminate()  # nothing below calls Instagram: the sandbox would only take CPU
        body = site / "feeds" / "bench.json"
        raw = body.read_bytes()
        document = json.loads(raw)
        print(f"feed: {len(document['posts'])} posts, {len(raw) / 1024:.1f} KB, "
              f"{len(gzip.compress(raw, 9)) / 1024:.1f} KB gzipped; wrk -t1, {options.rounds} rounds of "
              f"{options.duration:g} s a row\n", flush=True)
        port = free_port()
        processes.append(nginx(site, directory, port))
        nginx_url = f"http://127.0.0.1:{port}/feeds/bench.json"
        assert wait_up(nginx_url, processes[-1]).content == raw
        rows = start_python_servers(options, env, body, directory, processes)
        # Rounds, not one long row each: this machine's load drifts over minutes (nginx measured 21k-74k req/s on
        # different runs), so every row is compared with nginx measured just before and just after it.
        for round_number in range(1, options.rounds + 1):
            for c in options.connections:
                before = wrk(nginx_url, c, options.duration, [])[0]
                for row in rows:
                    rate, p99 = wrk(row.url, c, options.duration, row.headers)
                    after = wrk(nginx_url, c, options.duration, [])[0]
                    row.by.setdefault(c, []).append((rate, p99, (before + after) / 2))
                    before = after
            print(f"  round {round_number} of {options.rounds} done", flush=True)
        print(f"\n  {'server':<24} {'request':<14}" + "".join(
            f"  c{c}: req/s  p99 ms  x nginx" for c in options.connections))
        for row in rows:
            cells = ""
            for c in options.connections:
                rate, p99 = median([r for r, _, _ in row.by[c]]), median([p for _, p, _ in row.by[c]])
                cells += f"  {rate:11.0f} {p99:7.1f} {median([r / n for r, _, n in row.by[c]]):8.2f}"
            print(f"  {row.label:<24} {row.what:<14}{cells}")
        nginx_rates = {c: median([n for row in rows for _, _, n in row.by[c]]) for c in options.connections}
        print("  nginx (static file), JSON 200: " + ", ".join(f"c{c} {rate:.0f} req/s (median of the measurements "
                                                               "around the rows)" for c, rate in nginx_rates.items()))
        print()
        found = {(row.label, row.what): row for row in rows}
        for c in options.connections:
            serve = ["filmroll serve"] if "granian" in options.servers else []  # its baselines are Granian's
            for label in [f"{name} + filmroll app" for name in options.servers] + serve:
                server = "granian" if label == "filmroll serve" else label.split(" + ")[0]
                for what in ("JSON 200", "JSON 304"):
                    ours, bare = found[(label, what)].by[c], found[(f"{server} + bare Starlette", what)].by[c]
                    floor = found[(f"{server} + raw ASGI", what)].by[c]
                    to_bare = median([o[0] / b[0] for o, b in zip(ours, bare, strict=True)])
                    to_floor = median([o[0] / f[0] for o, f in zip(ours, floor, strict=True)])
                    print(f"  c{c} {label}, {what}: {to_bare:.2f}x the bare app, {to_floor:.2f}x the raw ASGI floor "
                          f"on {server}, {median([o[0] / o[2] for o in ours]):.2f}x nginx, "
                          f"p99 {median([o[1] for o in ours]):.1f} ms")
            if serve:  # the default (access log on) against the same server with the log off, round by round
                logged, quiet = found[("filmroll serve", "JSON 200")].by[c], found[("filmroll serve, no log",
                                                                                  "JSON 200")].by[c]
                print(f"  c{c} filmroll serve, JSON 200: the default (access log on) at "
                      f"{median([o[0] / q[0] for o, q in zip(logged, quiet, strict=True)]):.2f}x the access log off")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        if sandbox_process.poll() is None:
            sandbox_process.terminate()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
