"""The seam between filmroll's services and the providers of Instagram accounts.

A provider is how an account's token was obtained (:class:`~filmroll.vocabulary.Provider`); each has its own
authorize, token and Graph hosts, and its client speaks them. The services never name a client class: they hold
:class:`Clients`, one client per provider, and ask it for the provider of the row they work on (an OAuth state, a
token, an account)::

    Provider.INSTAGRAM_LOGIN ── InstagramLoginClient (platform/instagram_login.py: graph.instagram.com)
    Provider.FACEBOOK        ── FacebookLoginClient (platform/facebook_login.py: graph.facebook.com)

A provider is a module whose client meets :class:`ProviderClient`, a ``Provider`` member (saying whether its tokens
are refreshed) and a route table in the sandbox; ``runtime.py`` builds its client from its settings. Reads of an
account go through the provider's :class:`AccountReader` for that account (``clients.reader(provider, ig_user_id)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from filmroll.errors import ConfigError
from filmroll.platform.models import Child, Insight, LongLivedGrant, MediaPage, Profile, ShortLivedGrant, TokenInfo
from filmroll.platform.models import Media as Post
from filmroll.secret import Secret
from filmroll.vocabulary import Provider


class AccountReader(Protocol):
    """What reads one connected account: its profile, its posts a page at a time, one post, an album's children,
    insights. ``insights_permission`` is the permission its provider calls insights by."""

    insights_permission: str

    async def me(self, token: Secret, fields: Sequence[str] = ...) -> Profile: ...

    async def profile_and_media(self, token: Secret, *, limit: int = 25, fields: Sequence[str] = ...,
                                media_fields: Sequence[str] = ...) -> tuple[Profile, MediaPage]: ...

    async def media_page(self, token: Secret, *, limit: int = 25, after: str | None = None, since: int | None = None,
                         next_url: str | None = None) -> MediaPage: ...

    async def media_item(self, token: Secret, media_id: str, *, fields: Sequence[str] = ...) -> Post: ...

    async def children(self, token: Secret, media_id: str) -> tuple[Child, ...]: ...

    async def media_insights(self, token: Secret, media_id: str, metrics: Sequence[str]) -> tuple[Insight, ...]: ...

    async def account_insights(self, token: Secret, metrics: Sequence[str], *, period: str = "day",
                               metric_type: str = "total_value", since: int | None = None,
                               until: int | None = None) -> tuple[Insight, ...]: ...


@runtime_checkable
class ProviderClient(Protocol):
    """What the services ask of a provider: sign an owner in (authorize, exchange the code, make the token
    long-lived), keep the token alive (``refresh``, called only when ``provider.refreshes``), and a reader of each
    account it connected (``reader(ig_user_id)``: Instagram Login's token reads its one account as ``me``, a
    Facebook user token reads each of its Pages' accounts by id)."""

    provider: Provider
    redirect_uri: str
    insights_permission: str

    def authorize_url(self, state: str, scopes: Sequence[str] = ..., *, force_reauth: bool = False) -> str: ...

    async def exchange_code(self, code: Secret | str) -> ShortLivedGrant: ...

    async def exchange_long_lived(self, short_token: Secret) -> LongLivedGrant: ...

    async def refresh(self, token: Secret) -> LongLivedGrant: ...

    async def subscribe(self, token: Secret, fields: Sequence[str]) -> bool: ...

    def reader(self, ig_user_id: str) -> AccountReader: ...

    async def profiles(self, token: Secret) -> tuple[Profile, ...]: ...

    async def check(self, token: Secret, ig_user_id: str) -> TokenInfo: ...

    async def aclose(self) -> None: ...


class Clients:
    """One client per provider, asked for by the provider a row names."""

    def __init__(self, clients: Iterable[ProviderClient]) -> None:
        self._by_provider: dict[Provider, ProviderClient] = {}
        for client in clients:
            if client.provider in self._by_provider:
                raise ConfigError(f"two clients for the provider {client.provider}")
            self._by_provider[client.provider] = client

    @classmethod
    def of(cls, clients: Clients | ProviderClient | Mapping[Provider, ProviderClient]) -> Clients:
        """The clients of one provider (a client) or of several: what every service's constructor accepts."""
        if isinstance(clients, Clients):
            return clients
        if isinstance(clients, Mapping):
            return cls(clients.values())
        return cls([clients])

    def __getitem__(self, provider: str) -> ProviderClient:
        try:
            return self._by_provider[Provider(provider)]
        except (ValueError, KeyError):
            raise ConfigError(f"filmroll has no client for the provider {provider!r}; is it configured?") from None

    def __iter__(self) -> Iterator[ProviderClient]:
        return iter(self._by_provider.values())

    def reader(self, provider: str, ig_user_id: str) -> AccountReader:
        """What reads the account ``ig_user_id`` that came through ``provider``."""
        return self[provider].reader(ig_user_id)

    def __contains__(self, provider: object) -> bool:
        return provider in self._by_provider

    @property
    def default(self) -> ProviderClient:
        """The provider an operator means when they name none (``filmroll connect`` without ``--provider``)."""
        return self[Provider.INSTAGRAM_LOGIN]
