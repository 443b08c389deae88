"""Instagram-shaped identifiers that map back to what they name without any lookup table.

A hundred thousand accounts and their media exist only as numbers until someone asks for them. Each id is an affine
permutation of a small index, keyed by the seed: it looks random (like Instagram's), never collides, and inverts in
O(1), so `/17841400123456789/media` finds its account without storing anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

IG_USER_PREFIX = 17841400000000000  # professional-account ids start 1784…, as on Instagram
IG_USER_SPACE = 10**10
SCOPED_PREFIX = 27000000000000000  # app-scoped ids (`/me` `id`, token-exchange `user_id`)
SCOPED_SPACE = 10**15
MEDIA_PREFIX = 17900000000000000
MEDIA_SPACE = 10**14
CHILD_PREFIX = 17800000000000000
CHILD_SPACE = 10**14
ADDED_MEDIA_PREFIX = 18100000000000000  # media added through the control API, numbered in order
MEDIA_PER_ACCOUNT = 100_000
CHILDREN_PER_ALBUM = 10


def mix64(*parts: int) -> int:
    """A fast, well-spread 64-bit hash of a few integers (splitmix64 finaliser)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


@dataclass(frozen=True, slots=True)
class _Permutation:
    prefix: int
    space: int
    multiplier: int
    offset: int
    inverse: int

    @classmethod
    def keyed(cls, prefix: int, space: int, seed: int, purpose: str) -> _Permutation:
        digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
        multiplier = int.from_bytes(digest[:8], "big") % space
        # Coprime with a power of ten: odd and not a multiple of five.
        multiplier |= 1
        if multiplier % 5 == 0:
            multiplier += 2
        offset = int.from_bytes(digest[8:16], "big") % space
        return cls(prefix, space, multiplier, offset, pow(multiplier, -1, space))

    def encode(self, index: int) -> str:
        return str(self.prefix + (self.multiplier * index + self.offset) % self.space)

    def decode(self, value: str) -> int | None:
        if not value.isdigit() or len(value) > 20:
            return None
        n = int(value) - self.prefix
        if not 0 <= n < self.space:
            return None
        return (n - self.offset) * self.inverse % self.space


class IdScheme:
    """Every id family of one sandbox world."""

    def __init__(self, seed: int) -> None:
        self.ig_user = _Permutation.keyed(IG_USER_PREFIX, IG_USER_SPACE, seed, "ig-user")
        self.scoped = _Permutation.keyed(SCOPED_PREFIX, SCOPED_SPACE, seed, "scoped")
        self.media = _Permutation.keyed(MEDIA_PREFIX, MEDIA_SPACE, seed, "media")
        self.child = _Permutation.keyed(CHILD_PREFIX, CHILD_SPACE, seed, "child")

    def media_id(self, account: int, position: int) -> str:
        return self.media.encode(account * MEDIA_PER_ACCOUNT + position)

    def media_index(self, media_id: str) -> tuple[int, int] | None:
        n = self.media.decode(media_id)
        return None if n is None else divmod(n, MEDIA_PER_ACCOUNT)

    def child_id(self, parent: int, child: int) -> str:
        return self.child.encode(parent * CHILDREN_PER_ALBUM + child)

    def child_index(self, child_id: str) -> tuple[int, int] | None:
        n = self.child.decode(child_id)
        return None if n is None else divmod(n, CHILDREN_PER_ALBUM)
