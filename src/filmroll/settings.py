"""filmroll's configuration: ``FILMROLL_*`` environment variables (groups nested with ``__``), a ``.env`` file, or
keyword arguments. Built only at the edges (CLI commands, the web app factory, the worker entry) and passed down as
plain values; nothing here is created at import time.

    FILMROLL_DATABASE_URL=postgresql://filmroll@db/filmroll
    FILMROLL_INSTAGRAM__APP_ID=990602627938098
    FILMROLL_INSTAGRAM__APP_SECRET=…
    FILMROLL_INSTAGRAM__REDIRECT_URI=https://feeds.example.org/callback
    FILMROLL_FACEBOOK__APP_ID=…                         (Facebook Login: hashtags, other profiles)
    FILMROLL_VAULT__KEYS=<base64 key>[,<older key>…]     (or a keys file, see `filmroll keys generate`)
    FILMROLL_SYNC__INTERVAL_MINUTES=10
    FILMROLL_ALERTS__WEBHOOK_URL=https://hooks.example.org/filmroll
    FILMROLL_ALERTS__WEBHOOK_SECRET=…
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from filmroll.platform.facebook_login import DEFAULT_SCOPES as FACEBOOK_SCOPES
from filmroll.platform.facebook_login import FACEBOOK_DIALOG_URL, FACEBOOK_GRAPH_URL
from filmroll.platform.instagram_login import (
    GRAPH_VERSION,
    INSTAGRAM_AUTHORIZE_URL,
    INSTAGRAM_GRAPH_URL,
    INSTAGRAM_TOKEN_URL,
)


class InstagramSettings(BaseModel):
    app_id: str = Field("", description="The Instagram app ID (App Dashboard → Instagram → API setup), "
                                        "not the Meta app ID")
    app_secret: SecretStr = SecretStr("")
    redirect_uri: str = Field("https://localhost:8000/callback",
                              description="Exactly as registered in the App Dashboard, byte for byte")
    authorize_url: str = INSTAGRAM_AUTHORIZE_URL
    token_url: str = INSTAGRAM_TOKEN_URL
    graph_url: str = INSTAGRAM_GRAPH_URL
    graph_version: str = GRAPH_VERSION
    scopes: list[str] = Field(default_factory=lambda: ["instagram_business_basic"], min_length=1,
                              description='A JSON list, e.g. ["instagram_business_basic"]')
    timeout: float = Field(30.0, gt=0, le=600, allow_inf_nan=False, description="Seconds to wait for Instagram")


class FacebookSettings(BaseModel):
    """Facebook Login: the Meta app's credentials (App Dashboard → App settings → Basic), for hashtags, other
    profiles and the accounts linked to Pages."""

    app_id: str = Field("", description="The Meta app ID (App settings → Basic), not the Instagram app ID")
    app_secret: SecretStr = SecretStr("")
    redirect_uri: str | None = Field(None, description="Exactly as in Facebook Login → Valid OAuth Redirect URIs; "
                                     "default: FILMROLL_INSTAGRAM__REDIRECT_URI (one callback serves both)")
    dialog_url: str = FACEBOOK_DIALOG_URL
    graph_url: str = FACEBOOK_GRAPH_URL
    graph_version: str = GRAPH_VERSION
    scopes: list[str] = Field(default_factory=lambda: list(FACEBOOK_SCOPES), min_length=1,
                              description='A JSON list, e.g. ["instagram_basic", "pages_show_list"]')


class HashtagSettings(BaseModel):
    recent_poll_minutes: int = Field(15, ge=1, le=12 * 60, description="Read each hashtag's recent posts this "
                                     "often; Instagram shows them for 24 hours only, so every post is caught")


class ApiSettings(BaseModel):
    requests_per_minute: int = Field(600, ge=1, le=1_000_000, description="Requests each management API key may "
                                     "make a minute (RateLimit-* headers say how many are left; then 429)")
    return_origins: list[str] = Field(default_factory=list, description="Origins a connect link may send the "
                                      "account owner back to afterwards (e.g. [\"https://agency.example\"])")


class MetricsSettings(BaseModel):
    database_gauges: bool = Field(True, description="Export the database's gauges on /metrics (accounts, token "
                                  "expiries, sync lag…); set false on every serve process but one")
    cache_seconds: float = Field(10.0, ge=0, le=3600, description="Read the database's gauges at most this often, "
                                 "whatever the scrape rate")


class VaultSettings(BaseModel):
    keys: SecretStr = Field(SecretStr(""), description="Comma-separated base64 keys; the first one encrypts")
    keys_file: Path = Path("filmroll.keys")


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = Field(None, description="The URL people reach filmroll at, e.g. https://feeds.example.org")
    session_idle_minutes: int = Field(30, ge=1, le=24 * 60, description="An admin session ends after this long idle")
    session_absolute_hours: int = Field(12, ge=1, le=24 * 30, description="An admin session ends this long after "
                                        "sign-in, busy or not")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    access_log: bool = Field(True, description="`filmroll serve` logs each request (method, path, status, time; "
                             "never a query string) at INFO; off behind a proxy or CDN that logs them already")
    # The edge's bounds (web/limits.py): checked before a request's body is read; what passes still meets the
    # per-form limits of the handlers.
    max_form_bytes: int = Field(16_384, ge=1_024, le=1 << 20, description="Largest body of a form post (sign-in, "
                                "Connect, Sync now, reconnect); larger ones are refused with 413 unread")
    max_editor_bytes: int = Field(262_144, ge=16_384, le=8 << 20, description="Largest body the feed editor posts")
    max_callback_bytes: int = Field(65_536, ge=4_096, le=8 << 20, description="Largest body of Meta's callbacks "
                                    "and webhooks (/meta/…)")
    max_header_bytes: int = Field(16_384, ge=4_096, le=256 << 10, description="Largest total size of a request's "
                                  "header lines (431 beyond)")
    max_headers: int = Field(64, ge=16, le=100, description="Most header lines a request may carry (431 beyond)")
    max_url_bytes: int = Field(8_192, ge=1_024, le=64 << 10, description="Longest path and query (414 beyond)")
    body_timeout_seconds: float = Field(10, gt=0, le=300, description="Time a client has to send a whole body "
                                        "(408 beyond): slow senders do not hold a connection open")
    trusted_proxies: list[str] = Field(default_factory=list, description="Addresses or networks of the reverse "
                                       "proxies whose X-Forwarded-For names the client (for the sign-in "
                                       "throttle); empty: the socket's peer is the client")
    login_attempts_per_account: int = Field(5, ge=1, le=1_000, description="Password checks an admin username "
                                            "gets before lockouts start, counted from every client")
    login_attempts_per_client: int = Field(20, ge=1, le=10_000, description="Password checks one client gets, "
                                           "over every username, before lockouts start")
    login_lockout_seconds: int = Field(60, ge=1, le=3_600, description="The first lockout; each further failed "
                                       "attempt doubles it (up to a day), and a successful sign-in ends it")
    password_checks: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1, le=64,
                                 description="Password checks (argon2: four lanes, 64 MiB each) run at once, off the "
                                 "event loop (default: half the cores, at least one); sign-ins beyond wait or get 503")
    password_check_priority: Literal["idle", "low", "normal"] = Field(
        "idle", description="The CPU priority of password checks: idle (other requests always go first; sign-ins "
        "slow down on a saturated machine), low (nice 19) or normal")


class RefreshSettings(BaseModel):
    window_days: int = Field(30, ge=2, le=58, description="Refresh once fewer days than this remain")
    jitter_hours: float = Field(6, ge=0, le=48, description="Spread refreshes over this much time")
    probe_interval_hours: float = Field(24, gt=0, le=24 * 14, description="Check each token at least this often")



class SyncSettings(BaseModel):
    interval_minutes: int = Field(10, ge=1, le=7 * 24 * 60, description="Sync each account this often, unless the "
                                  "account has its own interval (`filmroll sync ACCOUNT --interval-minutes N`)")
    full_pass_hours: float = Field(24, ge=1, le=24 * 14, description="Walk every post this often, to find deleted "
                                   "posts and edits beyond the newest page")
    slow_down_above_percent: int = Field(75, ge=10, le=99, description="Stretch an account's interval once its "
                                         "rate-limit usage passes this")



class AlertSettings(BaseModel):
    webhook_url: SecretStr = Field(SecretStr(""), description="Where alerts are POSTed; empty = no webhook. Kept "
                                   "secret: Slack-style URLs are credentials.")
    webhook_secret: SecretStr = Field(SecretStr(""), description="HMAC-SHA256 key for X-Filmroll-Signature-256")
    expiring_days: int = Field(7, ge=1, le=59, description="Alert when a token has fewer days left than this")
    reconnect_link_days: int = Field(7, ge=1, le=30, description="How long a reconnect link stays valid")


class MirrorSettings(BaseModel):
    enabled: bool = Field(True, description="Store every post's pictures (the worker's mirror job)")
    cdn_hosts: list[str] = Field(default_factory=lambda: ["*.cdninstagram.com", "*.fbcdn.net"],
                                 description="The only hosts pictures are fetched from (https); a whole origin "
                                 "such as http://127.0.0.1:8001 allows exactly that origin (the sandbox)")
    widths: list[Annotated[int, Field(ge=16, le=4096)]] = Field(default_factory=lambda: [320, 640, 1080],
                                                                description="The variants' widths")
    formats: list[Literal["webp", "avif"]] = Field(default_factory=lambda: ["webp", "avif"],  # type: ignore[arg-type]
                                                   description="The variants' formats")
    eager_posts: int = Field(24, ge=0, le=10_000, description="The newest posts of each account whose variants are "
                             "made at once; the others' on first request")
    videos: bool = Field(False, description="Store video files too (a video's poster is always stored)")
    max_image_mb: float = Field(30, gt=0, le=500)
    max_video_mb: float = Field(200, gt=0, le=5_000)
    per_host: int = Field(4, ge=1, le=64, description="Downloads at a time per CDN host")
    processes: int = Field(2, ge=1, le=64, description="Processes that render variants")


class StorageSettings(BaseModel):
    url: str = Field("file:filmroll-media", description="file:DIRECTORY (default, beside the database) or "
                     "s3://BUCKET[/PREFIX]")
    s3_endpoint: str | None = Field(None, description="An S3-compatible service other than AWS, e.g. "
                                    "http://127.0.0.1:9000")
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    retention_days: float = Field(30, ge=0, le=3650, description="How long files of deleted posts and of "
                                  "disconnected accounts are kept")
    variant_budget_mb: float = Field(0, ge=0, description="The most the variants may take (0: no limit); the "
                                     "least recently served go first, and are made again on request")


class FeedsSettings(BaseModel):
    base_url: str | None = Field(None, description="Where feed documents point pictures and pages at, e.g. "
                                 "https://feeds.example.org (default: web.public_url; '/' or no public URL: paths from "
                                 "the root, which suit the widget and the embed page but not a fragment included by "
                                 "another site)")
    max_age_seconds: int = Field(60, ge=0, le=86_400, description="How long browsers and CDNs keep a feed")
    stale_while_revalidate_seconds: int = Field(86_400, ge=0, le=31_536_000,
                                                description="How long a cache may serve a feed while it refetches")
    stale_if_error_seconds: int = Field(604_800, ge=0, le=31_536_000,
                                        description="How long a cache may serve a feed while filmroll is down")
    poll_seconds: float = Field(2, gt=0, le=3600, description="How often each web process looks for changed feeds")
    dead_account_days: float = Field(90, ge=0, le=3650, description="How long the posts of an account that must "
                                     "sign in again stay in its feeds (counted from when syncing it failed)")
    max_posts: int = Field(1000, ge=1, le=100_000, description="The most posts 'load more' reaches in a feed")
    revoked_posts: bool = Field(True, description="An account whose owner removed the app keeps showing its last "
                                "posts (its status says revoked) until FILMROLL_ACCOUNTS__RETENTION_DAYS deletes it; "
                                "false: its posts leave its feeds at once")


class PublishSettings(BaseModel):
    dir: str | None = Field(None, description="Where the worker republishes each feed after it changes: a directory "
                            "or s3://BUCKET[/PREFIX] (the storage group's S3 endpoint and keys); unset: only "
                            "`filmroll publish` publishes")
    base_url: str = Field("", description="Where the published files are reached, e.g. https://www.example.org "
                          "(default: paths from the site's root)")


class AccountSettings(BaseModel):
    retention_days: float = Field(30, ge=0, le=3650, description="Disconnected and revoked accounts are deleted "
                                  "(rows and files, as a deletion request) this long after; 0 keeps them")


class MetaSettings(BaseModel):
    app_secret: SecretStr = Field(SecretStr(""), description="The Meta app's secret (App settings → Basic), tried "
                                  "after the Instagram app secret on Meta's signed callbacks; empty: not tried")
    deauthorize_path: str = Field("/meta/deauthorize", pattern=r"^/[A-Za-z0-9/_-]{1,100}$",
                                  description="Where Meta posts a deauthorization (paste its URL in the App Dashboard)")
    data_deletion_path: str = Field("/meta/data-deletion", pattern=r"^/[A-Za-z0-9/_-]{1,100}$",
                                    description="Where Meta posts a data-deletion request")
    max_age_hours: float = Field(24, gt=0, le=24 * 30, description="The oldest signed request taken (issued_at)")
    webhook_path: str = Field("/meta/webhook", pattern=r"^/[A-Za-z0-9/_-]{1,100}$",
                              description="Where Instagram's webhooks are delivered (Meta checks it with a GET)")
    webhook_verify_token: SecretStr = Field(SecretStr(""), description="The verify token you type in the App "
                                            "Dashboard's webhook settings; empty: subscription checks are refused")
    inactive_warning_days: float = Field(30, gt=0, lt=90, description="`filmroll doctor` and the worker warn when "
                                         "no call has reached Instagram for this long while tokens are held (Meta "
                                         "switches off an app after 90 days without activity)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILMROLL_", env_nested_delimiter="__", env_file=".env",
                                      extra="ignore")

    database_url: str = "sqlite:///filmroll.db"
    instagram: InstagramSettings = Field(default_factory=InstagramSettings)
    facebook: FacebookSettings = Field(default_factory=FacebookSettings)
    hashtags: HashtagSettings = Field(default_factory=HashtagSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    feeds: FeedsSettings = Field(default_factory=FeedsSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    meta: MetaSettings = Field(default_factory=MetaSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def facebook_redirect_uri(self) -> str:
        return self.facebook.redirect_uri or self.instagram.redirect_uri

    def public_origin(self) -> str:
        """Where people reach filmroll's pages: ``web.public_url``, else the redirect URI's origin (the callback
        is one of filmroll's pages, so that origin serves the rest too)."""
        if self.web.public_url:
            return self.web.public_url.rstrip("/")
        parts = urlsplit(self.instagram.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}"


# FILMROLL_* variables read outside Settings: the CLI's own options (the log level, the sandbox's), the worker's
# fault points, and those of the test suite and benchmarks (README, Development).
OTHER_VARIABLES = frozenset({
    "FILMROLL_LOG_LEVEL", "FILMROLL_FAULT_POINTS",
    *(f"FILMROLL_SANDBOX__{name}" for name in ("HOST", "PORT", "SEED", "ACCOUNTS", "AUTO_CONSENT", "REDIRECT_URIS",
                                               "APP_ID", "APP_SECRET")),
    "FILMROLL_SIM_ACCOUNTS", "FILMROLL_SIM_DAYS", "FILMROLL_SIM_PROBE_HOURS", "FILMROLL_SIM_SEED",
    "FILMROLL_KILL_SEED", "FILMROLL_SCREENSHOTS", "FILMROLL_TEST_PG",
})


def known_variables() -> frozenset[str]:
    """Every FILMROLL_* name filmroll reads: each setting (and each group whole, as JSON) and the others above."""
    names = set(OTHER_VARIABLES)
    for name, field in Settings.model_fields.items():
        names.add(f"FILMROLL_{name.upper()}")
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.update(f"FILMROLL_{name.upper()}__{sub.upper()}" for sub in group.model_fields)
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The FILMROLL_* variables set here that filmroll does not read (a typo is otherwise silently ignored), each
    with the closest name it does read, if one is close."""
    known = {name.removeprefix("FILMROLL_"): name for name in known_variables()}
    unknown = sorted(name for name in environ
                     if name.upper().startswith("FILMROLL_") and name.upper().removeprefix("FILMROLL_") not in known)
    closest = (difflib.get_close_matches(name.upper().removeprefix("FILMROLL_"), known, n=1, cutoff=0.7)
               for name in unknown)
    return [(name, known[match[0]] if match else None) for name, match in zip(unknown, closest, strict=True)]
