"""Every error filmroll raises, in one tree. Each message says what happened and what to do about it.

    FilmrollError                        base; the message defaults to the class docstring
    ├── ConfigError                      bad or missing configuration, found at start-up
    ├── DatabaseError                    the database cannot be reached, is damaged, locked, or is not filmroll's
    │                                    (yet); nothing was changed
    ├── VaultError
    │   ├── KeyMissingError              stored tokens use a key that is not in the keyring
    │   └── TokenIntegrityError          a ciphertext failed authentication (tampered, or moved to another row)
    ├── CallbackError                    a bad OAuth redirect (state, code, parameters); nothing was exchanged
    │   └── AuthorizationDeniedError     the owner pressed Cancel
    ├── SignedRequestError               a Meta callback's signed_request did not verify (which part: never said)
    ├── InputError                       a value filmroll does not take (an account reference, a number out of
    │   │                                range); nothing was changed
    │   └── FeedSettingError             a feed setting filmroll does not take (slug, origin, limit, type…)
    ├── AccountNotFoundError             no connected account matches
    ├── AccountStateError                the account cannot do that now (needs re-authorisation, busy); ``status``
    ├── FeedNotFoundError                no feed has that slug
    ├── ApiKeyNotFoundError              no live management API key has that id or name
    ├── MediaError                       the media mirror could not store a picture
    │   ├── DownloadRefusedError         a URL or an answer filmroll does not take (host, scheme, size, type,
    │   │   │                            decompression bomb): never fetched or stored, never retried as is
    │   │   └── SettingRefusedError      refused because of a setting (the CDN hosts, a size cap): the post waits
    │   │                                and is tried again once the setting changes, or at the daily sweep
    │   ├── DownloadFailedError          the CDN did not answer well (unreachable, 5xx, 404, cut short): retry later
    │   ├── PictureUnreadableError       the bytes arrived but do not decode (truncated, corrupt): the post's
    │   │                                failure, counted and given up after a few attempts (never an outage)
    │   └── UrlExpiredError              the CDN says the signed URL expired: read fresh URLs by id
    ├── StorageError                     the file storage (local directory, S3) failed: retry later
    └── InstagramError                   Instagram answered with an error, or did not answer
        ├── TransportError               network, timeout, connection reset, or a non-JSON 5xx: retry later
        ├── MalformedResponseError       a success we cannot trust; it never replaces a stored token
        ├── TransientError               Graph codes 1 and 2, JSON 5xx: retry later
        ├── RateLimitedError             4, 17, 32, 613, 80001, 80002, HTTP 429: wait ``retry_after`` seconds
        │   └── HashtagQuotaError        18, or refused before any call: 30 unique hashtags in 7 days; ``frees_at``
        ├── CodeRejectedError            the authorization code was used, expired, or mismatched: log in again
        ├── AppCredentialsError          wrong app id or secret (often the Meta app id instead of the Instagram one)
        ├── TokenInvalidError            190: the owner must re-authorise; ``reason`` says why in plain words
        ├── PermissionMissingError       10 / 200-299: the token lacks a permission (e.g. insights)
        └── RequestError                 100 and other request errors
            ├── NotFoundError            100/33: no such object, or not visible to this token
            ├── MethodFlipError          "Unsupported request - method type": retry once with the other method
            ├── RefreshTooEarlyError     a long-lived token can be refreshed only once it is 24 hours old
            ├── HashtagRefusedError      24: Instagram does not show this hashtag's posts (a blocked tag)
            └── ProfileNotFoundError     110: Business Discovery finds no professional account of that name
"""

from __future__ import annotations

from datetime import datetime


class FilmrollError(Exception):
    """Something went wrong in filmroll."""

    event_id: int | None = None  # the event recorded about it, when one was (a failed connect's summary page)

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(FilmrollError):
    """The configuration is incomplete or inconsistent."""


class DatabaseError(FilmrollError):
    """The database cannot be used; nothing was changed."""


class InputError(FilmrollError):
    """That value is not one filmroll takes; nothing was changed."""


class VaultError(FilmrollError):
    """The token vault cannot do what was asked."""


class KeyMissingError(VaultError):
    """Stored tokens are encrypted with a key that is not in the keyring."""


class TokenIntegrityError(VaultError):
    """A stored token failed its integrity check: it was altered, or copied from another account's row."""


class CallbackError(FilmrollError):
    """The OAuth redirect is not one filmroll can accept; nothing was exchanged."""

    def __init__(self, message: str | None = None, *, code: str = "bad_callback") -> None:
        super().__init__(message)
        self.code = code


class AuthorizationDeniedError(CallbackError):
    """The account owner declined the authorization on Instagram."""


class SignedRequestError(FilmrollError):
    """The signed request is not valid."""


class AccountNotFoundError(FilmrollError):
    """No connected account matches."""


class AccountStateError(FilmrollError):
    """The account cannot do that in its current state."""

    def __init__(self, message: str | None = None, *, status: str) -> None:
        super().__init__(message)
        self.status = status  # the account's status (needs_reauth, disconnected…), or "busy", "throttled"


class FeedNotFoundError(FilmrollError):
    """There is no such feed; `filmroll feeds list` shows the feeds there are."""


class ApiKeyNotFoundError(FilmrollError):
    """No live API key matches; `filmroll api-keys list` shows the keys there are."""


class FeedSettingError(InputError):
    """That feed setting is not valid; nothing was changed."""


class MediaError(FilmrollError):
    """A picture could not be mirrored."""


class DownloadRefusedError(MediaError):
    """filmroll does not fetch or store this: it is outside the CDN hosts, too big, or not a picture."""


class SettingRefusedError(DownloadRefusedError):
    """Refused because of a setting (``setting`` names it), not because of the bytes: tried again when it changes."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting

    def __reduce__(self) -> tuple[object, ...]:  # picklable with its keyword, like the others
        return (_setting_refused, (self.message, self.setting))


def _setting_refused(message: str, setting: str) -> SettingRefusedError:
    return SettingRefusedError(message, setting=setting)


class DownloadFailedError(MediaError):
    """Instagram's CDN did not deliver the file; it is tried again later."""


class PictureUnreadableError(MediaError):
    """The picture's bytes could not be decoded (truncated or damaged); the post is tried again a few times."""


class UrlExpiredError(MediaError):
    """Instagram's CDN says this signed URL has expired; fresh URLs are read from the Graph API by id."""


class StorageError(FilmrollError):
    """The file storage could not be written or read; check its settings and reachability."""


class InstagramError(FilmrollError):
    """Instagram answered with an error."""

    def __init__(self, message: str | None = None, *, code: int | None = None, subcode: int | None = None,
                 status: int | None = None, fbtrace_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.status = status
        self.fbtrace_id = fbtrace_id


class TransportError(InstagramError):
    """Instagram could not be reached, or the connection broke; try again later."""


class MalformedResponseError(InstagramError):
    """Instagram's answer could not be understood; nothing was changed."""


class TransientError(InstagramError):
    """Instagram had a temporary problem; try again later."""


class RateLimitedError(InstagramError):
    """Instagram is throttling these calls; wait before calling again."""

    def __init__(self, message: str | None = None, *, retry_after: float = 60.0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class HashtagQuotaError(RateLimitedError):
    """The account has queried 30 unique hashtags within 7 days; another can be searched once one frees."""

    def __init__(self, message: str | None = None, *, frees_at: datetime | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.frees_at = frees_at


class CodeRejectedError(InstagramError):
    """Instagram rejected the authorization code (already used, expired, or for another redirect URI): log in again."""


class AppCredentialsError(InstagramError):
    """Instagram rejected the app credentials: check the Instagram app ID and secret."""


class TokenInvalidError(InstagramError):
    """The access token no longer works; the account owner must authorise again."""

    def __init__(self, message: str | None = None, *, reason: str = "the token is no longer valid",
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.reason = reason


class PermissionMissingError(InstagramError):
    """The token lacks a permission this call needs."""


class RequestError(InstagramError):
    """Instagram refused the request as malformed."""


class NotFoundError(RequestError):
    """The object does not exist or this token cannot see it."""


class MethodFlipError(RequestError):
    """Instagram refused the HTTP method on this endpoint; the other method may work."""


class RefreshTooEarlyError(RequestError):
    """A long-lived token can be refreshed only once it is at least 24 hours old."""


class HashtagRefusedError(RequestError):
    """Instagram does not show this hashtag's posts (a sensitive or blocked tag)."""


class ProfileNotFoundError(RequestError):
    """Business Discovery finds no professional account of that name (unknown, personal, or age-gated)."""
