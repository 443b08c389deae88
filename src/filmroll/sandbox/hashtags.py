"""The sandbox's hashtags: their static ids, the public posts that carry them, and the 30-tags-a-week quota.

A hashtag's id is a pure function of its name (lower case, no ``#``), the same for every app, user and seed, as on
Instagram (hashtag reference §2.1). Each tag has a stream of public posts by strangers: post *k* of tag *t* is a pure
function of ``(seed, t, k)`` at a steady rate of its own (``posts_per_day``; 0 silences it), so time moving on brings
new posts without anything stored; the control API adds posts on top. Nothing about a post's author is kept: the
hashtag edges never answer it.

The quota keeps, per querying IG account, when each tag was first queried; a tag counts for 7 days from then, and a
query of a tag already counted neither counts again nor restarts its 7 days (§2.5).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from filmroll.sandbox.ids import mix64

HASHTAG_ID_PREFIX = 17843000000000000
ADDED_HASHTAG_MEDIA_PREFIX = 18200000000000000
QUOTA_TAGS = 30
QUOTA_WINDOW = 7 * 86_400
RECENT_WINDOW = 86_400  # recent_media: only posts from the last 24 hours
TOP_WINDOW = 7 * 86_400  # top_media ranks the posts of the last week
MAX_NAME = 100
_WORDS = ("sunday", "light", "morning", "fresh", "market", "friends", "city", "colour", "weekend", "slow", "made",
          "local", "happy", "good", "walk", "view", "table", "summer", "rain", "🌿", "✨", "📷")


def normalize(name: str) -> str:
    return name.strip().removeprefix("#").lower()


def valid_name(name: str) -> bool:
    """What Instagram finds: letters, digits and underscores (any script), not only digits; no spaces, no emoji."""
    return 0 < len(name) <= MAX_NAME and all(c.isalnum() or c == "_" for c in name) and not name.isdigit()


def hashtag_id(name: str) -> str:
    digest = int.from_bytes(hashlib.sha256(normalize(name).encode()).digest()[:8], "big")
    return str(HASHTAG_ID_PREFIX + digest % 10**12)


@dataclass(slots=True, frozen=True)
class TagChild:
    id: str
    media_type: str


@dataclass(slots=True, frozen=True)
class TagMedia:
    """A public post found through a hashtag: no author is ever told."""

    id: str
    tag: str
    timestamp: int
    media_type: str
    caption: str | None
    like_count: int
    comments_count: int
    shortcode: str
    children: tuple[TagChild, ...] = ()

    @property
    def key(self) -> tuple[int, int]:  # newest first
        return (-self.timestamp, -int(self.id))


@dataclass(slots=True)
class Tag:
    name: str
    posts_per_day: int
    blocked: bool = False
    added: list[TagMedia] = field(default_factory=list)


class Hashtags:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tags: dict[str, Tag] = {}
        self._by_id: dict[str, str] = {}
        self._next_added = 0
        self.ledger: dict[str, dict[str, float]] = {}  # IG user id -> hashtag id -> first queried at
        self.cursors: dict[tuple[str, str], int] = {}  # a hashtag query's one cursor value -> posts served so far

    # ----- tags ---------------------------------------------------------------------------------------------------

    def tag(self, name: str) -> Tag:
        """The tag of this name, made known (its id resolvable) from now on."""
        name = normalize(name)
        found = self._tags.get(name)
        if found is None:
            h = mix64(self.seed, int(hashtag_id(name)))
            found = self._tags[name] = Tag(name, posts_per_day=4 + h % 45)
            self._by_id[hashtag_id(name)] = name
        return found

    def by_id(self, tag_id: str) -> Tag | None:
        name = self._by_id.get(tag_id)
        return None if name is None else self._tags[name]

    def known(self) -> list[Tag]:
        return list(self._tags.values())

    # ----- posts --------------------------------------------------------------------------------------------------

    def _generated(self, tag: Tag, k: int) -> TagMedia:
        tag_number = int(hashtag_id(tag.name))
        h = mix64(self.seed, tag_number, k, 0x7A6)
        spacing = 86_400 / tag.posts_per_day
        timestamp = int((k + (h % 1000) / 1000 * 0.8) * spacing)
        roll = h % 100
        media_type = "IMAGE" if roll < 70 else "VIDEO" if roll < 82 else "CAROUSEL_ALBUM"
        media_id = str(18000000000000000 + mix64(tag_number, k, self.seed) % 10**15)
        words = [_WORDS[(h >> (5 * n)) % len(_WORDS)] for n in range(2 + (h >> 40) % 6)]
        children: tuple[TagChild, ...] = ()
        if media_type == "CAROUSEL_ALBUM":
            children = tuple(TagChild(str(int(media_id) + 10**16 + n), "VIDEO" if (h >> n) % 6 == 0 else "IMAGE")
                             for n in range(2 + (h >> 20) % 4))
        return TagMedia(media_id, tag.name, timestamp, media_type,
                        " ".join(words).capitalize() + f" #{tag.name}" if (h >> 12) % 9 else None,
                        like_count=(h >> 24) % 900, comments_count=(h >> 34) % 60, shortcode=_shortcode(h),
                        children=children)

    def posts(self, tag: Tag, since: float, until: float) -> list[TagMedia]:
        """Every post of ``tag`` published in (since, until], newest first."""
        found = [m for m in tag.added if since < m.timestamp <= until]
        if tag.posts_per_day > 0:
            spacing = 86_400 / tag.posts_per_day
            for k in range(math.floor(since / spacing) - 1, math.floor(until / spacing) + 1):
                media = self._generated(tag, k)
                if since < media.timestamp <= until:
                    found.append(media)
        found.sort(key=lambda m: m.key)
        return found

    def add(self, tag: Tag, *, timestamp: int, media_type: str, caption: str | None,
            children: list[str]) -> TagMedia:
        self._next_added += 1
        media_id = str(ADDED_HASHTAG_MEDIA_PREFIX + self._next_added * 16)
        media = TagMedia(media_id, tag.name, timestamp, media_type, caption, like_count=0, comments_count=0,
                         shortcode=_shortcode(int(media_id)),
                         children=tuple(TagChild(str(int(media_id) + n + 1), kind)
                                        for n, kind in enumerate(children)))
        tag.added.append(media)
        return media

    # ----- the quota ----------------------------------------------------------------------------------------------

    def charge(self, ig_user_id: str, tag_id: str, now: float) -> float | None:
        """Count a query of ``tag_id`` by this IG account. None when allowed; else when the oldest tag frees."""
        ledger = self.searched(ig_user_id, now)
        if tag_id in ledger:
            return None
        if len(ledger) >= QUOTA_TAGS:
            return min(ledger.values()) + QUOTA_WINDOW
        ledger[tag_id] = now
        return None

    def searched(self, ig_user_id: str, now: float) -> dict[str, float]:
        """The tags this account queried in the last 7 days (the expired ones forgotten)."""
        ledger = self.ledger.setdefault(ig_user_id, {})
        for tag_id in [t for t, at in ledger.items() if now - at >= QUOTA_WINDOW]:
            del ledger[tag_id]
        return ledger


def _shortcode(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "D" + "".join(alphabet[(n >> (6 * k)) & 63] for k in range(10))
