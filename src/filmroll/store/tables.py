"""The schema. Column names are the names used everywhere else (JSON fields, CLI output, settings).

Lease columns (``*_lease_owner``, ``*_lease_until``) and ``tokens.version`` are the fencing the workers rely on:
a worker writes a token only ``WHERE version = <the version it read>``, so one whose lease was lost writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from filmroll.vocabulary import AccountStatus, AlertStatus, Provider, SourceStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ig_user_id: Mapped[str] = mapped_column(String(32))  # unique per provider (see __table_args__)
    provider: Mapped[str] = mapped_column(String(32), default=Provider.INSTAGRAM_LOGIN,
                                          server_default=Provider.INSTAGRAM_LOGIN.value)
    app_scoped_id: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    account_type: Mapped[str | None] = mapped_column(String(32))
    profile_picture_url: Mapped[str | None] = mapped_column(Text)
    followers_count: Mapped[int | None] = mapped_column(BigInteger)
    follows_count: Mapped[int | None] = mapped_column(BigInteger)
    media_count: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.ACTIVE)  # an AccountStatus
    status_reason: Mapped[str | None] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    custom_id: Mapped[str | None] = mapped_column(String(100))  # an agency's own id for it (a connect link's)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # One person's Instagram account connected through two providers is two accounts: each provider's token reads
    # it, each has its own lifecycle.
    __table_args__ = (UniqueConstraint("provider", "ig_user_id", name="uq_accounts_provider_ig_user_id"),
                      Index("ix_accounts_status_id", "status", "id"),  # the accounts page, a status at a time
                      Index("ix_accounts_custom_id", "custom_id"))


class Source(Base):
    """Where posts come from, and the unit of the sync and mirror jobs (their schedule, leases and failures).

    Every connected account has its ``account`` source (its own posts and profile picture); a ``hashtag`` or
    ``profile`` source holds other people's posts, read through the account in ``account_id``. A source's posts
    (``media``) and files (``media_files``) are its own: one post found by two sources is stored twice, each copy
    kept, mirrored and collected with its source. ``kind`` is a :class:`~filmroll.vocabulary.SourceKind` or the name
    of a kind registered with the runtime (``service/source_kinds.py``).
    """

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    # The account it belongs to (kind account) or reads through; its rows go with the account's.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(String(200), default="")  # the tag or username; "" for an account's own
    status: Mapped[str] = mapped_column(String(20), default=SourceStatus.ACTIVE)  # a SourceStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set per source (`filmroll sync ACCOUNT --interval-minutes N`); NULL: FILMROLL_SYNC__INTERVAL_MINUTES.
    sync_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stale_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_lease_owner: Mapped[str | None] = mapped_column(String(80))
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_failures: Mapped[int] = mapped_column(Integer, default=0)
    sync_error: Mapped[str | None] = mapped_column(Text)
    sync_failure_kind: Mapped[str | None] = mapped_column(String(16))  # a FailureKind, while syncs fail
    usage_percent: Mapped[int | None] = mapped_column(Integer)
    insights_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A hash of the newest media page as last stored: the same page again means nothing on it needs writing.
    media_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The media mirror: when its next pass is due (NULL: nothing to do), its lease, and why its last pass failed.
    next_mirror_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mirror_lease_owner: Mapped[str | None] = mapped_column(String(80))
    mirror_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mirror_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mirror_error: Mapped[str | None] = mapped_column(Text)
    mirror_collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the collector's last run
    top_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a hashtag's top posts, read daily
    # A profile source's account as Business Discovery last showed it (username, name, counts, picture URL).
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_sources_due_sync", "status", "next_sync_at"),
                      Index("ix_sources_due_mirror", "next_mirror_at"),
                      UniqueConstraint("account_id", "kind", "query", name="uq_sources_account_kind_query"))


class MediaItem(Base):
    """One post as last seen on Instagram. Unique per source and Instagram id: never duplicated."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    ig_media_id: Mapped[str] = mapped_column(String(32))
    # The author where Instagram tells it (Business Discovery); NULL for an account's own (its account says) and
    # for a hashtag's (Instagram never tells: none is invented).
    username: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str | None] = mapped_column(String(20))
    media_product_type: Mapped[str | None] = mapped_column(String(20))
    caption: Mapped[str | None] = mapped_column(Text)
    permalink: Mapped[str | None] = mapped_column(Text)
    shortcode: Mapped[str | None] = mapped_column(String(40))
    media_url: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    alt_text: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    comments_count: Mapped[int | None] = mapped_column(BigInteger)
    children_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The mirror: when every picture of the post was stored (NULL: not yet), attempts and the last refusal.
    mirrored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mirror_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mirror_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("source_id", "ig_media_id", name="uq_media_source_ig_id"),
                      Index("ix_media_source_timestamp", "source_id", "timestamp"))


class MediaFile(Base):
    """A file filmroll stores for a post (its picture, each carousel child's, a video's poster and file, their
    variants) or for an account's profile picture (``ig_media_id`` "", in its account source). Objects are
    content-addressed under the source's prefix (``storage_key`` holds the SHA-256 of the bytes; see
    ``storage/keys.py``), so a retry writes the same object again."""

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    ig_media_id: Mapped[str] = mapped_column(String(32))  # the post's or the child's; "" for the profile picture
    role: Mapped[str] = mapped_column(String(16))  # a FileRole
    variant: Mapped[str] = mapped_column(String(24), default="")  # "640.webp" for a variant; "" otherwise
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    source_name: Mapped[str | None] = mapped_column(Text)  # the CDN's file name, for the profile picture's change
    color: Mapped[str | None] = mapped_column(String(16))  # "r,g,b", as Behold writes it
    palette: Mapped[str | None] = mapped_column(Text)  # JSON: {"dominant": "r,g,b", "vibrant": …}
    placeholder: Mapped[str | None] = mapped_column(String(64))  # a BlurHash
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    served_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # variants: the byte budget evicts by this
    storage: Mapped[str | None] = mapped_column(Text)  # which storage holds it (Storage.description); NULL: older

    __table_args__ = (UniqueConstraint("source_id", "ig_media_id", "role", "variant", name="uq_media_files_key"),
                      Index("ix_media_files_sha256", "sha256"))


class Feed(Base):
    """What a website shows: posts of one or more sources (``feed_sources``), filtered, with the operator's decisions
    on single posts (``feed_posts``: hidden, pinned).

    ``changed_at`` moves in the transaction of every write that changes what the feed shows (its settings, a sync
    or mirror pass of a source, a source's status): the web tier renders a feed again when it moves, never per
    request. The list columns are JSON arrays of strings.
    """

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    post_limit: Mapped[int] = mapped_column(Integer, default=12)  # posts per page
    media_types: Mapped[list[str]] = mapped_column(JSON)  # IMAGE, VIDEO, CAROUSEL_ALBUM
    reels: Mapped[bool] = mapped_column(Boolean, default=True)
    include_hashtags: Mapped[list[str]] = mapped_column(JSON)  # lower case, no '#': a post needs one of them
    exclude_hashtags: Mapped[list[str]] = mapped_column(JSON)  # a post with any of them is left out
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)  # ["*"] or exact origins (CORS, frame-ancestors)
    # "open": other people's posts show on arrival; "approve": only once an operator approves them (a Moderation)
    moderation: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    block_words: Mapped[list[str] | None] = mapped_column(JSON, default=list)  # reject on arrival (any case, accent)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last `publish` that wrote it
    # The worker's republishing (FILMROLL_PUBLISH__DIR): the version last published (see store.feeds.versions),
    # its lease, and backoff while publishing fails.
    published_version: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_lease_owner: Mapped[str | None] = mapped_column(String(80))
    publish_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    publish_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)  # its settings' last edit


class FeedPost(Base):
    """An operator's decision on one post in one feed: its state (a :class:`~filmroll.vocabulary.PostState`), whether
    it is pinned (and where), who decided and when. Keyed by Instagram's id, not a media row: the decision holds for
    the post whichever source brings it, and for a post not stored yet. A post without a row shows as its sources
    say (an account's own posts: shown)."""

    __tablename__ = "feed_posts"

    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    ig_media_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    pinned_position: Mapped[int | None] = mapped_column(Integer)  # pinned posts come first, lowest first
    decided_by: Mapped[str | None] = mapped_column(String(120))  # an admin's name, "cli"; NULL: before 0016
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedSource(Base):
    __tablename__ = "feed_sources"

    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_feed_sources_source", "source_id"),)


class Hashtag(Base):
    """A hashtag's id, looked up once (``ig_hashtag_search`` counts against the weekly quota) and kept for good:
    Instagram's hashtag ids are static and global."""

    __tablename__ = "hashtags"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # lower case, no '#'
    hashtag_id: Mapped[str] = mapped_column(String(32))
    looked_up_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HashtagSearch(Base):
    """The quota ledger: when an IG account first queried a tag in the current 7-day window (30 tags at most)."""

    __tablename__ = "hashtag_searches"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_searched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MediaChild(Base):
    __tablename__ = "media_children"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    ig_media_id: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str | None] = mapped_column(String(20))
    media_url: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("media_id", "ig_media_id", name="uq_media_children_parent_ig_id"),)


class InsightSnapshot(Base):
    """One insight value as Instagram reported it. Account metrics are keyed by the day they describe; a post's
    lifetime metrics by the day they were taken, so each day adds a row and history accumulates."""

    __tablename__ = "insight_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    ig_media_id: Mapped[str] = mapped_column(String(32), default="")  # "" for the account itself
    metric: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    value: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("account_id", "ig_media_id", "metric", "period", "day",
                                       name="uq_insight_snapshots_key"),)


class Token(Base):
    """The one current token of an account, encrypted by the vault (never a plaintext column)."""

    __tablename__ = "tokens"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32), default=Provider.INSTAGRAM_LOGIN,
                                          server_default=Provider.INSTAGRAM_LOGIN.value)
    permissions: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A Facebook user token's: the app's data access ends 90 days after the owner last consented (debug_token).
    data_access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    refresh_failures: Mapped[int] = mapped_column(Integer, default=0)
    refresh_error: Mapped[str | None] = mapped_column(Text)
    refresh_failure_kind: Mapped[str | None] = mapped_column(String(16))  # a FailureKind, while refreshes fail
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_tokens_due_refresh", "next_refresh_at"), Index("ix_tokens_key_id", "key_id"),
                      Index("ix_tokens_due_probe", "next_probe_at"))


class OAuthState(Base):
    """A pending authorization. Only a hash of the state is kept; it is single use and expires in 10 minutes."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str | None] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(16))
    # Whose sign-in it is: the one callback route hands the code to that provider's client.
    provider: Mapped[str] = mapped_column(String(32), default=Provider.INSTAGRAM_LOGIN,
                                          server_default=Provider.INSTAGRAM_LOGIN.value)
    redirect_uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set for an owner's reconnect: the sign-in must end on that link's Instagram account.
    reconnect_link_id: Mapped[int | None] = mapped_column(ForeignKey("reconnect_links.id", ondelete="CASCADE"))
    # Set for a sign-in a connect link started: its custom id goes on the account it connects.
    connect_link_id: Mapped[int | None] = mapped_column(ForeignKey("connect_links.id", ondelete="CASCADE"))


class Alert(Base):
    """The outbox of outgoing webhook alerts, written in the transaction that changed the account's state.

    One row per (account, kind, token version), so a state that persists alerts once; the worker delivers rows
    under a lease, with retries, and marks a row ``obsolete`` instead of sending it when the account has recovered.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # account.needs_reauth | token.expiring
    token_version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.PENDING)  # an AlertStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("account_id", "kind", "token_version", name="uq_alerts_account_kind_version"),
                      Index("ix_alerts_due", "status", "next_attempt_at"))


class ConnectLink(Base):
    """A single-use, expiring link an agency gives a client: it connects the client's account with no admin login,
    and the account carries the agency's ``custom_id``. Only a SHA-256 of the link's secret is kept."""

    __tablename__ = "connect_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    custom_id: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(32))
    return_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))


class ReconnectLink(Base):
    """A single-use, expiring link that lets an account's owner reconnect it without an admin login.
    Only a SHA-256 of the link's secret is kept."""

    __tablename__ = "reconnect_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_reconnect_links_account", "account_id"),)


class Admin(Base):
    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdminSession(Base):
    """A logged-in browser. The cookie holds a random id; the table holds only its hash."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A management API key (``/api/v1``): only the SHA-256 of the key is kept, with what a person needs to tell
    keys apart (name, the key's first characters) and to retire one (last used, revoked)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # read · write
    prefix: Mapped[str] = mapped_column(String(16))  # "flr_" and the next 8 characters, to recognise the key
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("sha256", name="uq_api_keys_sha256"),)


class LoginThrottle(Base):
    """Sign-in attempts per key: ``account:`` or ``client:`` and a keyed hash (``web/throttle.py``), never the
    username or address itself."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    """The append-only audit log. Never holds a secret: messages are written for people, from known values."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (Index("ix_events_account", "account_id", "id"),)


class DeletionRequest(Base):
    """An owner's request, through Meta, to delete what filmroll holds about them; its ``code`` is the confirmation
    code Meta shows them and the key of its public status page. Once done, whose it was is forgotten."""

    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    scoped_user_id: Mapped[str | None] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the account row goes with the deletion
    status: Mapped[str] = mapped_column(String(16))  # pending, completed
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_deletion_requests_due", "status", "next_attempt_at"),)


class WebhookDelivery(Base):
    """An Instagram webhook delivery, stored once (Meta retries for 36 hours: the body's hash keeps repeats out),
    acted on and forwarded to the operator's alert webhook by the worker's ``webhook`` job."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its accounts made due
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # forwarded too (or given up): done
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # forwarding attempts
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
