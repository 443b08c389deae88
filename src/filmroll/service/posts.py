"""What a post is to filmroll, apart from how it is stored: which fields make it "changed", a page's fingerprint,
and the neutral rows ``store/media.py`` writes. Pure functions over Instagram's parsed (or raw) media."""

from __future__ import annotations

import hashlib
from typing import Any

from filmroll.platform import Media, MediaPage

# What makes a post "changed". Signed URLs are not in here: Instagram re-signs them on every read (§2.6).
COMPARED = ("caption", "like_count", "comments_count", "alt_text", "media_type", "media_product_type", "permalink")
_FINGERPRINTED = ("id", *COMPARED)


def fingerprint(page: MediaPage) -> str:
    """What :func:`changed` compares, for a whole page, read straight from Instagram's JSON (no parsing): equal
    fingerprints, nothing on the page to write. (One ``repr`` of the page, not one per post: half the cost.)"""
    rows = [tuple(map(item.get, _FINGERPRINTED)) if isinstance(item, dict) else None for item in page.raw]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def changed(stored: dict[str, Any] | None, media: Media) -> bool:
    """Whether ``media`` must be written over what is ``stored`` (None: not stored yet; a post marked deleted that
    Instagram lists again counts as changed)."""
    if stored is None or stored["deleted_at"] is not None:
        return True
    return any(stored[c] != getattr(media, c) for c in COMPARED)


def compared(media: Media) -> dict[str, Any]:
    """The compared fields only, for a post already stored whose likes, comments or caption moved."""
    return {"ig_media_id": media.id, **{c: getattr(media, c) for c in COMPARED}}


def row(media: Media) -> dict[str, Any]:
    """The post as ``store/media.py`` stores it: its columns, and its carousel children in order."""
    return {"ig_media_id": media.id, "media_type": media.media_type, "media_product_type": media.media_product_type,
            "caption": media.caption, "permalink": media.permalink, "shortcode": media.shortcode,
            "media_url": media.media_url, "thumbnail_url": media.thumbnail_url, "alt_text": media.alt_text,
            "timestamp": media.timestamp, "like_count": media.like_count, "comments_count": media.comments_count,
            "children": [{"ig_media_id": c.id, "media_type": c.media_type, "media_url": c.media_url,
                          "thumbnail_url": c.thumbnail_url} for c in media.children]}


def urls(media: Media) -> dict[str, Any]:
    """A post's signed URLs and its children's, for a post already stored (Instagram re-signs them on each read)."""
    return {"ig_media_id": media.id, "media_url": media.media_url, "thumbnail_url": media.thumbnail_url,
            "children": [{"ig_media_id": c.id, "media_url": c.media_url, "thumbnail_url": c.thumbnail_url}
                         for c in media.children]}
