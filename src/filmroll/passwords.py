"""Admin passwords: argon2id hashes, checked in constant time whether the user exists or not.

Below both the services (``filmroll admin create``) and the web tier (sign-in), so neither imports the other. The
dummy hash an unknown username is checked against is made on first use, not at import.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 12
MAX_PASSWORD = 256
HASHER = PasswordHasher()  # argon2id; the library's defaults exceed OWASP's minimum (m=19 MiB, t=2)


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return HASHER.hash(password)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("filmroll-dummy-password-for-timing")


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an absent hash (unknown user) costs the same work, so timing reveals nothing."""
    try:
        HASHER.verify(password_hash or _dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)
