"""Feeds on the public mount: the JSON schema with every picture on filmroll's origin, pages by cursor, HTTP done
right (strong ETags per encoding, 304, caching, gzip and brotli, CORS), filters, hidden and pinned posts, and a
feed rendered once per change: a thousand requests call Instagram never and render nothing again."""

from __future__ import annotations

import gzip
import io
import json
import re
import time

import brotli
import pytest
from PIL import Image

from filmroll.service import feeds as feed_service
from filmroll.store.database import Database
from filmroll.web.feed_schema import FeedDocument
from tests import aio
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.webapp import running_filmroll, wait_until_mirrored

ACCOUNT = 5  # 10 posts: images, albums, videos (3 pages of 4)


def _make_feed(database_url: str, spec: feed_service.FeedSpec) -> None:
    async def make() -> None:
        database = Database(database_url)
        try:
            await feed_service.create(database, spec)
        finally:
            await database.dispose()

    aio.run(make())


def make_served_feed(admin, database_url: str, spec: feed_service.FeedSpec) -> None:
    _make_feed(database_url, spec)
    deadline = time.monotonic() + 10
    while admin.get(f"/feeds/{spec.slug}.json").status_code == 404:  # a new feed is served from the next poll on
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _edit(database_url: str, slug: str, **change) -> None:
    async def edit() -> None:
        database = Database(database_url)
        try:
            await feed_service.edit(database, slug, change)
        finally:
            await database.dispose()

    aio.run(edit())


def _wait_until_mirrored(admin, posts: int, account: int = 1) -> None:
    wait_until_mirrored(lambda: admin.get(f"/accounts/{account}").text, posts)


def _all_posts(client, first: str) -> list[dict]:
    posts, url = [], first
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        FeedDocument.model_validate(body)  # every page is the schema /openapi.json publishes, field for field
        posts += body["posts"]
        url = body["next"]
    return posts


def _wait_for(client, url: str, check, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while not check(body := client.get(url).json()):
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return body


@pytest.fixture
def served_feed(sandbox, database_url):
    """filmroll serving one mirrored account and a feed of it (4 posts a page)."""
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, ACCOUNT)
        _wait_until_mirrored(admin, posts)
        make_served_feed(admin, database_url, feed_service.FeedSpec("The bakery", "bakery", ("1",), post_limit=4))
        yield app, admin, posts
        admin.close()


def _serves_every_post_with_its_pictures_from_filmroll_by_cursor(served_feed, sandbox):
    app, admin, posts = served_feed
    first = admin.get("/feeds/bakery.json")
    assert first.status_code == 200 and first.headers["content-type"] == "application/json", first.text
    body = first.json()
    assert body["version"] == 1 and body["feed"]["slug"] == "bakery" and len(body["posts"]) == 4
    assert body["accounts"][0]["status"] == "active" and body["feed"]["stale_since"] is None
    assert body["accounts"][0]["profile_picture"]["url"].startswith(app.base_url + "/media/")
    every = _all_posts(admin, "/feeds/bakery.json")
    assert len(every) == posts and len({p["id"] for p in every}) == posts  # each once, none left out
    stamps = [p["timestamp"] for p in every]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    urls = [u for p in every for u in _picture_urls(p)]
    assert urls and all(u.startswith(app.base_url + "/media/") for u in urls)  # never Instagram's
    albums = [p for p in every if p["type"] == "CAROUSEL_ALBUM"]
    assert albums and all(c["sizes"] and c["fallback"] for a in albums for c in a["children"])
    post = every[-1]  # an old one: its variants are made on the first request for them
    for size in post["sizes"]:
        for fmt in ("webp", "avif"):
            picture = admin.get(size[fmt].removeprefix(app.base_url))
            assert picture.status_code == 200 and picture.headers["content-type"] == f"image/{fmt}"
            assert Image.open(io.BytesIO(picture.content)).size == (size["width"], size["height"])
    assert post["width"] >= post["sizes"][-1]["width"] and post["placeholder"] and post["palette"]["dominant"]
    assert admin.get("/feeds/bakery/after-999999.json").status_code == 404
    missing = admin.get("/feeds/nothing-here.json")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def _picture_urls(post: dict) -> list[str]:
    urls = [post["fallback"]["url"]] + [s[f] for s in post["sizes"] for f in ("webp", "avif")]
    return urls + [u for c in post.get("children", []) for u in _picture_urls(c)]


def _http_etags_per_encoding_304_caching_and_cors(served_feed):
    app, admin, _ = served_feed
    plain = admin.get("/feeds/bakery.json", headers={"Accept-Encoding": "identity"})
    assert plain.headers["cache-control"] == ("public, max-age=60, stale-while-revalidate=86400, "
                                              "stale-if-error=604800")
    assert plain.headers["access-control-allow-origin"] == "*" and "Origin" not in plain.headers["vary"]
    assert plain.headers["last-modified"].endswith("GMT")
    etag = plain.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong
    raw = plain.content
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        with admin.stream("GET", "/feeds/bakery.json", headers={"Accept-Encoding": encoding}) as response:
            compressed = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == encoding and len(compressed) < len(raw) / 3
        assert response.headers["etag"] != etag and "Accept-Encoding" in response.headers["vary"]
        assert decode(compressed) == raw
        again = admin.get("/feeds/bakery.json", headers={"Accept-Encoding": encoding,
                                                         "If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    identity = {"Accept-Encoding": "identity"}
    assert admin.get("/feeds/bakery.json", headers={**identity, "If-None-Match": f'"x", {etag}'}).status_code == 304
    assert admin.get("/feeds/bakery.json", headers={**identity, "If-None-Match": '"other"'}).status_code == 200
    # One representation's tag does not validate another's (a cache must not answer br with identity bytes).
    assert admin.get("/feeds/bakery.json", headers={"Accept-Encoding": "br", "If-None-Match": etag}).status_code == 200
    _edit(app.settings.database_url, "bakery", allowed_origins=("https://shop.example",))
    listed = _wait_for_header(admin, "https://shop.example")
    assert listed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "Origin" in listed.headers["vary"]
    other = admin.get("/feeds/bakery.json", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    embed = admin.get("/feeds/bakery/embed")
    assert "frame-ancestors https://shop.example" in embed.headers["content-security-policy"]


def _wait_for_header(admin, origin: str):
    deadline = time.monotonic() + 15
    while (r := admin.get("/feeds/bakery.json", headers={"Origin": origin})).headers.get(
            "access-control-allow-origin") != origin:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return r


def _hidden_posts_never_show_pinned_come_first_and_filters_apply(served_feed):
    app, admin, posts = served_feed
    every = _all_posts(admin, "/feeds/bakery.json")
    hidden, pinned = every[0]["id"], every[-1]["id"]
    _edit(app.settings.database_url, "bakery", hidden=(hidden,), pinned=(pinned,))
    body = _wait_for(admin, "/feeds/bakery.json", lambda b: b["posts"][0]["id"] == pinned)
    shown = _all_posts(admin, "/feeds/bakery.json")
    assert hidden not in {p["id"] for p in shown} and len(shown) == posts - 1
    assert hidden not in admin.get("/feeds/bakery.html").text and body["posts"][0]["id"] == pinned
    _edit(app.settings.database_url, "bakery", media_types=("IMAGE",), hidden=(), pinned=())
    _wait_for(admin, "/feeds/bakery.json", lambda b: {p["type"] for p in b["posts"]} == {"IMAGE"})
    assert {p["type"] for p in _all_posts(admin, "/feeds/bakery.json")} == {"IMAGE"}
    tagged = next(t for p in every for t in p["hashtags"])
    _edit(app.settings.database_url, "bakery", media_types=feed_service.MEDIA_TYPES, include_hashtags=(tagged,))
    _wait_for(admin, "/feeds/bakery.json", lambda b: all(tagged.casefold() in
                                                          [t.casefold() for t in p["hashtags"]] for p in b["posts"]))
    expected = [p["id"] for p in every if tagged.casefold() in [t.casefold() for t in p["hashtags"]]]
    assert [p["id"] for p in _all_posts(admin, "/feeds/bakery.json")] == expected


def _rendered_once_per_change_and_a_page_view_never_calls_instagram(served_feed, sandbox):
    app, admin, _ = served_feed
    admin.get("/feeds/bakery.json")
    cache = app.transport.app.state.web.feeds
    renders = cache.renders
    calls = len(sandbox.control.calls())
    for n in range(1000):
        kind = ("/feeds/bakery.json", "/feeds/bakery.html", "/feeds/bakery/embed")[n % 3]
        assert admin.get(kind).status_code == 200
    assert len(sandbox.control.calls()) == calls  # not one call to Instagram for 1 000 page views
    assert cache.renders == renders  # and not one render: the bytes are made once per change


def _the_fragment_works_without_javascript(served_feed):
    app, admin, _ = served_feed
    body = admin.get("/feeds/bakery.json").json()
    html = admin.get("/feeds/bakery.html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script" not in html.text
    pictures = re.findall(r"<picture>(.*?)</picture>", html.text, re.S)
    assert len(pictures) == len(body["posts"])
    for post, picture in zip(body["posts"], pictures, strict=True):
        assert '<source type="image/avif"' in picture and '<source type="image/webp"' in picture
        img = re.search(r"<img ([^>]+)>", picture)[1]
        assert f'width="{post["width"]}"' in img and f'height="{post["height"]}"' in img
        assert 'decoding="async"' in img and "alt=" in img
    assert html.text.count('loading="lazy"') == len(pictures) - 3  # the first row at once, the rest lazily
    more = re.search(r'class="filmroll-more"><a class="filmroll-button" href="([^"]+)"', html.text)[1]
    assert admin.get(more.removeprefix(app.base_url)).status_code == 200
    css = admin.get("/feeds/feed.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert json.loads(admin.get("/feeds/bakery.json").content)["posts"] == body["posts"]


# Two tests share the work of mirroring an account (a quarter of a minute each): what they check is in the helpers.
def test_a_feed_serves_its_posts_and_pictures_by_cursor_as_json_and_html_rendered_once(served_feed, sandbox):
    _serves_every_post_with_its_pictures_from_filmroll_by_cursor(served_feed, sandbox)
    _the_fragment_works_without_javascript(served_feed)
    _rendered_once_per_change_and_a_page_view_never_calls_instagram(served_feed, sandbox)


def test_a_feed_answers_http_right_and_its_settings_apply(served_feed):
    _the_fast_path_answers_as_the_routes_do(served_feed)
    _http_etags_per_encoding_304_caching_and_cors(served_feed)
    _edit(served_feed[0].settings.database_url, "bakery", allowed_origins=("*",))
    _hidden_posts_never_show_pinned_come_first_and_filters_apply(served_feed)


def _the_fast_path_answers_as_the_routes_do(served_feed):
    """A rendered feed is answered before FastAPI's routing (web/feeds.FeedFastPath); a query string sends the same
    request through the routes. Both must give the same status, headers and bytes, for every kind of document,
    encoding, validator and origin."""
    _, admin, _ = served_feed
    second = _all_posts(admin, "/feeds/bakery.json")[3]["id"]
    paths = ["/feeds/bakery.json", "/feeds/bakery.html", "/feeds/bakery/embed", f"/feeds/bakery/after-{second}.json",
             f"/feeds/bakery/after-{second}.html", f"/feeds/bakery/embed/after-{second}"]
    for path in paths:
        for encoding in ("br, gzip", "gzip", "identity"):
            for origin in (None, "https://www.example.org"):
                asked = {"Accept-Encoding": encoding, **({"Origin": origin} if origin else {})}
                routed = admin.get(path + "?via=routes", headers=asked)
                fast = admin.get(path, headers=asked)
                assert routed.status_code == fast.status_code == 200, path
                assert fast.content == routed.content and dict(fast.headers) == dict(routed.headers), (path, asked)
                asked["If-None-Match"] = fast.headers["etag"]
                routed, fast = admin.get(path + "?via=routes", headers=asked), admin.get(path, headers=asked)
                assert routed.status_code == fast.status_code == 304 and fast.content == b"", path
                assert dict(fast.headers) == dict(routed.headers), (path, asked)
    for missing in ("/feeds/bakery/after-1.json", "/feeds/nothing.json", "/feeds/bakery/after-1/embed"):
        assert admin.get(missing).status_code == 404
        assert admin.get(missing).headers["content-type"] == "application/problem+json"


def _sync_due_now(database_url: str, account_id: int = 1) -> str:
    """The account's next sync due now; returns one of its stored Instagram CDN URLs."""
    from sqlalchemy import select, update

    from filmroll.store.tables import MediaItem, Source

    async def due() -> str:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                source_id = (await session.execute(select(Source.id).where(
                    Source.account_id == account_id, Source.kind == "account"))).scalar_one()
                await session.execute(update(Source).where(Source.id == source_id)
                                      .values(next_sync_at=database.clock.now()))
                return (await session.execute(select(MediaItem.media_url).where(
                    MediaItem.source_id == source_id, MediaItem.media_type == "IMAGE").limit(1))).scalar_one()
        finally:
            await database.dispose()

    return aio.run(due())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_feed_never_breaks_when_the_token_dies_and_instagrams_urls_expire(served_feed, sandbox):
    app, admin, _ = served_feed
    before = _all_posts(admin, "/feeds/bakery.json")
    sandbox.control.revoke(ACCOUNT, reason="password_changed")
    sandbox.control.advance(40 * 86_400)  # every signed CDN URL filmroll stored has expired
    stored_url = _sync_due_now(app.settings.database_url)
    body = _wait_for(admin, "/feeds/bakery.json", lambda b: b["accounts"][0]["status"] == "needs_reauth", 60)
    assert body["feed"]["stale_since"] and body["accounts"][0]["stale_since"]
    after = _all_posts(admin, "/feeds/bakery.json")
    assert [p["id"] for p in after] == [p["id"] for p in before]  # every post, in order
    import httpx
    assert httpx.get(stored_url, timeout=10).status_code == 403  # Instagram's copy is gone for a visitor…
    for post in after:  # …and filmroll's is all there
        for url in (post["fallback"]["url"], post["sizes"][0]["webp"]):
            assert admin.get(url.removeprefix(app.base_url)).status_code == 200, url


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_while_the_database_is_unreachable_a_feed_is_served_as_last_rendered(served_feed):
    from filmroll.store.database import Database as Unreachable

    app, admin, _ = served_feed
    before = admin.get("/feeds/bakery.json", headers={"Accept-Encoding": "identity"})
    cache = app.transport.app.state.web.feeds
    reachable = cache.database
    cache.database = Unreachable("postgresql://nobody@127.0.0.1:1/none")  # every query: connection refused
    try:
        slug, (changed, _) = "bakery", cache.versions["bakery"]
        cache.versions[slug] = (changed, None)  # as if a change had been seen: a render is due and cannot run
        during = admin.get("/feeds/bakery.json", headers={"Accept-Encoding": "identity"})
        assert during.status_code == 200 and during.content == before.content
        assert admin.get("/feeds/no-such-feed.json").status_code == 404
    finally:
        app.transport._call(cache.database.dispose())
        cache.database = reachable
