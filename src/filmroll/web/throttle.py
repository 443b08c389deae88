"""The sign-in throttle: who a client is, and how many password checks a username and a client get.

Every attempt is counted before its password is checked, for the username (from every client) and for the client
(over every username), each under its row's lock (``store/throttles.py``): a hundred concurrent guesses check at
most the limit, rotating clients meets the username's limit, rotating usernames the client's. Past a limit each
further attempt doubles the lockout; a successful sign-in ends both. Keys are keyed hashes: neither a username
typed at the sign-in form (a password typed in the wrong field lands there) nor an address is ever stored or logged.

The client is the socket's peer, unless that peer is one of ``FILMROLL_WEB__TRUSTED_PROXIES``: then the nearest
address in ``X-Forwarded-For`` that is not a trusted proxy (everything to its left could be made up by the client).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from starlette.requests import Request

from filmroll.store import throttles
from filmroll.store.database import Database

LONGEST_LOCKOUT = timedelta(days=1)
FORGET_AFTER = timedelta(days=1)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """``FILMROLL_WEB__TRUSTED_PROXIES``: addresses or networks (``10.0.0.0/8``); a ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"FILMROLL_WEB__TRUSTED_PROXIES: {entry[:60]!r} is not an address or network") from None
    return networks


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_of(request: Request, trusted: Sequence[Network]) -> str:
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64] or peer
    return peer


class _Refused(Exception):
    def __init__(self, until: datetime) -> None:
        self.until = until


class SignInThrottle:
    def __init__(self, database: Database, secret: bytes, *, per_account: int, per_client: int,
                 lockout: timedelta) -> None:
        self.database = database
        self._secret = secret
        self.limits = {"account": per_account, "client": per_client}
        self.lockout = lockout

    def _key(self, kind: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:48]}"

    def keys(self, username: str, client: str) -> dict[str, str]:
        return {"account": self._key("account", username.casefold()), "client": self._key("client", client)}

    async def attempt(self, username: str, client: str) -> int | None:
        """Count an attempt; None if its password may be checked, else the seconds until it may be tried."""
        now = self.database.clock.now()
        try:
            async with self.database.transaction() as session:
                for kind, key in self.keys(username, client).items():
                    until = await throttles.take_attempt(session, key, now=now, limit=self.limits[kind],
                                                         lockout=self.lockout, longest=LONGEST_LOCKOUT,
                                                         forget_after=FORGET_AFTER)
                    if until is not None:
                        raise _Refused(until)  # rolls back: a refused attempt counts for neither key
                await throttles.forget(session, before=now - FORGET_AFTER)
        except _Refused as refused:
            return max(1, math.ceil((refused.until - now).total_seconds()))
        return None

    async def succeeded(self, username: str, client: str) -> None:
        async with self.database.transaction() as session:
            await throttles.clear(session, list(self.keys(username, client).values()))
