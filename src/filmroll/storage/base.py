"""The storage interface and the factory that picks a backend from a URL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from filmroll import errors
from filmroll.secret import Secret


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class Storage(Protocol):
    """What the mirror, the collector and the web tier need of a place to keep files."""

    description: str  # for people: "/srv/filmroll-media" or "s3://bucket/prefix" (never a credential)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``, whole or not at all (a reader never sees part of it)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes; None if there is none."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these objects; missing ones are no error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every object whose key starts with ``prefix``."""
        ...

    async def close(self) -> None: ...


PROBE_PREFIX = ".filmroll-probe/"  # never a media key (those start with sources/ or accounts/)


async def probe(storage: Storage) -> None:
    """Write, read back and delete a small object: the storage works, or a StorageError says what is wrong (no
    bucket, refused credentials, no permission, a directory that cannot be written). `doctor` and `mirror` ask
    first, so a missing bucket is said as such before any picture is fetched."""
    key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
    data = b"filmroll storage probe " + secrets.token_bytes(8)
    await storage.put(key, data, "application/octet-stream")
    try:
        if await storage.get(key) != data:
            raise errors.StorageError(f"{storage.description} did not give back what was written to it: check the "
                                      "storage settings (another service behind the same address?)")
    finally:
        await storage.delete([key])


def open_storage(url: str, *, endpoint: str | None = None, region: str = "us-east-1",
                 access_key_id: str = "", secret_access_key: Secret | None = None) -> Storage:
    """``file:///abs/dir``, ``file:relative/dir`` or a bare path: a local directory; ``s3://bucket[/prefix]``: S3
    (``endpoint`` for any S3-compatible service other than AWS)."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        from filmroll.storage.local import LocalStorage

        path = parts.path if parts.scheme == "file" else url
        if not path:
            raise errors.ConfigError("the media storage URL names no directory (e.g. file:filmroll-media)")
        return LocalStorage(Path(path))
    if parts.scheme == "s3":
        from filmroll.storage.s3 import S3Storage

        if not parts.netloc:
            raise errors.ConfigError("the media storage URL names no bucket (e.g. s3://my-bucket/filmroll)")
        return S3Storage(parts.netloc, prefix=parts.path.strip("/"), endpoint=endpoint, region=region,
                         access_key_id=access_key_id, secret_access_key=secret_access_key or Secret(""))
    raise errors.ConfigError(f"the media storage URL must start with file: or s3:, not {parts.scheme}:")
