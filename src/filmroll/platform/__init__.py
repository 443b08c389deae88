"""``filmroll.platform``: Instagram's wire format, the provider seam and each provider's async client. Knows
nothing about the database."""

from filmroll.platform.facebook_login import FacebookLoginClient, LinkedAccount
from filmroll.platform.instagram_login import InstagramLoginClient
from filmroll.platform.models import (
    CallbackResult,
    Child,
    Insight,
    LongLivedGrant,
    Media,
    MediaPage,
    Profile,
    ShortLivedGrant,
    TokenInfo,
    Usage,
)
from filmroll.platform.provider import AccountReader, Clients, ProviderClient

__all__ = ["AccountReader", "CallbackResult", "Child", "Clients", "FacebookLoginClient", "Insight",
           "InstagramLoginClient", "LinkedAccount", "LongLivedGrant", "Media", "MediaPage", "Profile", "ProviderClient",
           "ShortLivedGrant", "TokenInfo", "Usage"]
