"""The CDN: real JPEGs behind signed URLs that expire with Instagram's 403 text."""

from __future__ import annotations

import io

from PIL import Image

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
    assert image.format == "JPEG" and image.size == (480, 480)
    assert http.get(url).content == response.content  # the same object always looks the same


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
