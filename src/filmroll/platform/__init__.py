"""``filmroll.platform``: Instagram's wire format, the provider seam and each provider's async client. Knows
nothing about the database."""

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
    Usage,
)
from filmroll.platform.provider import Clients, ProviderClient

__all__ = ["CallbackResult", "Child", "Clients", "Insight", "InstagramLoginClient", "LongLivedGrant", "Media",
           "MediaPage", "Profile", "ProviderClient", "ShortLivedGrant", "Usage"]
