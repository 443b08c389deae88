"""A loopback TCP proxy in front of PostgreSQL that can lose one answer: the server commits, the client never hears.

A connection that drops between the server's commit and its reply is the one database fault a retry cannot see
through: the client cannot tell "rolled back" from "committed". The proxy reads the server's side of the wire
protocol (a type byte and a 4-byte length per message) and, when armed, closes the client's connection instead of
forwarding the ``COMMIT`` of a transaction that ran an ``UPDATE n`` with n > 0 (a claim: its UPDATE, then maybe a
SELECT of the claimed accounts' names): the first such commit is the claim whose rows were leased.

Connect with ``ssl=disable``: the proxy does not speak TLS, and asyncpg would otherwise ask for it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from tests.webapp import free_port


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.lost_commits = 0
        self._armed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None

    def lose_next_claim_commit(self) -> None:
        self._armed.set()

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        netloc[-1] = f"127.0.0.1:{self.port}"
        query = "&".join(filter(None, [parts.query, "ssl=disable"]))
        return urlunsplit(parts._replace(netloc="@".join(netloc), query=query))

    async def _serve(self, started: threading.Event) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        started.set()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        upward = asyncio.create_task(self._pipe(client_reader, server_writer))
        try:
            await self._answers(server_reader, client_writer)
        finally:
            upward.cancel()
            for writer in (client_writer, server_writer):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        updated = False  # the open transaction of this connection ran an UPDATE that matched rows
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                header = await reader.readexactly(5)
                body = await reader.readexactly(int.from_bytes(header[1:], "big") - 4)
                if header[:1] == b"C":  # CommandComplete: the command's tag
                    tag = body.rstrip(b"\0").decode()
                    if tag == "COMMIT" and updated and self._armed.is_set():
                        self._armed.clear()
                        self.lost_commits += 1
                        return  # the server has committed; the client hears the connection drop instead
                    if tag in ("COMMIT", "ROLLBACK"):
                        updated = False
                    elif tag.startswith("UPDATE ") and tag != "UPDATE 0":
                        updated = True
                writer.write(header + body)
                await writer.drain()

    @contextlib.contextmanager
    def running(self) -> Iterator[Proxy]:
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.create_task(self._serve(started))
        self._loop.run_forever()
        if self._server is not None:
            self._server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()


@contextlib.contextmanager
def proxy_for(url: str) -> Iterator[Proxy]:
    parts = urlsplit(url)
    with Proxy(parts.hostname or "127.0.0.1", parts.port or 5432).running() as proxy:
        yield proxy
