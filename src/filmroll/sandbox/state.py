"""One running sandbox: its configuration, switches and every piece of state, resettable to the seed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from filmroll.sandbox.auth import App, AuthState, derive_numeric_id, derive_secret
from filmroll.sandbox.cdn import Cdn
from filmroll.sandbox.clock import SandboxClock
from filmroll.sandbox.hashtags import Hashtags
from filmroll.sandbox.pages import Pages
from filmroll.sandbox.traffic import Traffic
from filmroll.sandbox.world import World

DEFAULT_REDIRECT_URIS = ("https://localhost:8000/callback", "https://localhost:8765/callback")
LATEST_GRAPH_VERSION = 25
OLDEST_GRAPH_VERSION = 21


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox world is generated. Fixed for the life of the process; `/_sandbox/reset` restores it."""

    seed: int = 0
    accounts: int = 100_000
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    app_id: str | None = None
    app_secret: str | None = None
    auto_consent: bool = False
    large_accounts: tuple[tuple[int, int], ...] = ((99, 10_250),)  # account index -> media count
    call_log_size: int = 200_000
    token_marker: str = ""

    def resolved_app_id(self) -> str:
        return self.app_id or derive_numeric_id(self.seed, "instagram-app-id", 16)

    def resolved_app_secret(self) -> str:
        return self.app_secret or derive_secret(self.seed, "instagram-app-secret")[:32]

    def resolved_meta_app_id(self) -> str:
        """The Meta app's id: Facebook Login's ``client_id`` (an app has both, and people mix them up)."""
        return derive_numeric_id(self.seed, "meta-app-id", 15)

    def resolved_meta_app_secret(self) -> str:
        return derive_secret(self.seed, "meta-app-secret")[:32]


@dataclass
class Switches:
    """Behaviours where Instagram's documentation and its observed behaviour differ, or that flip over time.

    Defaults follow what production clients observe; the alternatives are what the docs describe.
    """

    token_response: str = "flat"  # "flat" (observed) | "data" (documented {"data": [...]})
    me_response: str = "flat"  # "flat" (observed) | "data" (Get-started page {"data": [...]})
    # "whole" | "empty" (pages without items that still carry `next`: documented as possible) | "truncated" (the
    # newest page empty and without `next`, as if the account had no posts; its media_count still says otherwise)
    media_listing: str = "whole"
    account_type_case: str = "upper"  # "upper" (BUSINESS, observed) | "doc" (Business, Media_Creator)
    refresh_token_string: str = "same"  # "same" (observed) | "new" (reference sample)
    old_token_after_refresh: str = "valid"  # "valid" | "revoked" (only meaningful with "new")
    exchange_method: str = "GET"  # accepted method on /access_token: "GET" | "POST" | "both"
    refresh_too_early: str = "error"  # "error" (code 100) | "noop" (same token, remaining life)
    require_https_redirect: bool = True  # Instagram refuses http:// redirect URIs, even for localhost
    auto_consent: bool = False
    auto_consent_account: int = 0
    cdn_url_ttl: int = 3 * 86_400
    cdn_video_url_ttl: int = 86_400  # video URLs die sooner: ~3 days before the images of the same answer, observed
    latency_ms: int = 0
    latency_jitter_ms: int = 0

    CHOICES = {
        "token_response": ("flat", "data"),
        "me_response": ("flat", "data"),
        "media_listing": ("whole", "empty", "truncated"),
        "account_type_case": ("upper", "doc"),
        "refresh_token_string": ("same", "new"),
        "old_token_after_refresh": ("valid", "revoked"),
        "exchange_method": ("GET", "POST", "both"),
        "refresh_too_early": ("error", "noop"),
    }

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown switch {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"switch {name!r} takes true or false")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"switch {name!r} takes a whole number ≥ 0")
            elif value not in self.CHOICES[name]:
                raise ValueError(f"switch {name!r} takes one of {', '.join(self.CHOICES[name])}")
        for name, value in changes.items():
            setattr(self, name, value)

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sandbox:
    config: SandboxConfig
    clock: SandboxClock = field(default_factory=SandboxClock)
    switches: Switches = field(init=False)
    world: World = field(init=False)
    auth: AuthState = field(init=False)
    traffic: Traffic = field(init=False)
    cdn: Cdn = field(init=False)
    pages: Pages = field(init=False)  # Facebook users' Pages and the Instagram accounts linked to them
    hashtags: Hashtags = field(init=False)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        config = self.config
        self.clock = SandboxClock()
        self.switches = Switches(auto_consent=config.auto_consent)
        self.world = World(config.seed, config.accounts, self.clock.now(), dict(config.large_accounts))
        self.auth = AuthState(token_marker=config.token_marker)
        self.pages = Pages(config.seed, self.world)
        self.hashtags = Hashtags(config.seed)
        app = App(
            app_id=config.resolved_app_id(),
            app_secret=config.resolved_app_secret(),
            meta_app_id=config.resolved_meta_app_id(),
            redirect_uris=list(config.redirect_uris),
            meta_app_secret=config.resolved_meta_app_secret(),
        )
        self.auth.apps[app.app_id] = app
        log_size = self.traffic.calls.maxlen if hasattr(self, "traffic") else config.call_log_size
        self.traffic = Traffic(log_size or config.call_log_size, config.seed)
        self.cdn = Cdn(derive_secret(config.seed, "cdn").encode(), self.switches.cdn_url_ttl,
                       self.switches.cdn_video_url_ttl)
        self.started_at = time.time()

    @property
    def default_app(self) -> App:
        return next(iter(self.auth.apps.values()))

    def now(self) -> float:
        return self.clock.now()
