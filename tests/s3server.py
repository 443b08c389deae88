"""A real S3-compatible server on loopback for the storage tests and benchmarks: moto's server mode, in a process
of its own (so its CPU is not the tests'), answering S3's REST protocol over HTTP.

    with s3_server() as server:
        server.endpoint           # http://127.0.0.1:PORT
        server.create_bucket("filmroll-test")
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

ACCESS_KEY = "filmroll-test"
SECRET_KEY = "filmroll-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def create_bucket(self, name: str) -> None:
        # moto accepts unsigned requests: creating a bucket needs no SDK here.
        response = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        if response.status_code not in (200, 409):
            raise RuntimeError(f"moto refused to create bucket {name}: {response.status_code}")

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket`` (a ListObjectsV2 read past the SDK under test, as the storage's proof)."""
        found: list[str] = []
        token = ""
        while True:
            params = {"list-type": "2", **({"continuation-token": token} if token else {})}
            body = httpx.get(f"{self.endpoint}/{bucket}", params=params, timeout=10).text
            found += re.findall(r"<Key>([^<]+)</Key>", body)
            match = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
            if not match:
                return found
            token = match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[S3Server]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError("moto's S3 server exited at start") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("moto's S3 server did not start")
        yield S3Server(endpoint, process)
    finally:
        process.terminate()
        process.wait(10)
