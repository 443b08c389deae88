"""Downloads from Instagram's CDN, refusing everything else.

    cdn = CdnClient(session, hosts=("*.cdninstagram.com", "*.fbcdn.net"), max_bytes=30_000_000)
    data = await cdn.fetch(post.media_url)

* Only ``https`` URLs whose host matches one of ``hosts`` (``*.`` for any subdomain) are fetched; an entry that is a
  whole origin (``http://127.0.0.1:8001``, the sandbox) allows exactly that origin, plain HTTP included.
* Redirects are followed by hand, at most three, each one checked against the same list.
* A body over ``max_bytes`` is refused as soon as it is announced or read, never held whole in memory.
* The CDN's answers: 403 is a signed URL that expired (``oe`` passed, or the signature no longer valid):
  :class:`~filmroll.errors.UrlExpiredError`, so fresh URLs are read by id; 404, 5xx, 429, a timeout or a body cut
  short: :class:`~filmroll.errors.DownloadFailedError`, retried later.

What the bytes are (a picture, how large) is decided from the bytes themselves by ``service/pictures.py``, never from
the ``Content-Type`` header.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp

from filmroll import errors

MAX_REDIRECTS = 3
INSTAGRAM_CDN_HOSTS = ("*.cdninstagram.com", "*.fbcdn.net")


def url_expires_at(url: str | None) -> datetime | None:
    """When a signed CDN URL stops working: its ``oe`` parameter (hex Unix seconds); None if it carries none."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("oe")
    try:
        return datetime.fromtimestamp(int(values[0], 16), UTC) if values else None
    except (ValueError, OverflowError, OSError):
        return None


def file_name(url: str | None) -> str | None:
    """The file name in a CDN URL's path (``…_n.jpg``): the same picture keeps it across re-signed URLs."""
    if not url:
        return None
    return urlsplit(url).path.rsplit("/", 1)[-1] or None


def describe(url: str) -> str:
    """A URL as logs and events may show it: scheme, host, port and path; never a user, the signature or other
    parameters (the port is kept: a refusal of https://cdn:8443/… must not read as one of https://cdn/…)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # a port that is not one
        port = ":?"
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}{parts.path[:80]}"


class CdnClient:
    def __init__(self, session: aiohttp.ClientSession, *, hosts: Sequence[str] = INSTAGRAM_CDN_HOSTS,
                 max_bytes: int = 30_000_000, timeout: float = 30.0) -> None:
        self.session = session
        self.max_bytes = max_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.hosts = tuple(hosts)
        self._suffixes = tuple(h.lower()[1:] for h in hosts if h.startswith("*."))
        self._hosts = {h.lower() for h in hosts if "://" not in h and not h.startswith("*.")}
        self._origins = {h.lower().rstrip("/") for h in hosts if "://" in h}

    def allowed(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if not host or parts.username or parts.password:
            return False
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        if origin in self._origins:
            return True
        if parts.scheme != "https" or port not in (None, 443):
            return False
        return host in self._hosts or host.endswith(self._suffixes)

    async def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """The body at ``url``; refused (never fetched) outside the CDN hosts or above the size cap."""
        limit = max_bytes or self.max_bytes
        for hop in range(MAX_REDIRECTS + 1):
            if not self.allowed(url):
                message = (f"refused to fetch {describe(url)}: not an https URL on Instagram's CDN hosts "
                           "(FILMROLL_MIRROR__CDN_HOSTS)")
                if hop == 0 and urlsplit(url).scheme in ("https", "http"):  # the post's own URL: maybe the setting
                    raise errors.SettingRefusedError(message, setting="FILMROLL_MIRROR__CDN_HOSTS")
                raise errors.DownloadRefusedError(message)  # a redirect elsewhere: what the CDN did, final
            try:
                async with self.session.get(url, allow_redirects=False, timeout=self.timeout,
                                            headers={"Accept": "image/*,video/*"}) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    self._check_status(response.status)
                    if (response.content_length or 0) > limit:
                        raise errors.SettingRefusedError(f"refused {describe(url)}: {response.content_length} "
                                                         f"bytes announced, more than the {limit}-byte cap "
                                                         "(FILMROLL_MIRROR__MAX_IMAGE_MB, __MAX_VIDEO_MB)",
                                                         setting="FILMROLL_MIRROR__MAX_IMAGE_MB")
                    return await self._read(response, url, limit)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise errors.DownloadFailedError(f"the CDN did not deliver {describe(url)} "
                                                 f"({type(exc).__name__}); retried later") from None
        raise errors.DownloadRefusedError(f"refused {describe(url)}: more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _check_status(status: int) -> None:
        if status == 403:
            raise errors.UrlExpiredError()
        if status != 200:
            raise errors.DownloadFailedError(f"Instagram's CDN answered HTTP {status}; retried later")

    @staticmethod
    async def _read(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise errors.SettingRefusedError(f"refused {describe(url)}: more than the {limit}-byte cap "
                                                 "(FILMROLL_MIRROR__MAX_IMAGE_MB, __MAX_VIDEO_MB)",
                                                 setting="FILMROLL_MIRROR__MAX_IMAGE_MB")
            chunks.append(chunk)
        if response.content_length is not None and size != response.content_length:
            raise errors.DownloadFailedError(f"the CDN cut {describe(url)} short ({size} of "
                                             f"{response.content_length} bytes); retried later")
        return b"".join(chunks)
