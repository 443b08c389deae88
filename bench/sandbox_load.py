"""How much load the sandbox carries on loopback, against a bare Starlette app in the same run.

Run by hand (never in CI):  make bench   or   .venv/bin/python bench/sandbox_load.py --seconds 5

The server runs in its own process (one core); the load generator (aiohttp, one process) takes the other.
Reported per scenario: requests per second, server CPU milliseconds per request (from /proc), and p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def start(cmd: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{cmd} did not start")


async def load(urls: list[str], seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.monotonic() < stop_at:
                started = time.monotonic()
                async with session.get(rng.choice(urls)) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.monotonic() - started)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return len(latencies), sorted(latencies), errors


def measure(name: str, pid: int, urls: list[str], seconds: float, concurrency: int) -> dict:
    asyncio.run(load(urls[:50], 0.5, concurrency))  # warm-up: caches, keep-alive connections
    before = cpu_seconds(pid)
    started = time.monotonic()
    count, latencies, errors = asyncio.run(load(urls, seconds, concurrency))
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - before
    return {"scenario": name, "rps": count / elapsed, "cpu_ms_per_req": 1000 * cpu / max(count, 1),
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "errors": errors, "concurrency": concurrency, "requests": count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--accounts", type=int, default=10_000, help="distinct accounts the load spreads over")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    results = []

    port = free_port()
    baseline = start([sys.executable, "bench/baseline_app.py", str(port)], port)
    try:
        results.append(measure("baseline: bare Starlette JSON", baseline.pid,
                               [f"http://127.0.0.1:{port}/me"], args.seconds, args.concurrency))
    finally:
        baseline.terminate()
        baseline.wait()

    port = free_port()
    sandbox = start([sys.executable, "-m", "filmroll", "sandbox", "--port", str(port), "--accounts", "100000",
                     "--seed", "1"], port)
    base = f"http://127.0.0.1:{port}"
    try:
        control = httpx.Client(base_url=base + "/_sandbox", timeout=120)
        control.patch("/rate-limits", json={"account_calls": 10**9, "app_calls_per_user": 10**9})
        tokens = [t["access_token"] for t in control.post("/tokens", json={
            "first": 0, "count": args.accounts, "kind": "long"}).json()["tokens"]]
        me = [f"{base}/me?fields=id,user_id,username,media_count&access_token={t}" for t in tokens]
        media = [f"{base}/v25.0/me/media?fields=id,caption,media_type,media_url,permalink,timestamp&limit=25"
                 f"&access_token={t}" for t in tokens]
        results.append(measure(f"sandbox /me, {args.accounts:,} accounts", sandbox.pid, me, args.seconds,
                               args.concurrency))
        results.append(measure(f"sandbox /me/media (25 items), {args.accounts:,} accounts", sandbox.pid, media,
                               args.seconds, args.concurrency))
        control.patch("/switches", json={"latency_ms": 100})
        results.append(measure("sandbox /me + 100 ms emulated latency", sandbox.pid, me, args.seconds, 256))
        control.patch("/switches", json={"latency_ms": 0})
        control.post("/tokens", json={"first": 0, "count": 100_000, "kind": "long"})
        rss = rss_mb(sandbox.pid)
    finally:
        sandbox.terminate()
        sandbox.wait()

    print(f"{'scenario':<52} {'req/s':>8} {'CPU ms/req':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'conc':>5}")
    for r in results:
        print(f"{r['scenario']:<52} {r['rps']:>8.0f} {r['cpu_ms_per_req']:>10.3f} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['errors']:>6} {r['concurrency']:>5}")
    print(f"sandbox RSS after {args.accounts:,} + 100,000 minted long-lived tokens: {rss:.0f} MB")


if __name__ == "__main__":
    main()
