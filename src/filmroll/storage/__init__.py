"""Where mirrored pictures live: one small interface, two backends.

    storage = open_storage("file:///srv/filmroll-media")           # LocalStorage (the default, beside the database)
    storage = open_storage("s3://bucket/prefix", endpoint=…, …)    # S3Storage (any S3-compatible service)
    await storage.put("sources/1/sha256/ab/cd/abcd….jpg", data, "image/jpeg")

Keys are content-addressed by the caller (``storage.keys``); a put is atomic in both backends (a temporary name then
a rename on disk; one complete PUT on S3), so a crash never leaves a partial object under a real key. Below
``service``, beside ``store``; it knows nothing of posts or sources.
"""

from __future__ import annotations

from filmroll.storage.base import Storage, StoredObject, open_storage, probe
from filmroll.storage.keys import account_prefix, original_key, parse, source_prefix, variant_key

__all__ = ["Storage", "StoredObject", "account_prefix", "open_storage", "original_key", "parse", "probe",
           "source_prefix", "variant_key"]
