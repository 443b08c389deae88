"""Connect links for agencies: a single-use URL an account owner opens with no admin login, which runs the normal
OAuth flow (Instagram Login or Facebook Login) and leaves the account carrying the agency's ``custom_id``.

    create      POST /api/v1/connect-links, `filmroll connect-link create`: the link (shown once; only its SHA-256
                is kept), its custom id, where the owner lands afterwards (``return_url``: only on an origin the
                operator allowed, FILMROLL_API__RETURN_ORIGINS) and when it expires
    usable      the owner's GET and POST (web/oauth.py): an unknown, used or expired link says which, and nothing
                starts
    attach      in the transaction that stores the connected accounts (service/connect.py): the link is spent
                (a second completion finds it spent and stores nothing), the accounts get the custom id, and an
                ``account.connected`` alert goes to the alert webhook, signed like every alert
    landing     where the owner goes next: the return URL with ``outcome`` (connected, or the error's code),
                ``custom_id`` and, when connected, ``account``
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.store import alerts, events
from filmroll.store import connect_links as link_store
from filmroll.store.database import Database
from filmroll.store.tables import ConnectLink
from filmroll.vocabulary import Provider

DEFAULT_TTL = timedelta(days=7)
LONGEST = timedelta(days=30)
SHORTEST = timedelta(minutes=5)
CONNECTED = "account.connected"  # the alert's type
_CUSTOM_ID = re.compile(r"[A-Za-z0-9._:@+-]{1,100}")


@dataclass(frozen=True)
class ConnectLinkView:
    id: int
    url: str  # shown once, when the link is made
    custom_id: str
    provider: str
    return_url: str | None
    expires_at: datetime

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "url": self.url, "custom_id": self.custom_id, "provider": self.provider,
                "return_url": self.return_url, "expires_at": self.expires_at.isoformat()}


def check_custom_id(custom_id: str) -> str:
    if not _CUSTOM_ID.fullmatch(custom_id):
        raise errors.InputError("a custom id is 1 to 100 letters, digits and . _ : @ + - (your own id for the "
                                "client)")
    return custom_id


def check_return_url(url: str, allowed: Sequence[str]) -> str:
    """``url`` when its origin is one the operator allowed (exactly: scheme, host and port) and it is https (or
    http on this machine); else an InputError naming the setting."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local) or not parts.hostname \
            or parts.username or parts.password or len(url) > 2000:
        raise errors.InputError("return_url must be an https URL (http only on this machine), without credentials")
    if origin not in {a.rstrip("/").lower() for a in allowed}:
        raise errors.InputError(f"return_url's origin {origin} is not allowed: add it to FILMROLL_API__RETURN_ORIGINS "
                                "(a JSON list of origins an owner may be sent back to)")
    return url


async def create(database: Database, *, custom_id: str, provider: str = Provider.INSTAGRAM_LOGIN,
                 return_url: str | None = None, expires_in: timedelta = DEFAULT_TTL, allowed_origins: Sequence[str],
                 public_origin: str, actor: str | None) -> ConnectLinkView:
    check_custom_id(custom_id)
    if provider not in {p.value for p in Provider}:
        raise errors.InputError(f"provider is instagram_login or facebook, not {provider[:20]!r}")
    if return_url is not None:
        check_return_url(return_url, allowed_origins)
    if not SHORTEST <= expires_in <= LONGEST:
        raise errors.InputError("expires_in is between 300 seconds and 30 days")
    secret = secrets.token_urlsafe(32)
    now = database.clock.now()
    async with database.transaction() as session:
        link = await link_store.add(session, secret, custom_id=custom_id, provider=provider, return_url=return_url,
                                    now=now, expires_at=now + expires_in, created_by=actor)
        await events.record(session, "connect_link.created", f"connect link {link.id} made for custom id "
                            f"{custom_id!r} ({provider}), valid until {link.expires_at:%Y-%m-%d %H:%M} UTC",
                            at=now, actor=actor)
    return ConnectLinkView(link.id, f"{public_origin.rstrip('/')}/connect-link?link={secret}", custom_id, provider,
                           return_url, link.expires_at)


async def usable(database: Database, secret: str) -> ConnectLink:
    """The link behind ``secret``, or a CallbackError saying plainly why it cannot be used."""
    async with database.read() as session:
        link = await link_store.find(session, secret[:100]) if secret else None
    if link is None:
        raise errors.CallbackError("This connect link is not known here. Ask whoever sent it for a new one.",
                                   code="unknown_link")
    if link.used_at is not None:
        raise errors.CallbackError("This connect link was already used: the account it connected stays "
                                   "connected. Ask for a new link to connect another.", code="used_link")
    if link.expires_at <= database.clock.now():
        raise errors.CallbackError(f"This connect link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC. Ask for "
                                   "a new one.", code="expired_link")
    return link


async def attach(session: AsyncSession, link_id: int, account_ids: Sequence[int], now: datetime,
                 actor: str | None) -> ConnectLink:
    """Spend the link on the accounts just stored (the caller's transaction: a spent link stores nothing)."""
    link = await session.get(ConnectLink, link_id)
    if link is None or not await link_store.take(session, link_id, account_ids[0], now):
        raise errors.CallbackError("This connect link was used or expired while you signed in; nothing was "
                                   "connected. Ask for a new one.", code="used_link")
    await link_store.label(session, account_ids, link.custom_id)
    for account_id in account_ids:
        await alerts.raise_alert(session, account_id=account_id, kind=CONNECTED,
                                 reason=f"connected through connect link {link.id} (custom id {link.custom_id})",
                                 now=now)
        await events.record(session, "connect_link.used", f"connect link {link.id} connected this account "
                            f"(custom id {link.custom_id!r})", at=now, account_id=account_id, actor=actor)
    return link


def landing(link: ConnectLink, allowed: Sequence[str], *, outcome: str, account: str | None = None) -> str | None:
    """Where the owner goes next, or None (filmroll's own page) when the link names no return URL or its origin is
    no longer allowed."""
    if not link.return_url:
        return None
    try:
        check_return_url(link.return_url, allowed)
    except errors.InputError:
        return None
    said = {"outcome": outcome, "custom_id": link.custom_id, **({"account": account} if account else {})}
    return f"{link.return_url}{'&' if urlsplit(link.return_url).query else '?'}{urlencode(said)}"
