"""The sandbox's Instagram content: accounts and their media, generated lazily from the seed.

Nothing is stored for an account until the control API changes it. Account *i* and its *j*-th newest post are pure
functions of ``(seed, i, j)``; edits, additions and deletions sit in small overlays on top. A timeline (the ordered
media keys of one account) is built on demand and kept in a bounded LRU cache, invalidated by a per-account version.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from filmroll.sandbox.ids import ADDED_MEDIA_PREFIX, IdScheme, mix64

MEDIA_CAP = 10_000  # `/media` exposes only the 10 000 most recent items
_TIMELINE_CACHE = 4096
_ACCOUNT_CACHE = 16_384

_ADJECTIVES = (
    "golden", "quiet", "northern", "salt", "amber", "copper", "wild", "little", "silver", "harbor", "morning",
    "paper", "linen", "cedar", "lunar", "velvet", "maple", "coral", "misty", "urban", "rustic", "bright", "hidden",
    "sunny", "indigo", "frosty", "stone", "willow", "crimson", "olive",
)
_NOUNS = (
    "bakery", "studio", "atelier", "garden", "cafe", "gallery", "roastery", "bikes", "ceramics", "florist",
    "bookshop", "kitchen", "workshop", "library", "college", "trails", "records", "press", "market", "yoga",
    "theatre", "brewery", "surf", "pottery", "tailor", "museum", "cinema", "orchard", "climbing", "choir",
)
_CAPTION_WORDS = (
    "new", "season", "today", "fresh", "behind", "the", "scenes", "our", "team", "open", "late", "weekend",
    "spring", "autumn", "light", "morning", "coffee", "hand", "made", "limited", "edition", "thank", "you",
    "friends", "community", "studio", "visit", "soon", "🌿", "✨", "☕", "#local", "#handmade", "#instagood",
)


@dataclass(slots=True)
class Account:
    index: int
    ig_id: str
    scoped_id: str
    username: str
    name: str
    account_type: str
    followers_count: int
    follows_count: int
    generated_media: int
    post_spacing: int
    biography: str
    password: str = "password"  # every sandbox account logs in with this unless changed


@dataclass(slots=True)
class Child:
    id: str
    parent_id: str
    media_type: str
    timestamp: int


@dataclass(slots=True)
class Media:
    id: str
    account: int
    timestamp: int
    media_type: str
    product_type: str
    caption: str | None
    like_count: int
    comments_count: int
    shortcode: str
    is_comment_enabled: bool
    alt_text: str | None
    copyrighted: bool
    before_conversion: bool
    is_shared_to_feed: bool | None
    children: list[Child] = field(default_factory=list)


@dataclass(slots=True)
class Timeline:
    """One account's media, newest first, as sortable keys ``(-timestamp, -id)``."""

    version: int
    keys: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.keys)

    def position_after(self, key: tuple[int, int]) -> int:
        return bisect.bisect_right(self.keys, key)

    def position_before(self, key: tuple[int, int]) -> int:
        return bisect.bisect_left(self.keys, key)


def _shortcode(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "C" + "".join(alphabet[(n >> (6 * k)) & 63] for k in range(10))


class World:
    """Accounts and media of one seed, with the control API's changes layered on top."""

    def __init__(self, seed: int, account_count: int, anchor: float, large_accounts: dict[int, int]) -> None:
        self.seed = seed
        self.account_count = account_count
        self.anchor = int(anchor)
        self.ids = IdScheme(seed)
        self._large = dict(large_accounts)
        self._profile_edits: dict[int, dict[str, Any]] = {}
        self._usernames: dict[str, int] = {}
        self._media_edits: dict[str, dict[str, Any]] = {}
        self._deleted: set[str] = set()
        self._added: dict[int, dict[str, Media]] = {}
        self._added_children: dict[str, Child] = {}
        self._next_added = 0
        self._versions: dict[int, int] = {}
        self._timelines: OrderedDict[int, Timeline] = OrderedDict()
        self._accounts: OrderedDict[int, Account] = OrderedDict()

    # ----- accounts ---------------------------------------------------------------------------------------

    def account(self, index: int) -> Account | None:
        cached = self._accounts.get(index)
        if cached is not None:
            return cached
        account = self._build_account(index)
        if account is not None:
            self._accounts[index] = account
            if len(self._accounts) > _ACCOUNT_CACHE:
                self._accounts.popitem(last=False)
        return account

    def _build_account(self, index: int) -> Account | None:
        if not 0 <= index < self.account_count:
            return None
        h = mix64(self.seed, index, 0xACC)
        adjective, noun = _ADJECTIVES[h % len(_ADJECTIVES)], _NOUNS[(h >> 8) % len(_NOUNS)]
        media = self._large.get(index)
        if media is None:
            media = 0 if (h >> 16) % 33 == 0 else 1 + (h >> 24) % 80
        account = Account(
            index=index,
            ig_id=self.ids.ig_user.encode(index),
            scoped_id=self.ids.scoped.encode(index),
            username=f"{adjective}_{noun}{index if index else ''}",
            name=f"{adjective.title()} {noun.title()}",
            account_type="MEDIA_CREATOR" if (h >> 32) % 3 == 0 else "BUSINESS",
            followers_count=int(10 ** (1 + ((h >> 36) % 5000) / 1000)),
            follows_count=(h >> 50) % 2000,
            generated_media=media,
            post_spacing=3600 * (6 + (h >> 40) % 114),
            biography=f"{adjective.title()} {noun} — sandbox account #{index}",
        )
        edits = self._profile_edits.get(index)
        return replace(account, **edits) if edits else account

    def account_by_ig_id(self, ig_id: str) -> Account | None:
        index = self.ids.ig_user.decode(ig_id)
        return None if index is None else self.account(index)

    def account_by_scoped_id(self, scoped_id: str) -> Account | None:
        index = self.ids.scoped.decode(scoped_id)
        return None if index is None else self.account(index)

    def account_by_username(self, username: str) -> Account | None:
        if username in self._usernames:
            return self.account(self._usernames[username])
        digits = len(username) - len(username.rstrip("0123456789"))
        index = int(username[-digits:]) if digits and digits < 10 else 0
        account = self.account(index)
        return account if account is not None and account.username == username else None

    def edit_account(self, index: int, changes: dict[str, Any]) -> Account:
        account = self.account(index)
        if account is None:
            raise KeyError(index)
        if "username" in changes:
            taken = self.account_by_username(changes["username"])
            if taken is not None and taken.index != index:
                raise ValueError(f"username {changes['username']!r} is taken")
            self._usernames.pop(account.username, None)
            self._usernames[changes["username"]] = index
        self._profile_edits.setdefault(index, {}).update(changes)
        self._accounts.pop(index, None)
        return self.account(index)  # type: ignore[return-value]

    def media_count(self, index: int) -> int:
        if index not in self._versions:  # untouched by the control API: no need to build the timeline
            account = self.account(index)
            return 0 if account is None else account.generated_media
        return len(self.timeline(index))

    # ----- media ------------------------------------------------------------------------------------------

    def _generated_timestamp(self, account: Account, position: int) -> int:
        jitter = mix64(self.seed, account.index, position, 7) % (account.post_spacing // 2)
        return self.anchor - 3600 - position * account.post_spacing - jitter

    def _generate(self, account: Account, position: int) -> Media:
        h = mix64(self.seed, account.index, position, 0xED1A)
        media_id = self.ids.media_id(account.index, position)
        roll = h % 100
        media_type = "IMAGE" if roll < 58 else "VIDEO" if roll < 75 else "CAROUSEL_ALBUM"
        product_type = "REELS" if media_type == "VIDEO" and (h >> 8) % 3 else "FEED"
        words = [_CAPTION_WORDS[(h >> (5 * k)) % len(_CAPTION_WORDS)] for k in range(3 + (h >> 52) % 8)]
        timestamp = self._generated_timestamp(account, position)
        media = Media(
            id=media_id,
            account=account.index,
            timestamp=timestamp,
            media_type=media_type,
            product_type=product_type,
            caption=None if (h >> 12) % 10 == 0 else " ".join(words).capitalize(),
            like_count=(h >> 20) % 500,
            comments_count=(h >> 30) % 40,
            shortcode=_shortcode(h),
            is_comment_enabled=(h >> 35) % 15 != 0,
            alt_text=None if (h >> 44) % 3 else "A photo from the sandbox",
            copyrighted=media_type == "VIDEO" and (h >> 16) % 20 == 0,
            before_conversion=(h >> 40) % 50 == 0,
            is_shared_to_feed=bool((h >> 46) % 4) if product_type == "REELS" else None,
        )
        if media_type == "CAROUSEL_ALBUM":
            parent = account.index * 100_000 + position
            media.children = [
                Child(
                    id=self.ids.child_id(parent, k),
                    parent_id=media_id,
                    media_type="VIDEO" if mix64(h, k) % 5 == 0 else "IMAGE",
                    timestamp=timestamp,
                )
                for k in range(2 + (h >> 36) % 9)
            ]
        return media

    def media(self, media_id: str) -> Media | None:
        if media_id in self._deleted:
            return None
        for added in self._added.values():
            if media_id in added:
                return self._with_edits(added[media_id])
        located = self.ids.media_index(media_id)
        if located is None:
            return None
        account_index, position = located
        account = self.account(account_index)
        if account is None or position >= account.generated_media:
            return None
        return self._with_edits(self._generate(account, position))

    def child(self, child_id: str) -> Child | None:
        if child_id in self._added_children:
            child = self._added_children[child_id]
            return child if child.parent_id not in self._deleted else None
        located = self.ids.child_index(child_id)
        if located is None:
            return None
        parent, _k = located
        parent_media = self.media(self.ids.media_id(*divmod(parent, 100_000)))
        if parent_media is None:
            return None
        return next((c for c in parent_media.children if c.id == child_id), None)

    def _with_edits(self, media: Media) -> Media:
        edits = self._media_edits.get(media.id)
        return replace(media, **edits) if edits else media

    def timeline(self, index: int) -> Timeline:
        version = self._versions.get(index, 0)
        cached = self._timelines.get(index)
        if cached is not None and cached.version == version:
            self._timelines.move_to_end(index)
            return cached
        account = self.account(index)
        keys: list[tuple[int, int]] = []
        if account is not None:
            for position in range(account.generated_media):
                media_id = self.ids.media_id(index, position)
                if media_id not in self._deleted:
                    keys.append((-self._generated_timestamp(account, position), -int(media_id)))
            added = self._added.get(index)
            if added:
                keys.extend((-m.timestamp, -int(m.id)) for m in added.values() if m.id not in self._deleted)
                keys.sort()
        timeline = Timeline(version, keys)
        self._timelines[index] = timeline
        if len(self._timelines) > _TIMELINE_CACHE:
            self._timelines.popitem(last=False)
        return timeline

    def _touch(self, index: int) -> None:
        self._versions[index] = self._versions.get(index, 0) + 1

    def add_media(self, index: int, *, timestamp: int, media_type: str, product_type: str, caption: str | None,
                  children: list[str], copyrighted: bool = False) -> Media:
        if self.account(index) is None:
            raise KeyError(index)
        self._next_added += 1
        media_id = str(ADDED_MEDIA_PREFIX + self._next_added * 16)
        media = Media(
            id=media_id, account=index, timestamp=timestamp, media_type=media_type, product_type=product_type,
            caption=caption, like_count=0, comments_count=0, shortcode=_shortcode(int(media_id)),
            is_comment_enabled=True, alt_text=None, copyrighted=copyrighted, before_conversion=False,
            is_shared_to_feed=True if product_type == "REELS" else None,
        )
        for k, child_type in enumerate(children):
            child = Child(id=str(int(media_id) + k + 1), parent_id=media_id, media_type=child_type,
                          timestamp=timestamp)
            media.children.append(child)
            self._added_children[child.id] = child
        self._added.setdefault(index, {})[media_id] = media
        self._touch(index)
        return media

    def edit_media(self, media_id: str, changes: dict[str, Any]) -> Media:
        media = self.media(media_id)
        if media is None:
            raise KeyError(media_id)
        self._media_edits.setdefault(media_id, {}).update(changes)  # never the timestamp: timelines stay sorted
        return self.media(media_id)  # type: ignore[return-value]

    def delete_media(self, media_id: str) -> Media:
        media = self.media(media_id)
        if media is None:
            raise KeyError(media_id)
        self._deleted.add(media_id)
        self._touch(media.account)
        return media

    def media_at(self, index: int, key: tuple[int, int]) -> Media:
        media = self.media(str(-key[1]))
        assert media is not None, "timeline keys always name live media"
        return media
