"""Which async HTTP client should filmroll's Instagram client hold? httpx vs aiohttp, measured on the sandbox.

Run by hand:  .venv/bin/python bench/http_clients.py --requests 20000

The sandbox runs in another process; this process runs one client at a time with the same concurrency against
`/me` for distinct accounts and reports client-side CPU per request (what a worker pays), wall-clock throughput,
and the same with 100 ms of emulated network latency.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import httpx
from common import cpu, start_sandbox


async def run_httpx(urls: list[str], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                response = await client.get(url)
                response.json()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_aiohttp(urls: list[str], concurrency: int) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                async with session.get(url) as response:
                    await response.json()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    server, base = start_sandbox(seed=2)
    try:
        control = httpx.Client(base_url=base + "/_sandbox", timeout=60)
        control.patch("/rate-limits", json={"account_calls": 10**9, "app_calls_per_user": 10**9})
        tokens = [t["access_token"] for t in control.post("/tokens", json={"first": 0, "count": 5000}).json()["tokens"]]
        urls = [f"{base}/me?fields=id,username&access_token={tokens[i % len(tokens)]}" for i in range(args.requests)]
        rows = []
        for latency in (0, 100):
            control.patch("/switches", json={"latency_ms": latency})
            count = args.requests if latency == 0 else args.requests // 4
            for name, runner in (("httpx", run_httpx), ("aiohttp", run_aiohttp)):
                concurrency = args.concurrency if latency == 0 else 256
                asyncio.run(runner(urls[:200], concurrency))  # warm-up
                cpu_before, started = cpu(), time.monotonic()
                asyncio.run(runner(urls[:count], concurrency))
                elapsed, used = time.monotonic() - started, cpu() - cpu_before
                rows.append((name, latency, concurrency, count / elapsed, 1000 * used / count))
    finally:
        server.terminate()
        server.wait()
    print(f"{'client':<8} {'latency':>8} {'conc':>5} {'req/s':>8} {'client CPU ms/req':>18}")
    for name, latency, concurrency, rps, cpu_ms in rows:
        print(f"{name:<8} {latency:>6}ms {concurrency:>5} {rps:>8.0f} {cpu_ms:>18.3f}")


if __name__ == "__main__":
    main()
