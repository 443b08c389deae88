"""The widget and the fragment as files: the budget the widget keeps (15 KB gzipped), the icons both draw from the
same paths, and the fragment's markup for each kind of post."""

from __future__ import annotations

import gzip
import re

import pytest

from filmroll.service import feed_documents

WIDGET_BUDGET = 15 * 1024  # gzipped bytes (issue #31)


def test_the_widget_stays_within_its_budget():
    widget = feed_documents.WIDGET.read_bytes()
    assert len(gzip.compress(widget, 9)) <= WIDGET_BUDGET
    assert b"eval(" not in widget and b"innerHTML" not in widget  # nothing a strict CSP or a caption could abuse


def test_the_widget_and_the_fragment_draw_the_same_icons():
    widget = feed_documents.WIDGET.read_text()
    block = widget[widget.index("const ICONS = {"):widget.index("};", widget.index("const ICONS = {"))]
    drawn = dict(re.findall(r'^\s*(\w+): "([^"]+)",$', block, re.M))
    fragment = (feed_documents.ASSETS / "icons.html").read_text()
    listed = dict(re.findall(r'^\s*"(\w+)": "([^"]+)",$', fragment, re.M))
    assert listed and all(drawn[name] == path for name, path in listed.items()), set(listed) - set(drawn)


def _tile(post: dict) -> str:
    environment = feed_documents.templates()
    context = {"feed": {"slug": "s", "title": "T"}, "accounts": [], "base": "", "first_page": False, "more": None,
               "posts": [{"permalink": None, "username": None, "source": None, "color": None, "fallback": None,
                          "alt_text": "A post", "children": [], "is_reel": False, "like_count": None,
                          "comments_count": None, "type": "IMAGE", **post}]}
    return environment.get_template("feed.html").render(context)


def test_each_kind_of_post_has_its_icon_with_a_name_and_counts_only_where_instagram_gave_them():
    assert 'aria-label="Album of 2"' in _tile({"type": "CAROUSEL_ALBUM", "children": [{}, {}]})
    assert 'aria-label="Reel"' in _tile({"type": "VIDEO", "is_reel": True})
    assert 'aria-label="Video"' in _tile({"type": "VIDEO"})
    photo = _tile({})
    assert "<svg" not in photo and "filmroll-overlay" not in photo  # no icon, no invented zero likes
    counted = _tile({"like_count": 1234, "comments_count": 0})
    assert "1,234" in counted and "(1,234 likes, 0 comments)" in counted
    assert "likes" not in _tile({"comments_count": 3}) and "(3 comments)" in _tile({"comments_count": 3})


@pytest.mark.parametrize(("count", "written"), [
    (9876, "9,876"), (10_000, "10K"), (12_345, "12K"), (68_706, "69K"), (999_999, "1M"), (1_234_567, "1.2M"),
    (9_960_000, "10M"), (12_345_678, "12M")])
def test_the_fragment_writes_counts_as_the_widget_does(count, written):
    # The widget's are Chromium's Intl.NumberFormat("en", {notation: "compact"}) from 10 000 on, for these values.
    assert feed_documents.compact(count) == written
