"""What from Instagram or an operator may reach a page as a link or a header: permalinks only on Instagram's own
https hosts, feed origins only as exact scheme://host[:port] (service/feed_documents.py, service/feeds.py)."""

from __future__ import annotations

import pytest

from filmroll import errors
from filmroll.service.feed_documents import instagram_link
from filmroll.service.feeds import origins


@pytest.mark.parametrize(("url", "kept"), [
    ("https://www.instagram.com/p/DAbc123/", True),
    ("https://instagram.com/reel/DAbc123/", True),
    ("javascript:alert(document.domain)", False),  # once a link in the fragment and the published files
    ("JaVaScRiPt:alert(1)", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("http://www.instagram.com/p/DAbc123/", False),
    ("https://www.instagram.com.evil.example/p/x/", False),
    ("https://evil.example/?https://www.instagram.com/", False),
    ("https://user:pw@www.instagram.com/p/x/", False),
    ("https://www.instagram.com:8443/p/x/", False),
    ("//www.instagram.com/p/x/", False),
    ("", False),
    (None, False),
])
def test_only_instagrams_own_https_links_reach_a_page(url, kept):
    assert instagram_link(url) == (url if kept else None)


@pytest.mark.parametrize("origin", ["https://www.example.org", "http://127.0.0.1:8080", "https://[::1]:8443",
                                    "https://Shop.Example.org"])
def test_exact_origins_are_taken(origin):
    assert origins([origin]) == (origin.lower(),)


@pytest.mark.parametrize("origin", [
    "https://a.example;frame-ancestors",  # once copied into the embed page's CSP
    "https://a.example frame-ancestors *", "https://a.example,https://b.example", "https://a.example\r\nX: 1",
    "https://a.example/", "https://a.example/path", "https://*.example.org", "https://u:p@a.example",
    "https://a.example:0", "https://a.example:99999", "javascript:alert(1)", "ftp://a.example", "a.example",
])
def test_anything_but_an_exact_origin_is_refused(origin):
    with pytest.raises(errors.FeedSettingError, match="is not an origin"):
        origins([origin])
