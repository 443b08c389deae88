"""The sandbox CDN: signed, expiring media URLs and the images behind them.

Instagram's ``media_url``/``thumbnail_url``/``profile_picture_url`` point at ``scontent*.cdninstagram.com`` with an
``oh`` signature and an ``oe`` expiry (hex Unix time); after expiry the CDN answers HTTP 403, ``text/plain``,
``URL signature expired``. Some query parameters (``_nc_rid``, ``ccb``) change on every API read, so clients must not
diff media on URLs. Images are real JPEGs drawn from the object id, so the same object always looks the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from collections import OrderedDict

from PIL import Image, ImageDraw

from filmroll.sandbox.ids import mix64

PATH_PREFIX = "/cdn/v/t51.29350-15/"
_IMAGE_CACHE = 512

# A minimal ISO-BMFF header: enough for a client to store and serve "a video", not to play one.
VIDEO_PLACEHOLDER = (
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x10free" + b"filmroll"
)


class CdnError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Cdn:
    def __init__(self, key: bytes, url_ttl: int) -> None:
        self._key = key
        self.url_ttl = url_ttl
        self._images: OrderedDict[str, bytes] = OrderedDict()

    def _signature(self, name: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{name}|{expires:x}".encode(), hashlib.sha256).digest()
        return "00_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, base: str, name: str, now: float) -> str:
        """A freshly signed URL for ``name`` (e.g. ``1790…_n.jpg``), valid for ``url_ttl`` seconds."""
        expires = int(now) + self.url_ttl
        # Every value is URL-safe already (digits, hex, base64url), so no quoting pass is needed.
        ohc = base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()[:9]).decode()  # noqa: S324
        query = (f"stp=dst-jpg_e35_s640x640&_nc_cat={100 + mix64(len(name), expires) % 10}"
                 f"&ccb=1-{secrets.randbelow(9) + 1}&_nc_sid=18de74&_nc_ohc={ohc}&_nc_ht=scontent.cdninstagram.com"
                 f"&_nc_rid={secrets.token_hex(5)}&oh={self._signature(name, expires)}&oe={expires:X}")
        return f"{base}{PATH_PREFIX}{name}?{query}"

    def verify(self, name: str, oh: str | None, oe: str | None, now: float) -> None:
        if not oh or not oe:
            raise CdnError(403, "Bad URL hash")
        try:
            expires = int(oe, 16)
        except ValueError:
            raise CdnError(403, "Bad URL timestamp") from None
        if not hmac.compare_digest(oh, self._signature(name, expires)):
            raise CdnError(403, "URL signature mismatch")
        if now >= expires:
            raise CdnError(403, "URL signature expired")

    def image(self, name: str, size: int) -> bytes:
        cached = self._images.get(name)
        if cached is not None:
            self._images.move_to_end(name)
            return cached
        data = _draw(name, size)
        self._images[name] = data
        if len(self._images) > _IMAGE_CACHE:
            self._images.popitem(last=False)
        return data


def _draw(name: str, size: int) -> bytes:
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    top = (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)
    bottom = ((h >> 24) & 0xFF, (h >> 32) & 0xFF, (h >> 40) & 0xFF)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(0, size, 4):
        t = y / size
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.rectangle([0, y, size, y + 4], fill=colour)
    radius = size // 5 + (h >> 48) % (size // 5)
    cx, cy = size // 2 + (h >> 52) % (size // 4) - size // 8, size // 2
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=bottom[::-1])
    draw.text((12, size - 24), name.split("_")[0][-12:], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()
