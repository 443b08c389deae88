"""Who may call the sandbox: apps, authorization codes, access tokens and consent-page sessions.

Lifetimes follow Instagram's documented ones: a code lives 1 hour and works once, a short-lived token 1 hour, a
long-lived token 5 183 944 seconds (60 days), and a long-lived token may be refreshed once it is 24 hours old and
until it expires. Revocation by account (password change, app removal, "log out everywhere") is one timestamp per
account rather than a walk over its tokens, so revoking is O(1) whatever the number of tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

CODE_LIFETIME = 3600
SHORT_LIFETIME = 3600
LONG_LIFETIME = 5_183_944
REFRESH_MIN_AGE = 86_400
PENDING_LIFETIME = 3600

# Graph subcodes for a dead token (reference §2.3)
APP_REMOVED = 458
PASSWORD_CHANGED = 460
EXPIRED = 463
LOGGED_OUT = 467
DATA_ACCESS_EXPIRED = 493  # Facebook: the user has not re-consented in 90 days
DATA_ACCESS_LIFETIME = 90 * 86_400
REVOCATION_REASONS = {"app_removed": APP_REMOVED, "password_changed": PASSWORD_CHANGED, "revoked": LOGGED_OUT}



@dataclass(slots=True)
class App:
    app_id: str
    app_secret: str
    meta_app_id: str  # the Meta (Facebook) app id people confuse with the Instagram app id
    redirect_uris: list[str]
    meta_app_secret: str = ""  # the Meta app's secret: Facebook Login's code exchange and app token
    name: str = "filmroll sandbox app"


@dataclass(slots=True)
class Code:
    value: str
    app_id: str
    account: int
    redirect_uri: str
    permissions: tuple[str, ...]
    issued_at: float
    used: bool = False
    provider: str = "instagram"  # "facebook": a Facebook Login code, exchanged on graph.facebook.com


@dataclass(slots=True)
class Token:
    value: str
    app_id: str
    account: int
    kind: str  # "short" | "long"
    permissions: tuple[str, ...]
    issued_at: float
    expires_at: float
    revoked: int | None = None  # a Graph subcode once revoked
    # "instagram" (an Instagram Login token: one IG account, ``account``) or "facebook" (a Facebook user token:
    # ``account`` is the Facebook user, known by the IG account they sign in with; it reads their Pages' accounts)
    provider: str = "instagram"


@dataclass(slots=True)
class PendingAuthorization:
    """An authorize request waiting for the owner's Allow/Cancel on the consent page."""

    id: str
    app_id: str
    redirect_uri: str
    permissions: tuple[str, ...]
    state: str | None
    created_at: float


@dataclass
class AuthState:
    token_marker: str = ""
    apps: dict[str, App] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)  # consent-page login cookie -> account
    revoked_before: dict[tuple[str, int], tuple[float, int]] = field(default_factory=dict)
    fb_sessions: dict[str, int] = field(default_factory=dict)  # the Facebook dialog's login cookie -> user
    # (app id, Facebook user) -> when the app's data access ends: 90 days after the user last consented
    data_access: dict[tuple[str, int], float] = field(default_factory=dict)

    def new_token_value(self, provider: str = "instagram") -> str:
        body = secrets.token_urlsafe(105).replace("-", "Z").replace("_", "A")  # alphanumeric, like Instagram's
        # Real tokens are ~180 alphanumerics starting IGAA (Facebook's EAA); the marker lets canary tests find leaks.
        return ("EAA" if provider == "facebook" else "IGAA") + self.token_marker + body

    def issue_code(self, app_id: str, account: int, redirect_uri: str, permissions: tuple[str, ...],
                   now: float, *, provider: str = "instagram") -> Code:
        code = Code("AQ" + secrets.token_urlsafe(120), app_id, account, redirect_uri, permissions, now,
                    provider=provider)
        self.codes[code.value] = code
        return code

    def issue_token(self, app_id: str, account: int, kind: str, permissions: tuple[str, ...],
                    issued_at: float, *, provider: str = "instagram") -> Token:
        lifetime = SHORT_LIFETIME if kind == "short" else LONG_LIFETIME
        token = Token(self.new_token_value(provider), app_id, account, kind, permissions, issued_at,
                      issued_at + lifetime, provider=provider)
        self.tokens[token.value] = token
        return token

    def consented(self, app_id: str, user: int, now: float) -> None:
        """A Facebook user went through the dialog: the app's data access runs 90 days from now."""
        self.data_access[(app_id, user)] = now + DATA_ACCESS_LIFETIME

    def data_access_expires_at(self, token: Token) -> float | None:
        if token.provider != "facebook":
            return None
        return self.data_access.get((token.app_id, token.account), token.issued_at + DATA_ACCESS_LIFETIME)

    def dead_reason(self, token: Token, now: float) -> int | None:
        """The Graph subcode that kills this token now, or None if it works."""
        if token.revoked is not None:
            return token.revoked
        cutoff = self.revoked_before.get((token.app_id, token.account))
        if cutoff is not None and token.issued_at <= cutoff[0]:
            return cutoff[1]
        if now >= token.expires_at:
            return EXPIRED
        data_access = self.data_access_expires_at(token)
        if data_access is not None and now >= data_access:
            return DATA_ACCESS_EXPIRED
        return None

    def revoke_account(self, app_id: str, account: int, subcode: int, now: float) -> None:
        self.revoked_before[(app_id, account)] = (now, subcode)

    def new_pending(self, app_id: str, redirect_uri: str, permissions: tuple[str, ...], state: str | None,
                    now: float) -> PendingAuthorization:
        for key in [k for k, p in self.pending.items() if now - p.created_at > PENDING_LIFETIME]:
            del self.pending[key]
        pending = PendingAuthorization(secrets.token_urlsafe(24), app_id, redirect_uri, permissions, state, now)
        self.pending[pending.id] = pending
        return pending


def derive_secret(seed: int, purpose: str) -> str:
    """Deterministic per-seed credentials, so a demo's printed app id and secret stay the same run to run."""
    return hmac.new(f"filmroll-sandbox-{seed}".encode(), purpose.encode(), hashlib.sha256).hexdigest()


def derive_numeric_id(seed: int, purpose: str, digits: int = 16) -> str:
    n = int(derive_secret(seed, purpose), 16) % 10 ** (digits - 1)
    return str(10 ** (digits - 1) + n)[:digits]
