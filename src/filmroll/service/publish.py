"""``filmroll publish``: every feed written as static files (to a directory for nginx, or to S3 for a CDN), so a
website is served with filmroll off the request path.

    feeds/{slug}.json, feeds/{slug}/after-{id}.json     the pages, exactly the bytes `filmroll serve` sends
    feeds/{slug}.html, feeds/{slug}/after-{id}.html     the fragments
    feeds/{slug}/embed/index.html, …/embed/after-{id}/index.html
    feeds/feed.css, widget.js
    media/sources/…, media/accounts/…                   every picture the documents name (a missing variant is
                                                        rendered first, as `/media/…` would)

Incremental and atomic: a media object is immutable (its name is its content), so one already there is not
written again; a document is written only when its bytes changed. Media go first, then the pages after the first,
then each feed's first page and fragment: a reader never meets a document whose pictures are not there yet, and
each file is replaced whole (``Storage.put``). Pages and feeds that are no more, and the pictures of deleted
sources and accounts, are removed last.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from filmroll import errors
from filmroll.service import feed_documents, pictures
from filmroll.service.feed_documents import Documents, DocumentSettings
from filmroll.service.mirror import Mirror
from filmroll.service.policy import Backoff
from filmroll.storage.base import Storage
from filmroll.storage.keys import PUBLISHED_MEDIA
from filmroll.storage.keys import parse as parse_key
from filmroll.store import accounts as account_store
from filmroll.store import feeds as feed_store
from filmroll.store import sources as source_store
from filmroll.vocabulary import Outcome

log = logging.getLogger(__name__)
_MEDIA = re.compile(r"/media/((?:sources|accounts)/[0-9]+/sha256/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}"
                    r"(?:\.[a-z0-9]{2,4}|/[0-9]{1,5}\.(?:webp|avif|jpg)))")
_OWNER = re.compile(PUBLISHED_MEDIA + r"(sources|accounts)/([0-9]+)/")
_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
          "js": "text/javascript; charset=utf-8"}


@dataclass
class PublishReport:
    feeds: list[str] = field(default_factory=list)
    documents_written: int = 0
    documents_unchanged: int = 0
    media_written: int = 0
    media_present: int = 0
    removed: int = 0
    bytes_written: int = 0
    missing: list[str] = field(default_factory=list)  # pictures named but not stored (and not renderable)


def paths(slug: str, documents: Documents) -> dict[str, bytes]:
    """Each document's path in the published tree."""
    found: dict[str, bytes] = {}
    for after, body in documents.pages.items():
        found[f"feeds/{slug}.json" if after is None else f"feeds/{slug}/after-{after}.json"] = body
    for after, body in documents.html.items():
        found[f"feeds/{slug}.html" if after is None else f"feeds/{slug}/after-{after}.html"] = body
    for after, body in documents.embed.items():
        found[f"feeds/{slug}/embed/index.html" if after is None else f"feeds/{slug}/embed/after-{after}/index.html"] \
            = body
    return found


async def publish(mirror: Mirror, target: Storage, settings: DocumentSettings, *, base_url: str = "",
                  slugs: Sequence[str] | None = None) -> PublishReport:
    """Write every feed (or ``slugs``) to ``target``; see the module docstring."""
    database = mirror.database
    report = PublishReport()
    async with database.read() as session:
        every = [f.slug for f in await feed_store.all_feeds(session)]
    chosen = [s for s in every if slugs is None or s in slugs]
    rendered: dict[str, dict[str, bytes]] = {}
    for slug in chosen:
        gathered = await feed_documents.gather(database, slug, settings)
        if gathered is None:
            continue
        rendered[slug] = paths(slug, feed_documents.render(gathered, settings, base_url=base_url))
        report.feeds.append(slug)
    existing = {o.key: o.size async for o in target.list("")}
    names = sorted({key for files in rendered.values() for body in files.values()
                    for key in _MEDIA.findall(body.decode())})
    now = database.clock.now()
    for key in names:
        if PUBLISHED_MEDIA + key in existing:
            report.media_present += 1
            continue
        data = await mirror.storage.get(key)
        parsed = parse_key(key)
        if data is None and parsed is not None and parsed.variant is not None:
            made = await mirror.variant(parsed.prefix, parsed.sha256, parsed.variant, now)
            data = made[0] if made else None
        if data is None:
            report.missing.append(key)
            continue
        if parsed is None or parsed.variant is None:  # an original, as /media serves it: without its metadata
            data = pictures.public_copy(data)
        await target.put(PUBLISHED_MEDIA + key, data, _content_type(key))
        report.media_written += 1
        report.bytes_written += len(data)
    assets = {"feeds/feed.css": feed_documents.STYLESHEET.read_bytes(), "widget.js": feed_documents.WIDGET.read_bytes()}
    firsts = {f"feeds/{slug}.json" for slug in rendered}

    def order(path: str) -> int:
        # Pages after the first before the first pages (a `next` never names a page that is not there yet), and each
        # feed's JSON last of all: whoever sees a new feeds/{slug}.json finds its pages, fragment and embed in place.
        return 2 if path in firsts else 0 if "/after-" in path else 1

    ordered = sorted(((p, b) for files in rendered.values() for p, b in files.items()), key=lambda item: order(item[0]))
    for path, body in [*assets.items(), *ordered]:
        if existing.get(path) == len(body) and await target.get(path) == body:
            report.documents_unchanged += 1
            continue
        await target.put(path, body, _content_type(path))
        report.documents_written += 1
        report.bytes_written += len(body)
    keep = {p for files in rendered.values() for p in files} | set(assets)
    # Publishing every feed removes what no feed names any more (a deleted feed, a page past the end); publishing
    # some removes only their own old pages.
    stale = [k for k in existing if k.startswith("feeds/") and k not in keep
             and (slugs is None or _owner(k) in rendered)]
    # The pictures of a source or an account that is no more (an owner's deletion) go whatever was asked: no feed
    # may name them.
    async with database.read() as session:
        living = {"accounts": set(await account_store.ids(session)), "sources": set(await source_store.ids(session))}
    stale += [k for k in existing if (found := _OWNER.match(k)) and int(found[2]) not in living[found[1]]]
    if stale:
        await target.delete(stale)
        report.removed = len(stale)
    async with database.transaction() as session:
        await feed_store.published(session, report.feeds, now)
    return report


def _owner(key: str) -> str:
    """The feed a published path belongs to: feeds/{slug}.json, feeds/{slug}/…"""
    name = key.split("/", 2)[1]
    return name.rsplit(".", 1)[0] if "/" not in key.removeprefix("feeds/") else name


def _content_type(key: str) -> str:
    extension = key.rsplit(".", 1)[-1]
    if extension in _TYPES:
        return _TYPES[extension]
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif", "gif": "image/gif",
            "mp4": "video/mp4"}.get(extension, "application/octet-stream")


class Publisher:
    """The worker's ``publish`` job (with ``FILMROLL_PUBLISH__DIR``): a feed whose version moved past the one last
    published is published again, under the feed's publish lease; a failing target backs off (unless the feed
    changed meanwhile)."""

    def __init__(self, mirror: Mirror, target: Storage, settings: DocumentSettings, *, base_url: str, owner: str,
                 backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self.mirror = mirror
        self.target = target
        self.settings = settings
        self.base_url = base_url
        self.owner = owner
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()

    async def run(self, claim: feed_store.PublishClaim) -> Outcome:
        database = self.mirror.database
        async with database.read() as session:
            version = await feed_store.version_of(session, claim.feed_id)  # read first: a later change stays due
        now = database.clock.now()
        try:
            report = await publish(self.mirror, self.target, self.settings, base_url=self.base_url,
                                   slugs=[claim.slug])
            failure = f"{len(report.missing)} picture(s) not in storage yet" if report.missing else None
        except (errors.StorageError, errors.MediaError) as exc:
            failure = exc.message
        if failure is None:
            values: dict[str, object] = {"published_version": version, "publish_failures": 0, "publish_error": None,
                                         "next_publish_at": None}
        else:
            log.warning("publishing feed %s failed: %s", claim.slug, failure)
            values = {"publish_failures": claim.publish_failures + 1, "publish_error": failure[:500],
                      "next_publish_at": now + self.backoff.delay(claim.publish_failures, self.rng)}
        async with database.transaction() as session:
            if failure is not None and await feed_store.version_of(session, claim.feed_id) != version:
                # The feed changed while it was being published (an account deleted: its pictures went first):
                # what failed is already out of date, so the new version is published at once, not backed off.
                values = {"publish_error": None, "next_publish_at": None}
            if not await feed_store.publish_finished(session, owner=self.owner, feed_id=claim.feed_id, values=values):
                return Outcome.STALE_LEASE
        return Outcome.PUBLISHED if failure is None else Outcome.PUBLISH_RETRY
