"""The seam between filmroll's services and the providers of Instagram accounts.

A provider is how an account's token was obtained (:class:`~filmroll.vocabulary.Provider`); each has its own
authorize, token and Graph hosts, and its client speaks them. The services never name a client class: they hold
:class:`Clients`, one client per provider, and ask it for the provider of the row they work on (an OAuth state, a
token, an account)::

    Provider.INSTAGRAM_LOGIN ── InstagramLoginClient (platform/instagram_login.py: graph.instagram.com)
    Provider.…               ── the next provider's client, a module beside it

A second provider is then a new module whose client meets :class:`ProviderClient`, a new ``Provider`` member (saying
whether its tokens are refreshed) and a route table in the sandbox; ``runtime.py`` builds its client from its
settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from filmroll.errors import ConfigError
from filmroll.platform.models import Child, Insight, LongLivedGrant, MediaPage, Profile, ShortLivedGrant
from filmroll.platform.models import Media as Post
from filmroll.secret import Secret
from filmroll.vocabulary import Provider


@runtime_checkable
class ProviderClient(Protocol):
    """What the services ask of a provider: sign an owner in (authorize, exchange the code, make the token
    long-lived), keep the token alive (``refresh``, called only when ``provider.refreshes``), and read an account
    (its profile, its posts a page at a time, one post, an album's children, insights)."""

    provider: Provider
    redirect_uri: str

    def authorize_url(self, state: str, scopes: Sequence[str] = ..., *, force_reauth: bool = False) -> str: ...

    async def exchange_code(self, code: Secret | str) -> ShortLivedGrant: ...

    async def exchange_long_lived(self, short_token: Secret) -> LongLivedGrant: ...

    async def refresh(self, token: Secret) -> LongLivedGrant: ...

    async def subscribe(self, token: Secret, fields: Sequence[str]) -> bool: ...

    async def me(self, token: Secret, fields: Sequence[str] = ...) -> Profile: ...

    async def profile_and_media(self, token: Secret, *, limit: int = 25, fields: Sequence[str] = ...,
                                media_fields: Sequence[str] = ...) -> tuple[Profile, MediaPage]: ...

    async def media_page(self, token: Secret, *, limit: int = 25, after: str | None = None, since: int | None = None,
                         next_url: str | None = None) -> MediaPage: ...

    async def media_item(self, token: Secret, media_id: str, *, fields: Sequence[str] = ...) -> Post: ...

    async def children(self, token: Secret, media_id: str) -> tuple[Child, ...]: ...

    async def media_insights(self, token: Secret, media_id: str, metrics: Sequence[str]) -> tuple[Insight, ...]: ...

    async def aclose(self) -> None: ...

    async def account_insights(self, token: Secret, metrics: Sequence[str], *, period: str = "day",
                               metric_type: str = "total_value", since: int | None = None,
                               until: int | None = None) -> tuple[Insight, ...]: ...


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

    @property
    def default(self) -> ProviderClient:
        """The provider an operator means when they name none (``filmroll connect`` without ``--provider``)."""
        return self[Provider.INSTAGRAM_LOGIN]
