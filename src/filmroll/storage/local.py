"""A local directory (the default, beside the database). Writes go to ``.incoming/`` first and are renamed into
place, so a crash leaves at most a stray temporary file there (removed by the collector), never part of an object
under its real name. File work runs in a thread, off the event loop."""

from __future__ import annotations

import asyncio
import builtins
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from filmroll import errors
from filmroll.storage.base import StoredObject

INCOMING = ".incoming"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().absolute()
        self.description = str(self.root)

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk (for a file response); refuses keys that would leave the directory."""
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError(f"not a storage key: {key!r}")
        if key.split("/", 1)[0] == INCOMING:
            raise ValueError("the incoming directory holds no objects")
        return self.root / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path(key), data)

    def _put(self, target: Path, data: bytes) -> None:
        incoming = self.root / INCOMING
        temporary = incoming / f"{target.name}.{secrets.token_hex(6)}"
        try:
            incoming.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise errors.StorageError(f"could not write to the media directory {self.root}: "
                                      f"{exc.strerror or type(exc).__name__}") from None

    async def get(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise errors.StorageError(f"could not read the media directory {self.root}: "
                                      f"{exc.strerror or type(exc).__name__}") from None

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [self.path(k) for k in keys]

        def unlink() -> None:
            for path in paths:
                path.unlink(missing_ok=True)

        await asyncio.to_thread(unlink)

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        found = await asyncio.to_thread(self._list, prefix)
        for item in found:
            yield item

    def _list(self, prefix: str) -> builtins.list[StoredObject]:
        found = []
        for directory, subdirectories, files in os.walk(self.root):
            relative = os.path.relpath(directory, self.root)
            if relative == INCOMING:
                subdirectories.clear()
                continue
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix):
                    stat = os.stat(os.path.join(directory, name))
                    found.append(StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
        return found

    async def sweep_incoming(self, older_than: float) -> int:
        """Remove temporary files a crash left behind (older than ``older_than`` seconds); returns how many."""
        def sweep() -> int:
            removed = 0
            for path in (self.root / INCOMING).glob("*"):
                if time.time() - path.stat().st_mtime > older_than:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    async def close(self) -> None:
        return None
