"""The words filmroll decides by, each written once: an account's status, a source's kind and status, a job's
outcome, a failure's kind, the provider an account came through. They are ``StrEnum``s, so the database, the CLI's
JSON and the logs keep the plain strings (``"needs_reauth"``) while the code compares members, never text.
"""

from __future__ import annotations

from enum import StrEnum


class AccountStatus(StrEnum):
    ACTIVE = "active"  # a working token; refreshed, probed and synced
    NEEDS_REAUTH = "needs_reauth"  # the token died; the owner must sign in again (an alert says so)
    REVOKED = "revoked"  # the owner removed the app (Meta's deauthorize callback)
    DISCONNECTED = "disconnected"  # an operator disconnected it; the token is deleted


class SourceKind(StrEnum):
    """Where a source's posts come from (``sources.kind``); a runtime may add kinds (``service/source_kinds.py``)."""

    ACCOUNT = "account"  # a connected account's own posts and profile picture
    HASHTAG = "hashtag"  # recent posts with a hashtag, searched through a connected account
    PROFILE = "profile"  # another professional account's public posts (Business Discovery)


class SourceStatus(StrEnum):
    """Whether a source is synced (``sources.status``); an account source also follows its account's status."""

    ACTIVE = "active"  # synced on its schedule
    PAUSED = "paused"  # kept, shown, not synced


class Moderation(StrEnum):
    """How a feed treats other people's posts (from hashtag and profile sources): ``feeds.moderation``."""

    OPEN = "open"  # shown on arrival (block words still reject)
    APPROVE = "approve"  # shown only once an operator approves them


class PostState(StrEnum):
    """A feed's decision on one post (``feed_posts.state``)."""

    PENDING = "pending"  # waiting for an operator (another person's post: never shown before it is approved)
    APPROVED = "approved"  # shown
    REJECTED = "rejected"  # never shown, and not asked about again
    HIDDEN = "hidden"  # an operator took it out of the feed


class Provider(StrEnum):
    """How an account's token was obtained; each provider has its own authorize, token and Graph hosts."""

    INSTAGRAM_LOGIN = "instagram_login"  # Instagram API with Instagram Login (graph.instagram.com)
    FACEBOOK = "facebook"  # Instagram API with Facebook Login (graph.facebook.com): a Page's IG account

    @property
    def refreshes(self) -> bool:
        """Whether its long-lived tokens are refreshed before they expire (Instagram Login's, every 60 days), or
        live and die by the provider's own rules (a Facebook user token is never refreshed: it is reconnected)."""
        return self in _REFRESHED


_REFRESHED = frozenset({Provider.INSTAGRAM_LOGIN})


class FailureKind(StrEnum):
    """Why the last attempt of a refresh or a sync failed, when it is retried."""

    THROTTLED = "throttled"  # Instagram asked us to wait; calling earlier prolongs the block
    TEMPORARY = "temporary"  # an outage, a timeout, an answer we could not trust: retried with backoff


class AlertStatus(StrEnum):
    """Where an outgoing alert (``alerts`` table, an outbox) stands."""

    PENDING = "pending"  # waiting for its (next) delivery attempt
    SENT = "sent"  # the receiver answered 2xx
    FAILED = "failed"  # given up on after the last attempt
    OBSOLETE = "obsolete"  # the account recovered before it went out: never sent


class FileRole(StrEnum):
    """What a stored file (``media_files.role``) is to its post."""

    ORIGINAL = "original"  # Instagram's image, byte for byte (a post's, a carousel child's, the profile picture)
    POSTER = "poster"  # a video's still image (its thumbnail_url), byte for byte
    VIDEO = "video"  # the video file itself (by setting)
    VARIANT = "variant"  # a resized, re-encoded copy of an original or poster ("640.webp")


class Outcome(StrEnum):
    """What one job did: the worker counts these, the CLI maps them to messages and exit codes."""

    # refresh
    REFRESHED = "refreshed"
    TOO_EARLY = "too_early"
    LOST_RACE = "lost_race"  # another worker refreshed the token meanwhile: not a dead account
    THROTTLED = "throttled"
    RETRY = "retry"
    # probe
    ALIVE = "alive"
    # sync
    SYNCED = "synced"
    SYNCED_FULL = "synced_full"
    SYNC_RETRY = "sync_retry"
    SYNC_THROTTLED = "sync_throttled"
    # alert
    ALERT_SENT = "alert_sent"
    ALERT_RETRY = "alert_retry"
    ALERT_FAILED = "alert_failed"
    ALERT_OBSOLETE = "alert_obsolete"
    # mirror
    MIRRORED = "mirrored"  # every pending picture of the account stored (or refused for good, with an event)
    MIRROR_RETRY = "mirror_retry"  # some could not be fetched now; retried with backoff
    # publish
    PUBLISHED = "published"  # a feed's changed files written to FILMROLL_PUBLISH__DIR
    PUBLISH_RETRY = "publish_retry"  # the target (or a picture) failed; retried with backoff
    # deletion
    DELETED = "deleted"  # everything filmroll held about an owner is gone; the request says so on its status page
    DELETION_RETRY = "deletion_retry"  # the storage failed; retried with backoff
    # webhook
    WEBHOOK_HANDLED = "webhook_handled"  # a delivery's accounts made due for a sync now (and it was forwarded)
    WEBHOOK_RETRY = "webhook_retry"  # forwarding to the operator's webhook failed; retried with backoff
    # any job
    NEEDS_REAUTH = "needs_reauth"
    STALE_LEASE = "stale_lease"  # our lease was taken over: nothing was written
    INTERRUPTED = "interrupted"  # the database went away mid-job; the lease runs out and the job is retried
    CRASHED = "crashed"  # a bug; the lease runs out and the job is retried
