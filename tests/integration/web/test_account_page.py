"""The first page where a person sees a picture: an account's posts from the mirror, served by filmroll from its own
storage (content-addressed, immutable), a variant never made rendered on its first request."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from tests import aio
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.unit.service.test_pictures import _with_metadata
from tests.webapp import running_filmroll, wait_until_mirrored


def test_the_account_page_shows_every_post_from_the_mirror(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 3)
        wait_until_mirrored(lambda: admin.get("/accounts/1").text, posts)
        assert posts > 48
        pictures = _every_page_of_posts(admin, posts)
        assert len(pictures) == len(set(pictures)) == posts  # one picture per post (an album's first, a video's poster)
        eager = [p for p in pictures if p.endswith(".webp")]
        lazy = [p for p in pictures if not p.endswith(".webp")]
        assert len(eager) == 4 and len(lazy) == posts - 4  # the four newest have variants already
        shown = admin.get(eager[0])
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/webp"
        assert "immutable" in shown.headers["cache-control"]
        assert Image.open(io.BytesIO(shown.content)).width == 320
        assert admin.get(eager[0], headers={"If-None-Match": shown.headers["etag"]}).status_code == 304
        assert _served_at(database_url, eager[0].removeprefix("/media/")) is not None  # what the budget evicts by
        # An older post's original is served as stored, and its 640 px WebP is made on this first request.
        original = admin.get(lazy[0])
        assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
        variant = admin.get(re.sub(r"\.jpg$", "/640.webp", lazy[0]))
        assert variant.status_code == 200 and Image.open(io.BytesIO(variant.content)).size[0] == 640
        # An original is stored as Instagram sent it (the export keeps it) and served without location or camera.
        storage = app.transport.app.state.runtime.storage  # type: ignore[union-attr]
        aio.run(storage.put(lazy[0].removeprefix("/media/"), _with_metadata("JPEG"), "image/jpeg"))
        served = admin.get(lazy[0]).content
        assert b"Canon" not in served and b"SERIAL-4242" not in served and b"shot at home" not in served
        with Image.open(io.BytesIO(served)) as shown:
            assert shown.getexif().get_ifd(0x8825) == {} and shown.size == (320, 240)
        assert admin.get("/media/accounts/1/sha256/00/00/" + "0" * 64 + "/640.webp").status_code == 404
        assert admin.get("/media/../../etc/passwd").status_code == 404
        admin.close()


def _every_page_of_posts(admin, posts: int) -> list[str]:
    """The pictures of the posts' grid (the engagement above it shows some of the same pictures again), 24 posts a
    page, newest first, page after page."""
    seen = []
    for number in range(1, posts // 24 + 2):
        page = admin.get(f"/accounts/1?page={number}").text
        grid = page.split('id="posts"', 1)[1].split("</ul>", 1)[0]
        seen += re.findall(r'<img src="(/media/[^"]+)"', grid)
        assert grid.count('<li class="post ') == min(24, posts - 24 * (number - 1))
        assert f"of {posts} (page {number} of {posts // 24 + 1})" in page
        assert ('id="older-posts"' in page) == (number <= posts // 24) and ('id="newer-posts"' in page) == (number > 1)
    assert admin.get("/accounts/1?page=0").status_code == 400
    return seen


def _served_at(database_url: str, key: str):
    from sqlalchemy import select

    from filmroll.store.database import Database
    from filmroll.store.tables import MediaFile
    from tests import aio

    async def read():
        database = Database(database_url)
        try:
            async with database.read() as session:
                return (await session.execute(select(MediaFile.served_at)
                                              .where(MediaFile.storage_key == key))).scalar_one()
        finally:
            await database.dispose()

    return aio.run(read())


def test_missing_variants_asked_for_at_once_are_rendered_once_each_within_a_budget(sandbox, database_url):
    """Anyone on the internet can ask for a variant never made: 50 requests at once for one are one render; many
    different ones from one client get a 503 with Retry-After beyond its budget instead of taking every CPU."""
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 3)
        page = wait_until_mirrored(lambda: admin.get("/accounts/1").text, posts)
        lazy = [p for p in re.findall(r'<img src="(/media/[^"]+)"', page.split('id="posts"', 1)[1])
                if p.endswith(".jpg")]
        assert len(lazy) >= 3
        renderer = app.transport.app.state.runtime.renderer  # type: ignore[union-attr]
        rendered: list[tuple[int, ...]] = []
        real = renderer.render

        async def counted(data: bytes, **options):  # the real render, counted
            rendered.append(tuple(options["widths"]))
            return await real(data, **options)

        renderer.render = counted
        one = re.sub(r"\.jpg$", "/640.webp", lazy[0])
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: app.client().get(one), range(50)))
        assert [a.status_code for a in answers] == [200] * 50
        assert len({a.content for a in answers}) == 1 and rendered == [(640,)]  # one render for all fifty

        # Many different ones at once from one client: its budget renders (a page's worth by default; 4 here),
        # the rest are told to come back; none is lost for good.
        renders = app.transport.app.state.web.renders  # type: ignore[union-attr]
        renders.per_client, renders.most = 4, 8
        many = [re.sub(r"\.jpg$", f"/{width}.{fmt}", picture) for picture in lazy[1:3]
                for width in (320, 640, 1080) for fmt in ("webp", "avif")]
        rendered.clear()
        with ThreadPoolExecutor(len(many)) as pool:
            answers = list(pool.map(lambda url: app.client().get(url), many))
        busy = [a for a in answers if a.status_code == 503]
        assert {a.status_code for a in answers} <= {200, 503} and busy, [a.status_code for a in answers]
        assert all(a.headers["retry-after"] == "2" and a.json()["code"] == "busy" for a in busy)
        assert len(rendered) == len(many) - len(busy) <= 4
        for url in many:  # asked again, one at a time: every one is made
            assert app.client().get(url).status_code == 200, url
        # Only the widths feeds name: never one wider than the ladder (a 6300 px original's own width) or between.
        for width in (1079, 1440, 6300):
            assert app.client().get(re.sub(r"\.jpg$", f"/{width}.webp", lazy[0])).status_code == 404
        admin.close()
