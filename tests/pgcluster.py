"""A throwaway PostgreSQL server of a test's own, to stop and start under a running filmroll (never the shared one).

Built with the machine's own ``initdb``/``pg_ctl`` in a temporary directory, on a free loopback port, with fsync off
(it is thrown away). PostgreSQL refuses to run as root, so as root the commands run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from tests import aio
from tests.webapp import free_port


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian's postgresql package)")
    return found[-1]


class Cluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.data = directory / "data"
        self.log = directory / "server.log"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60",
                  "start")

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        async def create() -> None:
            connection = await asyncpg.connect(self.url())
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        aio.run(create())
        return self.url(name)

    def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` on every connection to ``database``; returns how many were cut."""
        async def terminate() -> int:
            connection = await asyncpg.connect(self.url())
            try:
                rows = await connection.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                    "AND pid <> pg_backend_pid()", database)
                return sum(1 for row in rows if row[0])
            finally:
                await connection.close()

        return aio.run(terminate())


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="filmroll-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = Cluster(directory, free_port())
    try:
        cluster._run(_binary("initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync",
                     "-E", "UTF8")
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
        time.sleep(0.1)
        shutil.rmtree(directory, ignore_errors=True)
