"""The sandbox CDN: signed, expiring media URLs and the images behind them.

Instagram's ``media_url``/``thumbnail_url``/``profile_picture_url`` point at ``scontent*.cdninstagram.com`` with an
``oh`` signature and an ``oe`` expiry (hex Unix time); after expiry the CDN answers HTTP 403, ``text/plain``,
``URL signature expired``. Video URLs expire sooner than image URLs, as observed (serving reference §1.1). Some
query parameters (``_nc_rid``, ``ccb``) change on every API read, so clients must not diff media on URLs.

Images are real JPEGs at Instagram's sizes (1080x1350, 1080x1080, 1440x1800, 1080x566; 1080x1920 for reels), drawn
from the object id, so the same object always looks the same, with detail at every scale as a photograph has:
a flat gradient would make every resizer and encoder look fast, and every file small. Videos are real too: an
H.264 MP4 (one frame of the same kind of scene, 720 px wide) that a browser plays and a decoder can take a poster
from, as a client must for a hashtag's videos, which come without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
import secrets
from collections import OrderedDict

from PIL import Image, ImageDraw, ImageOps

from filmroll.sandbox.ids import mix64

PATH_PREFIX = "/cdn/v/t51.29350-15/"
_CACHE_BYTES = 64 * 1024 * 1024
FEED_SIZES = ((1080, 1350), (1080, 1080), (1440, 1800), (1080, 566))  # portrait 4:5, square, large 4:5, landscape
REEL_SIZE = (1080, 1920)
PROFILE_SIZE = (150, 150)

class CdnError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Cdn:
    def __init__(self, key: bytes, url_ttl: int, video_url_ttl: int | None = None) -> None:
        self._key = key
        self.url_ttl = url_ttl
        self.video_url_ttl = url_ttl if video_url_ttl is None else video_url_ttl
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0

    def _signature(self, name: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{name}|{expires:x}".encode(), hashlib.sha256).digest()
        return "00_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, base: str, name: str, now: float) -> str:
        """A freshly signed URL for ``name`` (e.g. ``1790…_n.jpg``), valid for ``url_ttl`` seconds (a video's for
        ``video_url_ttl``)."""
        expires = int(now) + (self.video_url_ttl if name.endswith(".mp4") else self.url_ttl)
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

    def body(self, name: str, size: tuple[int, int]) -> bytes:
        """The file behind ``name``: a picture (``.jpg``) or a video (``.mp4``) of ``size``, made once and kept."""
        cached = self._images.get(name)
        if cached is not None:
            self._images.move_to_end(name)
            return cached
        data = film(name, size) if name.endswith(".mp4") else draw(name, size)
        self._images[name] = data
        self._cached_bytes += len(data)
        while self._cached_bytes > _CACHE_BYTES:
            _, dropped = self._images.popitem(last=False)
            self._cached_bytes -= len(dropped)
        return data


def size_for(seed_id: str, *, reel: bool) -> tuple[int, int]:
    """The size of a post's pictures: a reel's is 9:16; a feed post's one of Instagram's, by its id (a carousel's
    children take their album's, as Instagram crops them all to the first)."""
    if reel:
        return REEL_SIZE
    return FEED_SIZES[int(hashlib.sha256(seed_id.encode()).hexdigest()[:8], 16) % len(FEED_SIZES)]


def draw(name: str, size: tuple[int, int]) -> bytes:
    """A deterministic picture of ``size`` for ``name`` as a JPEG at Instagram's quality."""
    out = io.BytesIO()
    scene(name, size).save(out, "JPEG", quality=88)
    return out.getvalue()


def film(name: str, size: tuple[int, int]) -> bytes:
    """A deterministic video for ``name``: one frame of its scene, scaled to 720 px wide (Instagram's usual video
    width), as H.264 in MP4, the format Instagram serves."""
    import av  # FFmpeg's libraries load when the first video is asked for, not with the sandbox

    width, height = size
    if width > 720:
        width, height = 720, round(height * 720 / width / 2) * 2  # H.264's 4:2:0 wants even sides
    picture = scene(name, size).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"preset": "ultrafast", "crf": "32"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for packet in [*stream.encode(av.VideoFrame.from_image(picture)), *stream.encode()]:
            container.mux(packet)
    return out.getvalue()


def scene(name: str, size: tuple[int, int]) -> Image.Image:
    """A two-colour scene with value noise at five scales (from broad shapes to film grain), a sun and a horizon,
    the same for the same ``name``."""
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    width, height = size
    detail = Image.new("L", size, 128)
    for cells, weight in ((4, 0.55), (16, 0.35), (64, 0.25), (256, 0.18), (0, 0.10)):
        across, down = (width, height) if cells == 0 else (cells, max(1, cells * height // width))
        layer = Image.frombytes("L", (across, down), rng.randbytes(across * down))
        if layer.size != size:
            layer = layer.resize(size, Image.Resampling.BICUBIC)
        detail = Image.blend(detail, layer, weight)
    detail = ImageOps.autocontrast(detail, cutoff=1)
    colours = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(3)]
    picture = ImageOps.colorize(detail, black=colours[0], white=colours[1], mid=colours[2])
    scene = ImageDraw.Draw(picture)
    horizon = height * rng.uniform(0.45, 0.75)
    scene.polygon([(0, height), (0, horizon), (width, horizon + rng.uniform(-0.1, 0.1) * height), (width, height)],
                  fill=tuple(c // 2 for c in colours[0]))
    radius = min(size) * rng.uniform(0.06, 0.14)
    x, y = width * rng.uniform(0.2, 0.8), horizon * rng.uniform(0.3, 0.8)
    scene.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 236, 200))
    # The ground keeps its texture: the polygon is flat, so lay the detail back over it.
    return Image.blend(picture, ImageOps.colorize(detail, black=(0, 0, 0), white=(255, 255, 255)), 0.25)
