"""Which S3 client should filmroll's object storage hold? boto3 (threads) vs aioboto3 vs obstore, measured against
a real S3 server (moto's, in its own process) on loopback.

Run by hand:  .venv/bin/python bench/s3_clients.py --objects 300

Each client in turn, with the same concurrency, PUTs then HEADs, GETs and DELETEs the same objects (150 KB each,
the size of a 1080 px WebP), and this process's CPU per object and the wall-clock rate are reported. The server's
CPU is the same for all three and is left out; what a mirror worker pays is this process's share.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import cpu
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, s3_server

Op = Callable[[str, bytes], Awaitable[None]]


async def _each(keys: list[str], body: bytes, concurrency: int, op: Op) -> None:
    queue = iter(keys)

    async def worker() -> None:
        for key in queue:
            await op(key, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_boto3(endpoint: str, bucket: str, keys: list[str], body: bytes, concurrency: int) -> dict[str, float]:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION,
                          config=Config(max_pool_connections=concurrency))
    pool = ThreadPoolExecutor(concurrency)
    loop = asyncio.get_running_loop()

    def call(fn: Callable[..., object], **kw: object) -> Awaitable[object]:
        return loop.run_in_executor(pool, lambda: fn(Bucket=bucket, **kw))

    async def put(key: str, data: bytes) -> None:
        await call(client.put_object, Key=key, Body=data, ContentType="image/webp")

    async def head(key: str, _: bytes) -> None:
        await call(client.head_object, Key=key)

    async def get(key: str, _: bytes) -> None:
        await loop.run_in_executor(pool, lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read())

    async def delete(key: str, _: bytes) -> None:
        await call(client.delete_object, Key=key)

    try:
        return await _phases(keys, body, concurrency, put, head, get, delete)
    finally:
        pool.shutdown()


async def run_aioboto3(endpoint: str, bucket: str, keys: list[str], body: bytes,
                       concurrency: int) -> dict[str, float]:
    import aioboto3
    from botocore.config import Config

    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name=REGION,
                              config=Config(max_pool_connections=concurrency)) as client:
        async def put(key: str, data: bytes) -> None:
            await client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/webp")

        async def head(key: str, _: bytes) -> None:
            await client.head_object(Bucket=bucket, Key=key)

        async def get(key: str, _: bytes) -> None:
            response = await client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                await stream.read()

        async def delete(key: str, _: bytes) -> None:
            await client.delete_object(Bucket=bucket, Key=key)

        return await _phases(keys, body, concurrency, put, head, get, delete)


async def run_obstore(endpoint: str, bucket: str, keys: list[str], body: bytes,
                      concurrency: int) -> dict[str, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                    region=REGION, virtual_hosted_style_request=False, client_options={"allow_http": True})

    async def put(key: str, data: bytes) -> None:
        await obstore.put_async(store, key, data, attributes={"Content-Type": "image/webp"})

    async def head(key: str, _: bytes) -> None:
        await obstore.head_async(store, key)

    async def get(key: str, _: bytes) -> None:
        result = await obstore.get_async(store, key)
        await result.bytes_async()

    async def delete(key: str, _: bytes) -> None:
        await obstore.delete_async(store, key)

    return await _phases(keys, body, concurrency, put, head, get, delete)


async def _phases(keys: list[str], body: bytes, concurrency: int, *ops: Op) -> dict[str, float]:
    """Per phase: this process's CPU ms per object and objects per second."""
    found: dict[str, float] = {}
    for name, op in zip(("put", "head", "get", "delete"), ops, strict=True):
        cpu0, wall0 = cpu(), time.perf_counter()
        await _each(keys, body, concurrency, op)
        spent, wall = cpu() - cpu0, time.perf_counter() - wall0
        found[f"{name} cpu ms"] = 1000 * spent / len(keys)
        found[f"{name} /s"] = len(keys) / wall
    return found


CLIENTS = {"boto3 (threads)": run_boto3, "aioboto3": run_aioboto3, "obstore": run_obstore}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bytes", type=int, default=150_000)
    args = parser.parse_args()
    body = os.urandom(args.bytes)
    with s3_server() as server:
        rows = {}
        for round_ in range(2):  # the first round warms the server up; the second is reported
            for name, run in CLIENTS.items():
                bucket = f"bench-{round_}-{name.split()[0]}"
                server.create_bucket(bucket)
                keys = [f"sha256/{n:02x}/{n:06d}.webp" for n in range(args.objects)]
                rows[name] = asyncio.run(run(server.endpoint, bucket, keys, body, args.concurrency))
    phases = ("put", "head", "get", "delete")
    print(f"{args.objects} objects of {args.bytes // 1000} KB, concurrency {args.concurrency}; "
          "client CPU ms per object / objects per second")
    print(f"{'client':18}" + "".join(f"{p:>18}" for p in phases))
    for name, row in rows.items():
        print(f"{name:18}" + "".join(f"{row[p + ' cpu ms']:9.2f} /{row[p + ' /s']:6.0f}" for p in phases))


if __name__ == "__main__":
    main()
