"""The one vocabulary of what went wrong: a code per condition, the same every time. The CLI exits with it (the
README's table, ``filmroll --help``); the management API (``/api/v1``) answers its name as ``error.code``."""

from __future__ import annotations

from enum import IntEnum

from filmroll import errors
from filmroll.vocabulary import AccountStatus


class ExitStatus(IntEnum):
    """The exit codes, one per condition, the same every time (the README's table and `filmroll --help`)."""

    OK = 0
    ERROR = 1  # anything else (the message says what)
    CONFIG = 2  # the configuration is missing or wrong (a setting, the keys file, the redirect URI, the app secret)
    NOT_FOUND = 3  # no such account or feed
    INSTAGRAM = 4  # Instagram refused or did not answer
    NEEDS_REAUTH = 5  # the account's owner must sign in again
    VAULT = 6  # a stored token's key is missing, or a ciphertext failed its check
    BUSY = 7  # a worker holds the lease on what was asked for: try again when it is done
    INVALID = 8  # a value filmroll does not take (an account reference, a feed setting): nothing was changed
    DATABASE = 9  # the database cannot be reached, is damaged or locked, or has no (current) filmroll schema
    THROTTLED = 10  # Instagram's rate limit, or filmroll waiting it out: try again later
    TOO_EARLY = 11  # Instagram does not allow it yet (a token under 24 hours old): the message says from when
    STORAGE = 12  # the file storage (a directory, S3) cannot be written or read: the message says why
    INTERRUPTED = 130  # Ctrl-C


def status_of(exc: errors.FilmrollError) -> ExitStatus:
    """The condition an error is: the CLI's exit status, the management API's error code (:func:`code_of`)."""
    if isinstance(exc, errors.ConfigError | errors.AppCredentialsError):  # Instagram finds the app's settings wrong
        return ExitStatus.CONFIG
    if isinstance(exc, errors.DatabaseError):
        return ExitStatus.DATABASE
    if isinstance(exc, errors.StorageError):
        return ExitStatus.STORAGE
    if isinstance(exc, errors.VaultError):
        return ExitStatus.VAULT
    if isinstance(exc, errors.AccountNotFoundError | errors.FeedNotFoundError | errors.ApiKeyNotFoundError):
        return ExitStatus.NOT_FOUND
    if isinstance(exc, errors.InputError | errors.ProfileNotFoundError) or (
            isinstance(exc, errors.AccountStateError) and exc.status == "not_refreshed"):
        return ExitStatus.INVALID
    if isinstance(exc, errors.TokenInvalidError) or (
            isinstance(exc, errors.AccountStateError) and exc.status == AccountStatus.NEEDS_REAUTH):
        return ExitStatus.NEEDS_REAUTH
    if isinstance(exc, errors.AccountStateError) and exc.status == "busy":
        return ExitStatus.BUSY
    if isinstance(exc, errors.RefreshTooEarlyError) or (
            isinstance(exc, errors.AccountStateError) and exc.status == "too_early"):
        return ExitStatus.TOO_EARLY
    if isinstance(exc, errors.RateLimitedError) or (
            isinstance(exc, errors.AccountStateError) and exc.status == "throttled"):
        return ExitStatus.THROTTLED
    if isinstance(exc, errors.InstagramError):
        return ExitStatus.INSTAGRAM
    return ExitStatus.ERROR


def code_of(exc: errors.FilmrollError) -> str:
    """``not_found``, ``busy``, ``needs_reauth``…: the condition's name, as the API says it."""
    return status_of(exc).name.lower()
