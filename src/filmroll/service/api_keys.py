"""Keys for the management API (``/api/v1``): made, checked, listed and revoked.

A key is ``flr_`` + 43 base62 characters (32 random bytes) + a 6-character base62 CRC-32 of them, so that a secret
scanner can recognise one (and a typo is refused before any lookup), as GitHub's tokens do. It is shown once, when it
is made; only its SHA-256 is stored, with a name, a scope (``read``: GET only; ``write``: everything), the first
characters (to tell keys apart in a list) and when it was last used. Several live keys at once make rotation a
create, a deploy and a revoke. No key ever reaches a log, an event or an answer after the first."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from filmroll import errors
from filmroll.store import api_keys as key_store
from filmroll.store import events
from filmroll.store.database import Database
from filmroll.store.tables import ApiKey

PREFIX = "flr_"
SCOPES = ("read", "write")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY, _CHECK = 43, 6  # 62**43 > 2**256; 62**6 > 2**32
_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{_BODY + _CHECK}}}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key and process


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyView:
        return cls(key.id, key.name, key.scope, key.prefix, key.created_at, key.created_by, key.last_used_at,
                   key.revoked_at)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "scope": self.scope, "prefix": self.prefix,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK)


def new_key() -> str:
    body = _base62(int.from_bytes(secrets.token_bytes(32), "big"), _BODY)
    return PREFIX + body + _checksum(body)


def well_formed(key: str) -> bool:
    """The shape and the checksum: what a scanner checks, and what is checked before any lookup."""
    if not _SHAPE.fullmatch(key):
        return False
    body = key[len(PREFIX):len(PREFIX) + _BODY]
    return hmac.compare_digest(key[len(PREFIX) + _BODY:], _checksum(body))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or not name.strip():
        raise errors.InputError("an API key's name is 1 to 64 characters, without control characters")
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise errors.InputError(f"an API key's scope is read or write, not {scope[:20]!r}")
    return scope


async def create(database: Database, name: str, scope: str, *, actor: str | None) -> tuple[ApiKeyView, str]:
    """A new live key: its facts, and the key itself (shown once; filmroll keeps its SHA-256 only)."""
    check_name(name)
    check_scope(scope)
    key = new_key()
    now = database.clock.now()
    async with database.transaction() as session:
        row = await key_store.add(session, name=name, scope=scope, prefix=key[:len(PREFIX) + 8], sha256=digest(key),
                                  created_at=now, created_by=actor)
        await events.record(session, "api_key.created", f"API key {row.id} ({name!r}, {scope}) was created",
                            at=now, actor=actor)
        return ApiKeyView.of(row), key


async def listing(database: Database, *, revoked: bool = False) -> list[ApiKeyView]:
    async with database.read() as session:
        return [ApiKeyView.of(k) for k in await key_store.listing(session, revoked=revoked)]


async def revoke(database: Database, ref: str, *, actor: str | None) -> list[ApiKeyView]:
    """Revoke the live keys ``ref`` names (an id, or a name: every live key of that name)."""
    now = database.clock.now()
    async with database.transaction() as session:
        found = list(await key_store.find(session, ref))
        if not found:
            raise errors.ApiKeyNotFoundError(f"no live API key has the id or name {ref[:64]!r}")
        await key_store.revoke(session, [k.id for k in found], now)
        for key in found:
            await events.record(session, "api_key.revoked", f"API key {key.id} ({key.name!r}) was revoked", at=now,
                                actor=actor)
        return [ApiKeyView.of(k) for k in found]


class KeyChecker:
    """Checks a presented key against the live ones (the shape first, then one indexed lookup of its SHA-256),
    and records when each was last used, at most once a minute."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._written: dict[int, datetime] = {}

    async def check(self, key: str) -> ApiKeyView | None:
        if not well_formed(key):
            return None
        async with self.database.read() as session:
            row = await key_store.live_by_hash(session, digest(key))
        if row is None:
            return None
        now = self.database.clock.now()
        last = self._written.get(row.id)
        if last is None or now - last >= USED_EVERY:
            self._written[row.id] = now
            async with self.database.transaction() as session:
                await key_store.used(session, row.id, now)
        return ApiKeyView.of(row)
