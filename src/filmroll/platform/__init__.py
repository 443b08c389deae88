"""``filmroll.platform``: Instagram's wire format and an async client. Knows nothing about the database."""

from filmroll.platform.client import InstagramClient
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

__all__ = ["CallbackResult", "Child", "Insight", "InstagramClient", "LongLivedGrant", "Media", "MediaPage",
           "Profile", "ShortLivedGrant", "Usage"]
