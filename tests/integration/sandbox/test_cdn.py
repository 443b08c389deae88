"""The CDN: real JPEGs at Instagram's sizes, with a photograph's detail, behind signed URLs that expire with
Instagram's 403 text (video URLs sooner)."""

from __future__ import annotations

import io
from collections import Counter

from PIL import Image, ImageFilter, ImageStat

from filmroll.sandbox.cdn import FEED_SIZES, REEL_SIZE
from tests.helpers import long_lived


def _image_url(sandbox, http):
    token = long_lived(http, sandbox)
    body = http.get("/me/media", params={"fields": "media_type,media_url", "limit": "100",
                                         "access_token": token}).json()
    return next(m["media_url"] for m in body["data"] if m["media_type"] == "IMAGE"), token


def test_media_url_serves_a_real_jpeg(sandbox, http):
    url, _ = _image_url(sandbox, http)
    response = http.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.size in FEED_SIZES
    assert http.get(url).content == response.content  # the same object always looks the same


def _posts(sandbox, http, accounts=range(12)):
    for account in accounts:
        token = long_lived(http, sandbox, account)
        body = http.get("/me/media", params={
            "fields": "media_type,media_product_type,media_url,thumbnail_url,children{media_type,media_url}",
            "limit": "100", "access_token": token}).json()
        yield from body["data"]


def _size(http, url):
    return Image.open(io.BytesIO(http.get(url).content)).size


def test_pictures_come_in_instagrams_sizes_reels_upright_and_albums_alike(sandbox, http):
    feed, reels, albums = Counter(), Counter(), 0
    for post in _posts(sandbox, http):
        if post["media_type"] == "IMAGE" and sum(feed.values()) < 12:
            feed[_size(http, post["media_url"])] += 1
        elif post.get("media_product_type") == "REELS" and "thumbnail_url" in post and sum(reels.values()) < 2:
            reels[_size(http, post["thumbnail_url"])] += 1
        elif post["media_type"] == "CAROUSEL_ALBUM" and albums < 2:
            albums += 1
            sizes = {_size(http, c["media_url"]) for c in post["children"]["data"] if c["media_type"] == "IMAGE"}
            assert len(sizes) <= 1, sizes  # Instagram crops an album's pictures alike
        if sum(feed.values()) == 12 and sum(reels.values()) == 2 and albums == 2:
            break
    assert set(feed) <= set(FEED_SIZES) and len(feed) >= 3, feed
    assert set(reels) == {REEL_SIZE}, reels
    assert albums == 2


def test_pictures_carry_a_photographs_detail(sandbox, http):
    """Not a flat gradient: edges everywhere, and a file size like a photograph's at Instagram's quality."""
    url, _ = _image_url(sandbox, http)
    data = http.get(url).content
    image = Image.open(io.BytesIO(data))
    edges = ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]
    assert edges > 6, edges
    assert len(data) * 8 / (image.width * image.height) > 1.0  # bits per pixel; a gradient makes ~0.1


def test_profile_picture(sandbox, http):
    token = long_lived(http, sandbox)
    url = http.get("/me", params={"fields": "profile_picture_url", "access_token": token}).json()
    image = Image.open(io.BytesIO(http.get(url["profile_picture_url"]).content))
    assert image.size == (150, 150)


def test_url_expires_with_instagrams_403(sandbox, http):
    url, _ = _image_url(sandbox, http)
    sandbox.control.advance(3 * 86_400 + 1)
    response = http.get(url)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "URL signature expired"


def test_video_urls_expire_before_image_urls(sandbox, http):
    video = next(p for p in _posts(sandbox, http, range(30)) if p["media_type"] == "VIDEO" and "media_url" in p)
    assert http.get(video["media_url"]).status_code == 200
    sandbox.control.advance(86_400 + 1)
    assert http.get(video["media_url"]).text == "URL signature expired"
    assert http.get(video["thumbnail_url"]).status_code == 200  # its poster is an image: it lives on


def test_url_ttl_switch(sandbox, http):
    sandbox.control.switches(cdn_url_ttl=60)
    url, _ = _image_url(sandbox, http)
    sandbox.control.advance(61)
    assert http.get(url).status_code == 403


def test_tampered_or_unsigned_urls(sandbox, http):
    url, _ = _image_url(sandbox, http)
    base, _, query = url.partition("?")
    assert http.get(base).text == "Bad URL hash"
    later = query.replace("oe=", "oe=F")  # pushes the expiry out: the signature no longer matches
    assert http.get(f"{base}?{later}").text == "URL signature mismatch"
    assert http.get(url.replace("oe=", "oe=zz")).text in ("Bad URL timestamp", "URL signature mismatch")
    other = base.replace("_n.jpg", "_poster.jpg")
    assert http.get(f"{other}?{query}").status_code == 403


def test_video_media_url_is_a_video_placeholder(sandbox, http):
    for account in range(30):
        token = long_lived(http, sandbox, account)
        body = http.get("/me/media", params={"fields": "media_type,media_url,thumbnail_url", "limit": "100",
                                             "access_token": token}).json()
        videos = [m for m in body["data"] if m["media_type"] == "VIDEO" and "media_url" in m]
        if videos:
            video = http.get(videos[0]["media_url"])
            assert video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
            poster = http.get(videos[0]["thumbnail_url"])
            assert poster.headers["content-type"] == "image/jpeg"
            return
    raise AssertionError("no video found")
