"""Feeds as things an operator makes: ``filmroll feeds create|list|show|edit|delete`` and the admin UI's feed editor
(with its live preview of unsaved settings).

Every value is checked before anything is written (:class:`FeedSpec`); a bad one raises ``FeedSettingError`` and
changes nothing. What a feed shows is ``service/feed_documents.py``'s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.service import feed_documents, moderation
from filmroll.service.accounts import find
from filmroll.service.feed_documents import Documents, DocumentSettings
from filmroll.store import feed_posts
from filmroll.store import feeds as feed_store
from filmroll.store import sources as source_store
from filmroll.store.database import Database
from filmroll.store.feeds import FeedSourceRow
from filmroll.store.tables import Feed
from filmroll.vocabulary import Moderation, SourceKind

MEDIA_TYPES = ("IMAGE", "VIDEO", "CAROUSEL_ALBUM")
MAX_LIMIT = 100
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_HASHTAG = re.compile(r"\w{1,100}")


@dataclass(frozen=True)
class FeedSpec:
    """A feed's settings, checked. ``accounts`` are references (id, @username or slug), resolved when written, to
    their own sources; ``sources`` are the ids of the feed's other sources (hashtags, other profiles), kept beside."""

    title: str
    slug: str
    accounts: tuple[str, ...]
    post_limit: int = 12
    media_types: tuple[str, ...] = MEDIA_TYPES
    reels: bool = True
    include_hashtags: tuple[str, ...] = ()
    exclude_hashtags: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ("*",)
    hidden: tuple[str, ...] = field(default=())
    pinned: tuple[str, ...] = field(default=())
    sources: tuple[int, ...] = ()
    moderation: str | None = None  # a Moderation; None: approve when a hashtag is among the sources, else open
    block_words: tuple[str, ...] = ()

    def checked(self) -> FeedSpec:
        title = " ".join(self.title.split())
        if not title or len(title) > 200:
            raise errors.FeedSettingError("a feed's title must be 1 to 200 characters")
        if not _SLUG.fullmatch(self.slug):
            raise errors.FeedSettingError(f"{self.slug!r} is not a slug: use 1 to 64 of a-z, 0-9 and '-', not "
                                          "starting or ending with '-'")
        if not self.accounts and not self.sources:
            raise errors.FeedSettingError("a feed needs at least one source (--account @username, --hashtag NAME or "
                                          "--profile USERNAME)")
        if not 1 <= self.post_limit <= MAX_LIMIT:
            raise errors.FeedSettingError(f"the post limit must be 1 to {MAX_LIMIT} (posts per page; 'load more' "
                                          "reaches the rest)")
        types = tuple(dict.fromkeys(t.upper() for t in self.media_types))
        unknown = [t for t in types if t not in MEDIA_TYPES]
        if unknown or not types:
            raise errors.FeedSettingError(f"media types are {', '.join(MEDIA_TYPES)} "
                                          f"(got {', '.join(unknown) or 'none'})")
        if self.moderation is not None and self.moderation not in tuple(Moderation):
            raise errors.FeedSettingError(f"moderation is {' or '.join(Moderation)} (got {self.moderation!r})")
        return replace(self, title=title, media_types=types, block_words=moderation.check_words(self.block_words),
                       include_hashtags=hashtags(self.include_hashtags),
                       exclude_hashtags=hashtags(self.exclude_hashtags),
                       allowed_origins=origins(self.allowed_origins), accounts=tuple(dict.fromkeys(self.accounts)),
                       hidden=tuple(dict.fromkeys(self.hidden)), pinned=tuple(dict.fromkeys(self.pinned)),
                       sources=tuple(dict.fromkeys(self.sources)))


def slug_for(title: str) -> str:
    """A slug from a title: 'Golden Bakery — shop' → 'golden-bakery-shop'."""
    ascii_only = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")[:64].strip("-") or "feed"


def hashtags(values: Sequence[str]) -> tuple[str, ...]:
    """'#Bread', 'bread' and 'BREAD' are one hashtag: Instagram's are case-insensitive."""
    found = []
    for value in values:
        tag = value.strip().lstrip("#").casefold()
        if not _HASHTAG.fullmatch(tag):
            raise errors.FeedSettingError(f"{value!r} is not a hashtag (letters, digits and '_', up to 100)")
        found.append(tag)
    return tuple(dict.fromkeys(found))


# scheme://host[:port] exactly: a DNS name or an IP address, nothing a header could be continued with.
_ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
                     r"|\[[0-9a-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?", re.IGNORECASE)


def origins(values: Sequence[str]) -> tuple[str, ...]:
    """``*`` (any site) or exact origins such as ``https://www.example.org``: what CORS and ``frame-ancestors``
    compare against, so a path, a wildcard host or a trailing slash would never match and is refused."""
    found = []
    for value in values:
        value = value.strip()
        if value == "*":
            found.append(value)
            continue
        exact = _ORIGIN.fullmatch(value)
        if exact is None or not 0 < int(exact["port"] or 443) <= 65535:  # a ";" once reached the embed page's CSP
            raise errors.FeedSettingError(f"{value!r} is not an origin: use '*' or e.g. https://www.example.org "
                                          "(scheme and host, an optional port, no path)")
        found.append(value.lower())
    if not found:
        raise errors.FeedSettingError("a feed needs at least one allowed origin ('*' for any site)")
    if "*" in found and len(found) > 1:
        raise errors.FeedSettingError("'*' already allows every site: give it alone, or only exact origins")
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class FeedInfo:
    """A feed as ``filmroll feeds list|show`` and the admin UI show it."""

    slug: str
    title: str
    accounts: list[str]  # @usernames (the account's id when it has none)
    account_ids: list[int]
    post_limit: int
    media_types: list[str]
    reels: bool
    include_hashtags: list[str]
    exclude_hashtags: list[str]
    allowed_origins: list[str]
    hidden: list[str]
    pinned: list[str]
    changed_at: datetime
    created_at: datetime
    sources: list[str] = field(default_factory=list)  # every source, as people name them (@bakery, #bread)
    source_ids: list[int] = field(default_factory=list)  # the ids of its sources other than its accounts' own
    moderation: str = Moderation.OPEN
    block_words: list[str] = field(default_factory=list)

    def spec(self) -> FeedSpec:
        return FeedSpec(self.title, self.slug, tuple(str(a) for a in self.account_ids), self.post_limit,
                        tuple(self.media_types), self.reels, tuple(self.include_hashtags),
                        tuple(self.exclude_hashtags), tuple(self.allowed_origins), tuple(self.hidden),
                        tuple(self.pinned), tuple(self.source_ids), self.moderation, tuple(self.block_words))


async def create(database: Database, spec: FeedSpec, *, by: str | None = "cli") -> FeedInfo:
    spec = spec.checked()
    source_ids = await _source_ids(database, spec)
    spec = await _with_moderation(database, spec)
    now = database.clock.now()
    async with database.transaction() as session:
        if await feed_store.by_slug(session, spec.slug) is not None:
            raise errors.FeedSettingError(f"there is a feed called {spec.slug!r} already; choose another --slug")
        feed = await feed_store.create(session, values=_values(spec), source_ids=source_ids, now=now)
        await feed_posts.decide(session, feed.id, hidden=spec.hidden, pinned=spec.pinned, by=by, now=now)
    return await show(database, spec.slug)


async def edit(database: Database, slug: str, change: dict[str, object], *, by: str | None = "cli") -> FeedInfo:
    """Change some settings of a feed (keys of :class:`FeedSpec`; ``slug`` renames it); ``by`` is who decided on
    its hidden and pinned posts (an admin's name, ``cli``)."""
    current = (await show(database, slug)).spec()
    spec = replace(current, **change).checked()  # type: ignore[arg-type]
    source_ids = await _source_ids(database, spec)
    spec = await _with_moderation(database, spec)
    now = database.clock.now()
    async with database.transaction() as session:
        feed = await _feed(session, slug)
        if spec.slug != slug and await feed_store.by_slug(session, spec.slug) is not None:
            raise errors.FeedSettingError(f"there is a feed called {spec.slug!r} already")
        await feed_store.update_feed(session, feed.id, _values(spec), now)
        await feed_store.set_sources(session, feed.id, source_ids)
        await feed_posts.decide(session, feed.id, hidden=spec.hidden, pinned=spec.pinned, by=by, now=now)
    return await show(database, spec.slug)


async def hide(database: Database, slug: str, ig_media_id: str, *, hidden: bool = True,
               by: str | None = "cli") -> FeedInfo:
    info = await show(database, slug)
    ids = [i for i in info.hidden if i != ig_media_id] + ([ig_media_id] if hidden else [])
    return await edit(database, slug, {"hidden": tuple(ids)}, by=by)


async def pin(database: Database, slug: str, ig_media_id: str, *, pinned: bool = True,
              by: str | None = "cli") -> FeedInfo:
    """Pin a post first (the latest pinned comes first), or unpin it."""
    info = await show(database, slug)
    ids = ([ig_media_id] if pinned else []) + [i for i in info.pinned if i != ig_media_id]
    return await edit(database, slug, {"pinned": tuple(ids)}, by=by)


async def preview(database: Database, spec: FeedSpec, settings: DocumentSettings) -> Documents:
    """What a feed with these settings would show, saved or not (the admin UI's live preview): the same posts, order
    and pictures its JSON, fragment and widget would have. Writes nothing."""
    spec = spec.checked()
    source_ids = await _source_ids(database, spec)
    spec = await _with_moderation(database, spec)
    now = database.clock.now()
    draft = Feed(**_values(spec), changed_at=now, created_at=now, updated_at=now)  # never added to a session
    async with database.read() as session:  # a saved feed's moderation decisions hold in its preview too
        saved = await feed_store.by_slug(session, spec.slug)
        stored = (await feed_posts.of_feeds(session, [saved.id]))[saved.id] if saved else feed_posts.Decisions()
    decisions = feed_posts.Decisions(spec.hidden, spec.pinned, stored.approved, stored.rejected)
    data = await feed_documents.gather_draft(database, draft, source_ids, decisions, settings)
    return feed_documents.render(data, settings)


async def delete(database: Database, slug: str) -> None:
    async with database.transaction() as session:
        await feed_store.remove(session, (await _feed(session, slug)).id)


async def show(database: Database, slug: str) -> FeedInfo:
    async with database.read() as session:
        feed = await _feed(session, slug)
        decisions = await feed_posts.of_feeds(session, [feed.id])
        return _info(feed, (await feed_store.sources(session, [feed.id]))[feed.id], decisions[feed.id])


async def list_feeds(database: Database) -> list[FeedInfo]:
    async with database.read() as session:
        found = await feed_store.all_feeds(session)
        sources = await feed_store.sources(session, [f.id for f in found])
        decisions = await feed_posts.of_feeds(session, [f.id for f in found])
    return [_info(f, sources[f.id], decisions[f.id]) for f in found]


async def _feed(session: AsyncSession, slug: str) -> Feed:
    feed = await feed_store.by_slug(session, slug)
    if feed is None:
        raise errors.FeedNotFoundError(f"there is no feed {slug!r}; `filmroll feeds list` shows the feeds there are")
    return feed


def _values(spec: FeedSpec) -> dict[str, object]:
    return {"slug": spec.slug, "title": spec.title, "post_limit": spec.post_limit,
            "media_types": list(spec.media_types), "reels": spec.reels,
            "include_hashtags": list(spec.include_hashtags), "exclude_hashtags": list(spec.exclude_hashtags),
            "allowed_origins": list(spec.allowed_origins), "moderation": spec.moderation or Moderation.OPEN,
            "block_words": list(spec.block_words)}


async def _with_moderation(database: Database, spec: FeedSpec) -> FeedSpec:
    """The spec with its moderation decided: as given, else ``approve`` when a hashtag is among its sources (a
    stranger's post never shows before an operator approves it), else ``open``."""
    if spec.moderation is not None:
        return spec
    async with database.read() as session:
        rows = await feed_store.sources_of(session, spec.sources)
    hashtag = any(r.source.kind == SourceKind.HASHTAG for r in rows)
    return replace(spec, moderation=Moderation.APPROVE if hashtag else Moderation.OPEN)


async def _source_ids(database: Database, spec: FeedSpec) -> list[int]:
    """The feed's sources: its accounts' own, in order, then its others (each must exist, and be no account's own:
    those are named by their account)."""
    account_ids = [(await find(database, ref)).id for ref in spec.accounts]
    async with database.read() as session:
        own = await source_store.account_sources(session, account_ids)
        others = await feed_store.sources_of(session, spec.sources)
    missing = sorted(set(spec.sources) - {r.source.id for r in others if r.own_account is None})
    if missing:
        raise errors.FeedSettingError(f"there is no source {missing[0]} to show (`filmroll sources list`); an "
                                      "account's own posts are added with --account")
    return [own[a] for a in account_ids if a in own] + list(spec.sources)


def _info(feed: Feed, rows: Sequence[FeedSourceRow], decisions: feed_posts.Decisions) -> FeedInfo:
    accounts = [a for r in rows if (a := r.own_account) is not None]
    labels = [r.label for r in rows]
    return FeedInfo(feed.slug, feed.title, [f"@{a.username}" if a.username else str(a.id) for a in accounts],
                    [a.id for a in accounts], feed.post_limit, list(feed.media_types), feed.reels,
                    list(feed.include_hashtags), list(feed.exclude_hashtags), list(feed.allowed_origins),
                    list(decisions.hidden), list(decisions.pinned), feed.changed_at, feed.created_at,
                    labels, [r.source.id for r in rows if r.own_account is None], feed.moderation,
                    list(feed.block_words or []))
