"""What filmroll reads from Instagram, as plain typed values (no I/O, no database)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from filmroll.secret import Secret


@dataclass(frozen=True, slots=True)
class ShortLivedGrant:
    """The code exchange's answer: a one-hour token and the app-scoped user id."""

    access_token: Secret
    user_id: str
    permissions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LongLivedGrant:
    """A long-lived token (exchange or refresh). ``expires_at`` counts from when the request was sent."""

    access_token: Secret
    expires_in: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Usage:
    """Instagram's rate-limit headers, reduced to what a caller acts on."""

    account_percent: int | None = None  # X-Business-Use-Case-Usage call_count, 0-100
    app_percent: int | None = None  # X-App-Usage call_count, 0-100
    regain_seconds: int = 0  # estimated_time_to_regain_access, converted from minutes

    @property
    def busiest(self) -> int:
        return max(self.account_percent or 0, self.app_percent or 0)


@dataclass(frozen=True, slots=True)
class Profile:
    app_scoped_id: str | None
    user_id: str | None  # the professional-account id used in paths and webhooks
    username: str | None
    name: str | None = None
    account_type: str | None = None  # upper case: BUSINESS, MEDIA_CREATOR
    profile_picture_url: str | None = None
    followers_count: int | None = None
    follows_count: int | None = None
    media_count: int | None = None
    usage: Usage = field(default_factory=Usage, compare=False)


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    media_type: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Media:
    id: str
    media_type: str | None = None
    media_product_type: str | None = None
    caption: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    permalink: str | None = None
    shortcode: str | None = None
    timestamp: datetime | None = None
    like_count: int | None = None
    comments_count: int | None = None
    alt_text: str | None = None
    children: tuple[Child, ...] = ()


@dataclass(frozen=True)
class MediaPage:
    """One page of media. ``raw`` is Instagram's JSON items; ``items`` parses them on first use, so a sync that
    finds the page unchanged (by :func:`filmroll.service.posts.fingerprint`, over ``raw``) never pays for parsing.
    A malformed item therefore raises MalformedResponseError when ``items`` is first read."""

    raw: tuple[Mapping[str, Any], ...]
    next_url: str | None
    after: str | None
    usage: Usage = field(default_factory=Usage, compare=False)

    @cached_property
    def items(self) -> tuple[Media, ...]:
        from filmroll.platform.wire import parse_media  # wire builds these models

        return tuple(parse_media(item) for item in self.raw)


@dataclass(frozen=True, slots=True)
class Insight:
    name: str
    period: str
    value: int | None  # lifetime / total_value
    values: tuple[tuple[datetime | None, int], ...] = ()  # time series: (end_time, value)


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What the OAuth redirect carried: a code (``#_`` stripped) and the echoed state."""

    code: Secret
    state: str | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a provider says of a working token: until when it and the app's data access last (Facebook's
    ``debug_token``; None where the provider does not say, or never)."""

    is_valid: bool
    expires_at: datetime | None = None
    data_access_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    reason: str | None = None  # why it does not work, for people
