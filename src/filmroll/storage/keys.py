"""Object keys: content-addressed (the SHA-256 of the bytes), sharded by two 2-hex levels, under the source's own
prefix, so that a source's files can be listed, collected and erased without touching another's.

    sources/5/sha256/ab/cd/abcd…ef.jpg               an original (or a poster, a video)
    sources/5/sha256/ab/cd/abcd…ef/640.webp          a variant of it
    accounts/17/sha256/ab/cd/abcd…ef.jpg             the same, stored before sources (migration 0017): such files
                                                     stay where they are, under their account's prefix, and their
                                                     variants beside them

A published site (``filmroll publish``) holds the same keys under ``media/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SHA256 = re.compile(r"[0-9a-f]{64}")
PUBLISHED_MEDIA = "media/"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif",
              "image/gif": "gif", "video/mp4": "mp4"}
# Any stored key: the prefix, the hash, and the variant's name for a variant.
KEY = re.compile(r"(?P<prefix>(?:sources|accounts)/[0-9]{1,12}/)sha256/[0-9a-f]{2}/[0-9a-f]{2}/(?P<sha>[0-9a-f]{64})"
                 r"(?:\.[a-z0-9]{2,4}|/(?P<variant>[0-9]{1,5}\.(?:webp|avif|jpg)))")
_VARIANT = re.compile(r"[0-9]{1,5}\.(webp|avif|jpg)")


def source_prefix(source_id: int) -> str:
    return f"sources/{int(source_id)}/"


def account_prefix(account_id: int) -> str:
    """Where an account's files were stored before sources; read and collected there, never written anew."""
    return f"accounts/{int(account_id)}/"


def _base(prefix: str, sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{prefix}sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def original_key(source_id: int, sha256: str, content_type: str) -> str:
    return f"{_base(source_prefix(source_id), sha256)}.{EXTENSIONS[content_type]}"


def variant_key(original: str, variant: str) -> str:
    """The key of ``variant`` (``"<width>.<format>"``, ``640.webp``: the ``media_files.variant`` column) of the
    original stored at ``original``: beside it, wherever that is."""
    if not _VARIANT.fullmatch(variant):
        raise ValueError(f"not a variant name: {variant!r}")
    parsed = parse(original)
    if parsed is None or parsed.variant is not None:
        raise ValueError("not the key of an original")
    return f"{_base(parsed.prefix, parsed.sha256)}/{variant}"


@dataclass(frozen=True)
class ParsedKey:
    prefix: str  # "sources/5/" or "accounts/17/"
    sha256: str
    variant: str | None  # "640.webp" for a variant


def parse(key: str) -> ParsedKey | None:
    """What a stored key says, or None if it is not one."""
    found = KEY.fullmatch(key)
    return ParsedKey(found["prefix"], found["sha"], found["variant"]) if found else None
