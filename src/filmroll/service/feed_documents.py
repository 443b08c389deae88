"""What a feed says: its posts gathered from the database (:func:`gather`), then rendered, once per change, into
the public JSON schema (``"version": 1``, docs/feeds.md), an HTML fragment and an embed page (:func:`render`).

Every picture URL is on filmroll's origin (or ``base_url``): a visitor's browser never asks Instagram for anything.
Variants are named by ``pictures.ladder`` before they are made; ``/media/…`` makes a missing one on first request.
Pages follow each other by cursor: ``next`` is ``/feeds/{slug}/after-{id}.json``, a path, so that the same bytes
work from ``filmroll serve`` and from a directory ``filmroll publish`` wrote for nginx or a CDN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.service import moderation
from filmroll.service.pictures import ladder
from filmroll.storage.keys import variant_key
from filmroll.store import feed_posts
from filmroll.store import feeds as feed_store
from filmroll.store.database import Database
from filmroll.store.feeds import FeedSourceRow
from filmroll.store.tables import Account, Feed, MediaChild, MediaFile, MediaItem
from filmroll.vocabulary import AccountStatus, FileRole, PostState, SourceKind

SCHEMA_VERSION = 1
_HASHTAG = re.compile(r"(?<![\w&])#(\w+)")
_USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9._]{1,30})(?<!\.)")
_TRAILING_TAGS = re.compile(r"(?:[\s.·•|]*(?:#\w+|@[A-Za-z0-9._]+))+[\s.·•|]*\Z")
ASSETS = Path(__file__).parent / "feed_assets"  # the templates, stylesheet and widget feeds are made of
STYLESHEET = ASSETS / "feed.css"  # the fragment's look, served at /feeds/feed.css and published beside it
WIDGET = ASSETS / "widget.js"  # <filmroll-feed>, served at /widget.js and published beside the feeds


@dataclass(frozen=True)
class DocumentSettings:
    widths: tuple[int, ...]
    formats: tuple[str, ...]
    dead_account_days: float  # how long a source that must sign in again keeps its posts in its feeds
    max_posts: int  # the most posts 'load more' reaches
    revoked_posts: bool = True  # whether an account its owner removed the app from keeps showing its last posts


@dataclass(frozen=True)
class FeedData:
    """Everything one rendering of a feed reads, read in one transaction."""

    feed: Feed
    sources: list[FeedSourceRow]
    posts: list[MediaItem]  # filtered and ordered: pinned first, then newest first (the feed's decisions applied)
    children: dict[int, list[MediaChild]]
    files: dict[tuple[int, str], list[MediaFile]]  # (source id, Instagram id) -> originals, posters, videos
    now: datetime

    @property
    def accounts(self) -> list[Account]:
        """The accounts whose own posts the feed shows (its header's)."""
        return [a for row in self.sources if (a := row.own_account) is not None]


async def gather(database: Database, slug: str, settings: DocumentSettings) -> FeedData | None:
    async with database.read() as session:
        feed = await feed_store.by_slug(session, slug)
        if feed is None:
            return None
        sources = (await feed_store.sources(session, [feed.id]))[feed.id]
        decisions = (await feed_posts.of_feeds(session, [feed.id]))[feed.id]
        return await _gather(session, feed, sources, decisions, database.clock.now(), settings)


async def gather_draft(database: Database, feed: Feed, source_ids: Sequence[int], decisions: feed_posts.Decisions,
                       settings: DocumentSettings) -> FeedData:
    """What a feed with these (unsaved) settings and decisions would show: the admin UI's live preview. ``feed`` is
    a row that is never added to a session."""
    async with database.read() as session:
        sources = await feed_store.sources_of(session, source_ids)
        return await _gather(session, feed, sources, decisions, database.clock.now(), settings)


async def _gather(session: AsyncSession, feed: Feed, sources: list[FeedSourceRow], decisions: feed_posts.Decisions,
                  now: datetime, settings: DocumentSettings) -> FeedData:
    shown = [row.source.id for row in sources if _shows_posts(row, now, settings)]
    rows = await feed_store.live_posts(session, shown, limit=settings.max_posts + len(decisions.hidden) + 200)
    others = frozenset(row.source.id for row in sources if row.source.kind != SourceKind.ACCOUNT)
    posts = select_posts(feed, decisions, rows, others)[: settings.max_posts]
    children = await feed_store.children(session, [p.id for p in posts])
    ids = [p.ig_media_id for p in posts] + [c.ig_media_id for cs in children.values() for c in cs] + [""]
    files = await feed_store.originals(session, shown, ids)
    return FeedData(feed, sources, posts, children, files, now)


def _shows_posts(row: FeedSourceRow, now: datetime, settings: DocumentSettings) -> bool:
    """A source shows its posts as its account stands (one that needs no account: always). An account an operator
    disconnected shows nothing; one its owner revoked keeps its last good posts (with its status) unless the setting
    says otherwise, until retention deletes it; one that must sign in again keeps them for ``dead_account_days``
    after it went stale."""
    account = row.account
    if account is None or account.status == AccountStatus.ACTIVE:
        return True
    if account.status == AccountStatus.REVOKED:
        return settings.revoked_posts
    if account.status == AccountStatus.NEEDS_REAUTH:
        since = row.source.stale_since or account.updated_at
        return now - since <= timedelta(days=settings.dead_account_days)
    return False


def select_posts(feed: Feed, decisions: feed_posts.Decisions, rows: Sequence[MediaItem],
                 others: frozenset[int] = frozenset()) -> list[MediaItem]:
    """The feed's filters, its hidden posts and its moderation, then its pinned posts first (in their order), then
    the rest newest first. ``others``: the sources of other people's posts (hashtags, profiles): with moderation
    ``approve``, only their approved posts show."""
    hidden = set(decisions.hidden)
    include, exclude = set(feed.include_hashtags), set(feed.exclude_hashtags)
    kept = []
    for post in rows:
        if post.ig_media_id in hidden or (post.media_type or "IMAGE") not in feed.media_types:
            continue
        if moderation.state(feed, decisions, post, post.source_id in others) != PostState.APPROVED:
            continue
        if not feed.reels and post.media_product_type == "REELS":
            continue
        tags = {t.casefold() for t in hashtags(post.caption)}
        if (include and not tags & include) or tags & exclude:
            continue
        kept.append(post)
    rank = {ig_id: n for n, ig_id in enumerate(decisions.pinned)}
    return sorted(kept, key=lambda p: (rank.get(p.ig_media_id, len(rank)),))  # stable: newest first stays


def hashtags(caption: str | None) -> list[str]:
    return list(dict.fromkeys(_HASHTAG.findall(caption or "")))


def mentions(caption: str | None) -> list[str]:
    return list(dict.fromkeys(_MENTION.findall(caption or "")))


def pruned(caption: str | None) -> str:
    """The caption without the run of hashtags and mentions people put at its end."""
    text = (caption or "").strip()
    return _TRAILING_TAGS.sub("", text).rstrip() if text else ""


@dataclass(frozen=True)
class Documents:
    """One rendering of a feed: each page's JSON (``None``: the first page), the fragment and the embed page."""

    pages: dict[str | None, bytes]
    html: dict[str | None, bytes]
    embed: dict[str | None, bytes]
    origins: tuple[str, ...]
    changed_at: datetime


def render(data: FeedData, settings: DocumentSettings, *, base_url: str = "") -> Documents:
    limit = data.feed.post_limit
    base = base_url.rstrip("/")
    header = _header(data, base)
    posts = [_post(data, p, base, settings) for p in data.posts]
    environment = templates()
    pages: dict[str | None, bytes] = {}
    html: dict[str | None, bytes] = {}
    embed: dict[str | None, bytes] = {}
    for start in range(0, max(len(posts), 1), limit):
        after = posts[start - 1]["id"] if start else None
        chunk = posts[start:start + limit]
        more = start + limit < len(posts)
        last = chunk[-1]["id"] if chunk else None
        document = {**header, "posts": chunk,
                    "next": f"{base}/feeds/{data.feed.slug}/after-{last}.json" if more else None}
        pages[after] = _json(document)
        context = {"feed": header["feed"], "accounts": header["accounts"], "posts": chunk, "base": base,
                   "first_page": start == 0,
                   "more": f"{base}/feeds/{data.feed.slug}/embed/after-{last}" if more else None}
        fragment = environment.get_template("feed.html").render(context)
        html[after] = fragment.encode()
        embed[after] = environment.get_template("embed.html").render(context, fragment=fragment).encode()
    return Documents(pages, html, embed, tuple(data.feed.allowed_origins), data.feed.changed_at)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def templates() -> jinja2.Environment:
    """The fragment's and the embed page's templates (feed_assets/), with the filter they use."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(ASSETS), autoescape=True, trim_blocks=True,
                                     lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters["compact"] = compact
    return environment


def compact(n: int) -> str:
    """A count as the widget writes it (``Intl`` compact notation from 10 000 on): 9,876 · 69K · 1.2M."""
    if n < 10_000:
        return f"{n:,}"
    for size, unit in ((1_000, "K"), (1_000_000, "M"), (1_000_000_000, "B")):
        scaled = n / size
        shown = round(scaled, 1) if scaled < 10 else round(scaled)
        if shown < 1000 or unit == "B":  # 999 999 is "1M", not "1000K"
            return (f"{shown:.1f}".removesuffix(".0") if shown < 10 else f"{int(shown)}") + unit
    raise AssertionError("unreachable: the last unit always returns")


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _header(data: FeedData, base: str) -> dict[str, Any]:
    synced = [r.source.last_synced_at for r in data.sources if r.source.last_synced_at is not None]
    stale = [r.source.stale_since for r in data.sources if r.source.stale_since is not None]
    own = {r.account.id: r.source for r in data.sources if r.account is not None and r.own_account is not None}
    return {
        "version": SCHEMA_VERSION,
        "feed": {"slug": data.feed.slug, "title": data.feed.title, "url": f"{base}/feeds/{data.feed.slug}.json",
                 "updated_at": _time(data.feed.changed_at),
                 # the oldest source's: a feed is as fresh as its least fresh account
                 "last_synced_at": _time(min(synced)) if synced and len(synced) == len(data.sources) else None,
                 "stale_since": _time(min(stale)) if stale else None},
        "accounts": [{
            "username": a.username, "name": a.name, "status": a.status,
            "profile_url": f"https://www.instagram.com/{a.username}/" if a.username and _USERNAME.fullmatch(a.username)
            else None,
            "followers_count": a.followers_count, "follows_count": a.follows_count, "media_count": a.media_count,
            "profile_picture": _picture(data, own[a.id].id, "", base, None),
            "last_synced_at": _time(own[a.id].last_synced_at), "stale_since": _time(own[a.id].stale_since)}
            for a in data.accounts],
    }


def _post(data: FeedData, post: MediaItem, base: str, settings: DocumentSettings) -> dict[str, Any]:
    row = next((r for r in data.sources if r.source.id == post.source_id), None)
    username, source = _author(row, post)
    caption = post.caption or ""
    children = data.children.get(post.id, [])
    pictures = [_picture(data, post.source_id, c.ig_media_id, base, settings) for c in children]
    # An album's cover is its first child with a stored picture: a video first, with no poster, is passed over.
    cover = next(filter(None, pictures), None) if children else _picture(data, post.source_id, post.ig_media_id,
                                                                        base, settings)
    entry: dict[str, Any] = {
        "id": post.ig_media_id, "account": username, "username": username, "source": source,
        "type": post.media_type,
        "is_reel": post.media_product_type == "REELS", "permalink": instagram_link(post.permalink),
        "timestamp": _time(post.timestamp), "caption": caption, "pruned_caption": pruned(caption),
        "hashtags": hashtags(caption), "mentions": mentions(caption),
        "alt_text": post.alt_text or _alt(caption, username, post.timestamp, source),
        "like_count": post.like_count, "comments_count": post.comments_count,
        **(cover or _NO_PICTURE),
        "children": [{"id": c.ig_media_id, "type": c.media_type, **(picture or _NO_PICTURE)}
                     for c, picture in zip(children, pictures, strict=True)],
    }
    return entry


def _author(row: FeedSourceRow | None, post: MediaItem) -> tuple[str | None, dict[str, str | None] | None]:
    """(the username of whose post it is, where known; the source that brought it: its kind and name)."""
    if row is None:
        return post.username, None
    source, account = row.source, row.account
    if source.kind == SourceKind.ACCOUNT:
        name = account.username if account else None
        return name, {"kind": source.kind, "name": name}
    if source.kind == SourceKind.PROFILE:
        return post.username or source.query, {"kind": source.kind, "name": source.query}
    return post.username, {"kind": source.kind, "name": source.query}


_NO_PICTURE: dict[str, Any] = {"width": None, "height": None, "color": None, "palette": None, "placeholder": None,
                               "sizes": [], "fallback": None, "video": None}


def instagram_link(url: str | None) -> str | None:
    """A URL from the Graph API, as a page may link it: https on Instagram's own hosts, else none at all (a
    ``javascript:`` permalink once ran script on the host page's origin when its tile was clicked)."""
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or parts.username or parts.password or parts.port not in (None, 443) \
            or not (host == "instagram.com" or host.endswith(".instagram.com")):
        return None
    return url


def _alt(caption: str, username: str | None, when: datetime | None,
         source: dict[str, str | None] | None = None) -> str:
    text = " ".join(pruned(caption).split())
    if text:
        return text if len(text) <= 125 else text[:124].rsplit(" ", 1)[0] + "…"
    if username:
        by = f" by @{username}"
    elif source is not None and source["kind"] == SourceKind.HASHTAG:
        by = f" via #{source['name']}"  # Instagram never says whose: none is invented
    else:
        by = ""
    return f"Instagram post{by}" + (f" on {when:%d %B %Y}" if when else "")


def _picture(data: FeedData, source_id: int, ig_media_id: str, base: str,
             settings: DocumentSettings | None) -> dict[str, Any] | None:
    """The stored picture of a post, a child or ("") the profile picture: its size, colours, placeholder, a URL per
    width and format, the fallback (an upright JPEG where one was made, else the original) and a stored video."""
    files = data.files.get((source_id, ig_media_id), [])
    still = next((f for f in files if f.role in (FileRole.ORIGINAL, FileRole.POSTER)), None)
    upright = next((f for f in files if f.role == FileRole.VARIANT and f.variant.endswith(".jpg")), None)
    if still is None or not still.width or not still.height:
        return None
    video = next((f for f in files if f.role == FileRole.VIDEO), None)
    media = f"{base}/media/"
    if settings is None:  # the profile picture: the original only
        return {"url": media + still.storage_key, "width": still.width, "height": still.height}
    sizes = [{"width": w, "height": h, **{fmt: media + variant_key(still.storage_key, f"{w}.{fmt}")
                                         for fmt in settings.formats}}
             for w, h in ladder(settings.widths, still.width, still.height)]
    return {"width": still.width, "height": still.height, "color": still.color,
            "palette": json.loads(still.palette) if still.palette else None, "placeholder": still.placeholder,
            "sizes": sizes,
            "fallback": {"url": media + (upright or still).storage_key, "type": (upright or still).content_type},
            "video": {"url": media + video.storage_key, "type": video.content_type} if video else None}
