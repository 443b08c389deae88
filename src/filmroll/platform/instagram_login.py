"""The client of the Instagram API with Instagram Login (graph.instagram.com), usable on its own; filmroll's services
reach it through ``platform/provider.py`` as the client of ``Provider.INSTAGRAM_LOGIN``.

    async with InstagramLoginClient(app_id="…", app_secret=Secret("…"), redirect_uri="https://…/callback") as ig:
        url = ig.authorize_url(state="…")
        short = await ig.exchange_code(code)
        long = await ig.exchange_long_lived(short.access_token)
        profile = await ig.me(long.access_token)
        async for media in ig.media(long.access_token):
            ...

Comments cite the team's wire reference by section (§), as docs/sandbox.md does. Every base URL and the Graph
version are arguments, so the same code talks to Instagram, to ``filmroll sandbox``
or to a proxy. Tokens travel in an ``Authorization: Bearer`` header for Graph reads; the token endpoints take them
in the query string as documented, so no URL built here is ever logged or put in an exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp

from filmroll import errors
from filmroll.clock import Clock
from filmroll.platform import wire
from filmroll.platform.models import (
    Child,
    Insight,
    LongLivedGrant,
    Media,
    MediaPage,
    Profile,
    ShortLivedGrant,
    TokenInfo,
)
from filmroll.platform.provider import AccountReader
from filmroll.secret import Secret
from filmroll.vocabulary import Provider

INSTAGRAM_AUTHORIZE_URL = "https://www.instagram.com/oauth/authorize"
INSTAGRAM_TOKEN_URL = "https://api.instagram.com/oauth/access_token"  # noqa: S105 (a URL, not a password)
INSTAGRAM_GRAPH_URL = "https://graph.instagram.com"
GRAPH_VERSION = "v25.0"
DEFAULT_SCOPES = ("instagram_business_basic",)
PROFILE_FIELDS = ("id", "user_id", "username", "name", "account_type", "profile_picture_url", "followers_count",
                  "follows_count", "media_count")
CHILD_FIELDS = ("id", "media_type", "media_url", "thumbnail_url", "timestamp")
MEDIA_FIELDS = ("id", "caption", "media_type", "media_product_type", "media_url", "thumbnail_url", "permalink",
                "shortcode", "timestamp", "like_count", "comments_count", "alt_text",
                "children{" + ",".join(CHILD_FIELDS) + "}")
MAX_BODY = 8 * 1024 * 1024


async def _read_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The whole body, or None past MAX_BODY. (``content.read(n)`` returns whatever has arrived, at most n bytes:
    a large page spread over several TCP segments would come back cut short.)"""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _secret(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


class InstagramLoginClient:
    provider = Provider.INSTAGRAM_LOGIN
    insights_permission = "instagram_business_manage_insights"

    def __init__(self, *, app_id: str, app_secret: Secret, redirect_uri: str,
                 authorize_url: str = INSTAGRAM_AUTHORIZE_URL, token_url: str = INSTAGRAM_TOKEN_URL,
                 graph_url: str = INSTAGRAM_GRAPH_URL, graph_version: str = GRAPH_VERSION,
                 timeout: float = 30.0, max_connections: int = 100,
                 session: aiohttp.ClientSession | None = None, clock: Clock | None = None) -> None:
        self.app_id = app_id
        self._app_secret = app_secret
        self.redirect_uri = redirect_uri
        self._authorize_url = authorize_url
        self._token_url = token_url
        self._graph_url = graph_url.rstrip("/")
        self.graph_version = graph_version
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session = session
        self._owns_session = session is None
        self._clock = clock or Clock()  # expiry = time the request was sent + expires_in

    async def __aenter__(self) -> InstagramLoginClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  headers={"User-Agent": "filmroll"})
            self._owns_session = True
        # aiohttp silently re-sends an idempotent request once when the connection drops (aio-libs/aiohttp#10790,
        # no public switch). A hidden second refresh could race a rotated token, so retries stay ours to decide.
        if getattr(self._session, "_retry_connection", False):
            self._session._retry_connection = False
        return self._session

    # ----- transport ------------------------------------------------------------------------------------------

    async def _call(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                    data: Mapping[str, str] | None = None,
                    token: Secret | None = None) -> tuple[Any, Mapping[str, str]]:
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token is not None else {}
        try:
            async with self._http().request(method, url, params=params, data=data, headers=headers,
                                            allow_redirects=False, timeout=self._timeout) as response:
                body = await _read_body(response)
                status, response_headers = response.status, response.headers
        except TimeoutError:
            raise errors.TransportError("Instagram did not answer in time") from None
        except aiohttp.ClientError as exc:
            # aiohttp's messages can include the URL, and our URLs can include secrets: keep only the kind.
            raise errors.TransportError(f"could not talk to Instagram ({type(exc).__name__})") from None
        if body is None:
            raise errors.MalformedResponseError("Instagram's answer is unreasonably large")
        if status >= 400 or not 200 <= status < 300:
            raise wire.error_from_response(status, response_headers, body)
        try:
            return wire.parse_json(body), response_headers
        except ValueError:
            raise errors.MalformedResponseError("Instagram answered with something that is not JSON",
                                                status=status) from None

    def _graph(self, path: str) -> str:
        return f"{self._graph_url}/{self.graph_version}/{path.lstrip('/')}"

    # ----- OAuth ------------------------------------------------------------------------------------------------

    def authorize_url(self, state: str, scopes: Sequence[str] = DEFAULT_SCOPES, *, force_reauth: bool = False) -> str:
        params = {"client_id": self.app_id, "redirect_uri": self.redirect_uri, "response_type": "code",
                  "scope": ",".join(scopes), "state": state}
        if force_reauth:
            params["force_reauth"] = "true"
        return f"{self._authorize_url}?{urlencode(params)}"

    async def exchange_code(self, code: Secret | str) -> ShortLivedGrant:
        """Trade the redirect's code for a one-hour token. Never retried: a code works once."""
        form = {"client_id": self.app_id, "client_secret": self._app_secret.reveal(),
                "grant_type": "authorization_code", "redirect_uri": self.redirect_uri,
                "code": _secret(code).removesuffix("#_")}
        body, _ = await self._call("POST", self._token_url, data=form)
        return wire.parse_short_lived(body)

    async def exchange_long_lived(self, short_token: Secret) -> LongLivedGrant:
        params = {"grant_type": "ig_exchange_token", "client_secret": self._app_secret.reveal(),
                  "access_token": short_token.reveal()}
        requested_at = self._clock.now()
        url = f"{self._graph_url}/access_token"
        try:
            body, _ = await self._call("GET", url, params=params)
        except errors.MethodFlipError:
            # Meta has flipped the accepted method on this endpoint more than once (wire reference §5.3).
            body, _ = await self._call("POST", url, data=params)
        return wire.parse_long_lived(body, requested_at)

    async def refresh(self, token: Secret) -> LongLivedGrant:
        requested_at = self._clock.now()
        body, _ = await self._call("GET", f"{self._graph_url}/refresh_access_token",
                                   params={"grant_type": "ig_refresh_token", "access_token": token.reveal()})
        return wire.parse_long_lived(body, requested_at)

    async def subscribe(self, token: Secret, fields: Sequence[str]) -> bool:
        """Ask Instagram to send this app the account's webhook ``fields`` (``POST /me/subscribed_apps``)."""
        body, _ = await self._call("POST", self._graph("me/subscribed_apps"),
                                   params={"subscribed_fields": ",".join(fields)}, token=token)
        return isinstance(body, dict) and body.get("success") is True

    async def profiles(self, token: Secret) -> tuple[Profile, ...]:
        """The account a fresh token reads: its own."""
        return (await self.me(token),)

    async def check(self, token: Secret, ig_user_id: str) -> TokenInfo:
        """The daily probe: ``GET /me?fields=id``; a dead token raises TokenInvalidError. Instagram says nothing of
        the expiry here (the refresh tells it)."""
        await self.me(token, fields=("id",))
        return TokenInfo(is_valid=True)

    # ----- Graph reads ------------------------------------------------------------------------------------------

    def reader(self, ig_user_id: str) -> AccountReader:
        """What reads the account ``ig_user_id``: this client itself, since an Instagram Login token reads one
        account (``me``)."""
        return self

    async def me(self, token: Secret, fields: Sequence[str] = PROFILE_FIELDS) -> Profile:
        body, headers = await self._call("GET", self._graph("me"), params={"fields": ",".join(fields)}, token=token)
        return wire.parse_profile(body, wire.parse_usage(headers))

    async def profile_and_media(self, token: Secret, *, limit: int = 25,
                                fields: Sequence[str] = PROFILE_FIELDS,
                                media_fields: Sequence[str] = MEDIA_FIELDS) -> tuple[Profile, MediaPage]:
        """The profile and the newest page of media in one call (Graph field expansion)."""
        expansion = f"media.limit({limit}){{{','.join(media_fields)}}}"
        body, headers = await self._call("GET", self._graph("me"), params={"fields": ",".join([*fields, expansion])},
                                         token=token)
        return wire.parse_profile_and_media(body, wire.parse_usage(headers))

    async def media_page(self, token: Secret, *, user_id: str = "me", fields: Sequence[str] = MEDIA_FIELDS,
                         limit: int = 25, after: str | None = None, since: int | None = None,
                         next_url: str | None = None) -> MediaPage:
        if next_url is not None:
            body, headers = await self._call("GET", wire.strip_access_token(next_url), token=token)
        else:
            params = {"fields": ",".join(fields), "limit": str(limit)}
            if after:
                params["after"] = after
            if since is not None:
                params["since"] = str(since)
            body, headers = await self._call("GET", self._graph(f"{user_id}/media"), params=params, token=token)
        return wire.parse_media_page(body, wire.parse_usage(headers))

    async def media(self, token: Secret, *, user_id: str = "me", fields: Sequence[str] = MEDIA_FIELDS,
                    limit: int = 100, since: int | None = None) -> AsyncIterator[Media]:
        """Every media item, newest first, following ``paging.next`` until Instagram says there is no more."""
        page = await self.media_page(token, user_id=user_id, fields=fields, limit=limit, since=since)
        while True:
            for item in page.items:
                yield item
            if page.next_url:
                page = await self.media_page(token, next_url=page.next_url)
            elif page.after and len(page.items) >= limit:
                # Some edges return cursors without `next` (wire reference §2.5): build the next request ourselves.
                page = await self.media_page(token, user_id=user_id, fields=fields, limit=limit, after=page.after,
                                             since=since)
            else:
                return

    async def media_item(self, token: Secret, media_id: str, *, fields: Sequence[str] = MEDIA_FIELDS) -> Media:
        """One post by id; :class:`~filmroll.errors.NotFoundError` once it is gone (or hidden from this token)."""
        body, _ = await self._call("GET", self._graph(media_id), params={"fields": ",".join(fields)}, token=token)
        return wire.parse_media(body)

    async def children(self, token: Secret, media_id: str) -> tuple[Child, ...]:
        body, _ = await self._call("GET", self._graph(f"{media_id}/children"),
                                   params={"fields": ",".join(CHILD_FIELDS)}, token=token)
        return wire.parse_media({"id": media_id, "children": body}).children

    async def media_insights(self, token: Secret, media_id: str, metrics: Sequence[str]) -> tuple[Insight, ...]:
        body, _ = await self._call("GET", self._graph(f"{media_id}/insights"),
                                   params={"metric": ",".join(metrics)}, token=token)
        return wire.parse_insights(body)

    async def account_insights(self, token: Secret, metrics: Sequence[str], *, user_id: str = "me",
                               period: str = "day", metric_type: str = "total_value", since: int | None = None,
                               until: int | None = None) -> tuple[Insight, ...]:
        params = {"metric": ",".join(metrics), "period": period, "metric_type": metric_type}
        if since is not None:
            params["since"] = str(since)
        if until is not None:
            params["until"] = str(until)
        body, _ = await self._call("GET", self._graph(f"{user_id}/insights"), params=params, token=token)
        return wire.parse_insights(body)

