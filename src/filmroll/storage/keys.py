"""Object keys: content-addressed (the SHA-256 of the bytes), sharded by two 2-hex levels, under the account's own
prefix, so that an account's files can be listed, collected and erased without touching another account's.

    accounts/17/sha256/ab/cd/abcd…ef.jpg             an original (or a poster, a video)
    accounts/17/sha256/ab/cd/abcd…ef/640.webp        a variant of it

A published site (``filmroll publish``) holds the same keys under ``media/``.
"""

from __future__ import annotations

import re

_SHA256 = re.compile(r"[0-9a-f]{64}")
PUBLISHED_MEDIA = "media/"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif",
              "image/gif": "gif", "video/mp4": "mp4"}


def account_prefix(account_id: int) -> str:
    return f"accounts/{int(account_id)}/"


def _base(account_id: int, sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{account_prefix(account_id)}sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def original_key(account_id: int, sha256: str, content_type: str) -> str:
    return f"{_base(account_id, sha256)}.{EXTENSIONS[content_type]}"


def variant_key(account_id: int, sha256: str, variant: str) -> str:
    """``variant`` is ``"<width>.<format>"`` (``640.webp``), the ``media_files.variant`` column."""
    if not re.fullmatch(r"[0-9]{1,5}\.(webp|avif|jpg)", variant):
        raise ValueError(f"not a variant name: {variant!r}")
    return f"{_base(account_id, sha256)}/{variant}"
