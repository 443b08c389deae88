"""The client of the Instagram API with Facebook Login (graph.facebook.com); filmroll's services reach it through
``platform/provider.py`` as the client of ``Provider.FACEBOOK``.

    async with FacebookLoginClient(app_id="…", app_secret=Secret("…"), redirect_uri="https://…/callback") as fb:
        url = fb.authorize_url(state="…")
        short = await fb.exchange_code(code)
        long = await fb.exchange_long_lived(short.access_token)
        for linked in await fb.linked_accounts(long.access_token):     # every Page's Instagram account
            profile = await fb.reader(linked.ig_user_id).me(long.access_token)

Sign-in is Facebook's (wire reference §6; hashtag reference §1): the Meta app's id and secret (not the Instagram
app's), a dialog on www.facebook.com, a short-lived user token for the code, a 60-day one for it
(``fb_exchange_token``) that is never refreshed, and ``debug_token`` to learn when the token and the app's data
access (90 days after the user last consented) end. One user token reads every Instagram professional account linked
to the user's Pages, each by its IG user id; graph.facebook.com answers those reads in graph.instagram.com's shapes
(§6.4), so the transport and the parsing are Instagram Login's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from filmroll import errors
from filmroll.platform import wire
from filmroll.platform.instagram_login import MEDIA_FIELDS, InstagramLoginClient
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
from filmroll.secret import Secret
from filmroll.vocabulary import Provider

FACEBOOK_DIALOG_URL = "https://www.facebook.com/v25.0/dialog/oauth"
FACEBOOK_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_SCOPES = ("instagram_basic", "pages_show_list", "pages_read_engagement", "business_management",
                  "instagram_manage_insights")
# An IG User on graph.facebook.com: `id` is the IG user id; there is no app-scoped id, `user_id` or `account_type`.
PROFILE_FIELDS = ("id", "username", "name", "profile_picture_url", "followers_count", "follows_count",
                  "media_count")
PAGE_FIELDS = "id,name,instagram_business_account{id,username}"
# What the hashtag edges give (never an author: `username` is refused there, and no `thumbnail_url` is promised).
HASHTAG_MEDIA_FIELDS = ("id", "caption", "media_type", "media_url", "permalink", "timestamp", "like_count",
                        "comments_count", "children{id,media_type,media_url}")
DISCOVERY_PROFILE_FIELDS = ("id", "username", "name", "profile_picture_url", "followers_count", "follows_count",
                            "media_count")
DISCOVERY_MEDIA_FIELDS = ("id", "caption", "media_type", "media_product_type", "media_url", "thumbnail_url",
                          "permalink", "timestamp", "like_count", "comments_count", "username",
                          "children{id,media_type,media_url,thumbnail_url}")


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """An Instagram professional account linked to one of the user's Pages."""

    ig_user_id: str
    username: str | None
    page_id: str
    page_name: str | None


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if type(value) is int and value > 0 else None


def parse_token_info(body: Any) -> TokenInfo:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise errors.MalformedResponseError("Facebook's debug_token answer has no data object")
    problem = data.get("error") if isinstance(data.get("error"), dict) else None
    reason = None
    if problem is not None or data.get("is_valid") is not True:
        subcode = problem.get("subcode") if problem else None
        reason = wire.TOKEN_REASONS.get(subcode if type(subcode) is int else 0,
                                        "Facebook no longer accepts the token")
    scopes = data.get("scopes")
    return TokenInfo(is_valid=reason is None, expires_at=_epoch(data.get("expires_at")),
                     data_access_expires_at=_epoch(data.get("data_access_expires_at")),
                     scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
                     reason=reason)


def ig_profile(profile: Profile) -> Profile:
    """On graph.facebook.com the node's ``id`` is the IG user id, and no app-scoped id exists."""
    return replace(profile, user_id=profile.user_id or profile.app_scoped_id, app_scoped_id=None)


class FacebookLoginClient(InstagramLoginClient):
    provider = Provider.FACEBOOK
    insights_permission = "instagram_manage_insights"

    def __init__(self, *, app_id: str, app_secret: Secret, redirect_uri: str,
                 dialog_url: str = FACEBOOK_DIALOG_URL, graph_url: str = FACEBOOK_GRAPH_URL,
                 **kwargs: Any) -> None:
        super().__init__(app_id=app_id, app_secret=app_secret, redirect_uri=redirect_uri, authorize_url=dialog_url,
                         token_url="", graph_url=graph_url, **kwargs)

    # ----- sign-in ------------------------------------------------------------------------------------------------

    def authorize_url(self, state: str, scopes: Sequence[str] = DEFAULT_SCOPES, *, force_reauth: bool = False) -> str:
        params = {"client_id": self.app_id, "redirect_uri": self.redirect_uri, "state": state,
                  "response_type": "code", "scope": ",".join(scopes)}
        if force_reauth:  # asks again for what the data access covers, whoever is signed in to Facebook
            params["auth_type"] = "reauthorize"
        return f"{self._authorize_url}?{urlencode(params)}"

    async def exchange_code(self, code: Secret | str) -> ShortLivedGrant:
        """The code for a short-lived user token. Never retried: a code works once."""
        value = code.reveal() if isinstance(code, Secret) else code
        params = {"client_id": self.app_id, "redirect_uri": self.redirect_uri,
                  "client_secret": self._app_secret.reveal(), "code": value.removesuffix("#_=_").removesuffix("#_")}
        body, _ = await self._call("GET", self._graph("oauth/access_token"), params=params)
        return ShortLivedGrant(wire.parse_access_token(body), "", ())

    async def exchange_long_lived(self, short_token: Secret) -> LongLivedGrant:
        params = {"grant_type": "fb_exchange_token", "client_id": self.app_id,
                  "client_secret": self._app_secret.reveal(), "fb_exchange_token": short_token.reveal()}
        requested_at = self._clock.now()
        body, _ = await self._call("GET", self._graph("oauth/access_token"), params=params)
        return wire.parse_long_lived(body, requested_at)

    async def refresh(self, token: Secret) -> LongLivedGrant:
        raise errors.ConfigError("a Facebook user token is never refreshed: its owner reconnects before it ends")

    async def subscribe(self, token: Secret, fields: Sequence[str]) -> bool:
        return False  # Facebook Login accounts' webhooks come through their Page's subscription: not asked here

    async def inspect(self, token: Secret) -> TokenInfo:
        """``debug_token``, asked with the app's own token: expiry, data-access expiry, scopes, validity."""
        app_token = f"{self.app_id}|{self._app_secret.reveal()}"
        body, _ = await self._call("GET", self._graph("debug_token"),
                                   params={"input_token": token.reveal(), "access_token": app_token})
        return parse_token_info(body)

    async def check(self, token: Secret, ig_user_id: str) -> TokenInfo:
        """The daily probe: ``debug_token`` (one call, whichever account), raising TokenInvalidError for a dead token
        or a lost data access, else when each ends."""
        info = await self.inspect(token)
        if not info.is_valid:
            reason = info.reason or "Facebook no longer accepts the token"
            raise errors.TokenInvalidError(f"Reconnect the account: {reason}.", reason=reason)
        return info

    async def linked_accounts(self, token: Secret) -> tuple[LinkedAccount, ...]:
        """Every Instagram professional account linked to the user's Pages (Pages without one are passed over)."""
        found: list[LinkedAccount] = []
        body, _ = await self._call("GET", self._graph("me/accounts"), params={"fields": PAGE_FIELDS, "limit": "100"},
                                   token=token)
        for _ in range(100):  # a hundred pages of a hundred Pages: beyond any real manager
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise errors.MalformedResponseError("Facebook's list of Pages has no data array")
            for page in body["data"]:
                linked = page.get("instagram_business_account") if isinstance(page, dict) else None
                if isinstance(linked, dict) and linked.get("id") is not None:
                    username, name = linked.get("username"), page.get("name")
                    found.append(LinkedAccount(str(linked["id"]), username if isinstance(username, str) else None,
                                               str(page.get("id")), name if isinstance(name, str) else None))
            following = body.get("paging", {}).get("next") if isinstance(body.get("paging"), dict) else None
            if not isinstance(following, str):
                break
            body, _ = await self._call("GET", wire.strip_access_token(following), token=token)
        return tuple(dict((a.ig_user_id, a) for a in found).values())

    async def profiles(self, token: Secret) -> tuple[Profile, ...]:
        """The accounts a fresh user token reads: each Page's linked Instagram account, its profile read by id."""
        return tuple([await self.reader(linked.ig_user_id).me(token) for linked in await self.linked_accounts(token)])

    # ----- public content: hashtags and Business Discovery (hashtag reference §2-3) -----------------------------

    async def hashtag_id(self, token: Secret, user_id: str, name: str) -> str | None:
        """``ig_hashtag_search``: the tag's static id, or None when Instagram finds no such tag. Counts against the
        querying account's 30 tags a week: ask once, keep the answer."""
        body, _ = await self._call("GET", self._graph("ig_hashtag_search"), params={"user_id": user_id, "q": name},
                                   token=token)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise errors.MalformedResponseError("Instagram's hashtag search has no data array")
        return next((str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")), None)

    async def hashtag_media(self, token: Secret, *, hashtag_id: str, user_id: str, edge: str = "recent_media",
                            limit: int = 50, next_url: str | None = None,
                            fields: Sequence[str] = HASHTAG_MEDIA_FIELDS) -> MediaPage:
        """A page of a hashtag's ``recent_media`` (the last 24 hours) or ``top_media``. Follow ``next_url``: the
        cursor value is the same on every page (it advances server-side), so it tells nothing about where it ends."""
        if next_url is not None:
            body, headers = await self._call("GET", wire.strip_access_token(next_url), token=token)
        else:
            params = {"user_id": user_id, "fields": ",".join(fields), "limit": str(min(limit, 50))}
            body, headers = await self._call("GET", self._graph(f"{hashtag_id}/{edge}"), params=params, token=token)
        return wire.parse_media_page(body, wire.parse_usage(headers))

    async def recently_searched_hashtags(self, token: Secret, user_id: str) -> tuple[str, ...]:
        """The ids of the tags this account queried in the last 7 days (the quota's own ledger)."""
        body, _ = await self._call("GET", self._graph(f"{user_id}/recently_searched_hashtags"),
                                   params={"limit": "30"}, token=token)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise errors.MalformedResponseError("Instagram's recently searched hashtags have no data array")
        return tuple(str(item["id"]) for item in data if isinstance(item, dict) and item.get("id"))

    async def discover(self, token: Secret, *, user_id: str, username: str, limit: int = 50,
                       after: str | None = None) -> tuple[Profile, MediaPage]:
        """Business Discovery: another professional account's profile and a page of its posts, paged with
        ``media.after(cursor)`` (the nested edge has no ``next`` URL). ProfileNotFoundError: (#110)."""
        media = f"media.limit({limit})" + (f".after({after})" if after else "") + \
            "{" + ",".join(DISCOVERY_MEDIA_FIELDS) + "}"
        expansion = f"business_discovery.username({username}){{{','.join(DISCOVERY_PROFILE_FIELDS)},{media}}}"
        body, headers = await self._call("GET", self._graph(user_id), params={"fields": expansion}, token=token)
        found = body.get("business_discovery") if isinstance(body, dict) else None
        if not isinstance(found, dict):
            raise errors.MalformedResponseError("Instagram's Business Discovery answer has no business_discovery")
        profile, page = wire.parse_profile_and_media(found, wire.parse_usage(headers))
        return ig_profile(profile), page

    def reader(self, ig_user_id: str) -> IgUserReader:
        return IgUserReader(self, ig_user_id)


class IgUserReader:
    """One IG professional account read through Facebook Login: by its id, with the user token."""

    def __init__(self, client: FacebookLoginClient, ig_user_id: str) -> None:
        self.client = client
        self.ig_user_id = ig_user_id
        self.insights_permission = client.insights_permission

    async def me(self, token: Secret, fields: Sequence[str] = PROFILE_FIELDS) -> Profile:
        fields = [f for f in fields if f not in ("user_id", "account_type")] or ["id"]
        body, headers = await self.client._call("GET", self.client._graph(self.ig_user_id),
                                                params={"fields": ",".join(fields)}, token=token)
        return ig_profile(wire.parse_profile(body, wire.parse_usage(headers)))

    async def profile_and_media(self, token: Secret, *, limit: int = 25, fields: Sequence[str] = PROFILE_FIELDS,
                                media_fields: Sequence[str] = MEDIA_FIELDS) -> tuple[Profile, MediaPage]:
        fields = [f for f in fields if f not in ("user_id", "account_type")]
        expansion = f"media.limit({limit}){{{','.join(media_fields)}}}"
        body, headers = await self.client._call("GET", self.client._graph(self.ig_user_id),
                                                params={"fields": ",".join([*fields, expansion])}, token=token)
        profile, page = wire.parse_profile_and_media(body, wire.parse_usage(headers))
        return ig_profile(profile), page

    async def media_page(self, token: Secret, *, limit: int = 25, after: str | None = None, since: int | None = None,
                         next_url: str | None = None) -> MediaPage:
        return await self.client.media_page(token, user_id=self.ig_user_id, limit=limit, after=after, since=since,
                                            next_url=next_url)

    async def media_item(self, token: Secret, media_id: str, *, fields: Sequence[str] = MEDIA_FIELDS) -> Media:
        return await self.client.media_item(token, media_id, fields=fields)

    async def children(self, token: Secret, media_id: str) -> tuple[Child, ...]:
        return await self.client.children(token, media_id)

    async def media_insights(self, token: Secret, media_id: str, metrics: Sequence[str]) -> tuple[Insight, ...]:
        return await self.client.media_insights(token, media_id, metrics)

    async def account_insights(self, token: Secret, metrics: Sequence[str], *, period: str = "day",
                               metric_type: str = "total_value", since: int | None = None,
                               until: int | None = None) -> tuple[Insight, ...]:
        return await self.client.account_insights(token, metrics, user_id=self.ig_user_id, period=period,
                                                  metric_type=metric_type, since=since, until=until)


__all__ = ["FacebookLoginClient", "IgUserReader", "LinkedAccount"]
