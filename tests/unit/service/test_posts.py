"""What makes a post changed, a page's fingerprint, and the rows the store writes: pure rules, tested with values."""

from __future__ import annotations

from datetime import UTC, datetime

from filmroll.platform import Child, Media, MediaPage
from filmroll.service import posts

STORED = {"deleted_at": None, "caption": "hi", "like_count": 3, "comments_count": 1, "alt_text": None,
          "media_type": "IMAGE", "media_product_type": "FEED", "permalink": "https://www.instagram.com/p/x/"}


def media(**changes: object) -> Media:
    values = {k: v for k, v in STORED.items() if k != "deleted_at"}
    return Media(id="1", **{**values, **changes})  # type: ignore[arg-type]


def test_a_post_is_changed_when_a_compared_field_moves_and_only_then():
    assert not posts.changed(STORED, media())
    assert not posts.changed(STORED, media(media_url="https://cdn/re-signed.jpg"))  # re-signed URLs are no change
    for field, value in (("caption", "edited"), ("like_count", 4), ("comments_count", 2), ("alt_text", "a cat"),
                         ("media_type", "VIDEO"), ("media_product_type", "REELS"), ("permalink", "https://x/")):
        assert posts.changed(STORED, media(**{field: value})), field


def test_a_post_not_stored_or_marked_deleted_is_changed():
    assert posts.changed(None, media())
    assert posts.changed({**STORED, "deleted_at": datetime(2026, 1, 1, tzinfo=UTC)}, media())


def test_the_fingerprint_sees_what_changed_sees_and_nothing_else():
    def page(*items: dict[str, object]) -> MediaPage:
        return MediaPage(raw=tuple(items), next_url=None, after=None)

    item = {"id": "1", **{k: v for k, v in STORED.items() if k != "deleted_at"}}
    base = posts.fingerprint(page(item))
    assert posts.fingerprint(page(dict(item))) == base
    assert posts.fingerprint(page({**item, "media_url": "https://cdn/other-signature.jpg"})) == base
    assert posts.fingerprint(page({**item, "like_count": 4})) != base
    assert posts.fingerprint(page(item, {**item, "id": "2"})) != base  # a new post on the page


def test_a_row_carries_the_columns_and_the_children_in_order():
    carousel = media(media_type="CAROUSEL_ALBUM", children=(Child("c1", "IMAGE", "u1"), Child("c2", "VIDEO", "u2",
                                                                                            "t2")))
    row = posts.row(carousel)
    assert row["ig_media_id"] == "1" and row["caption"] == "hi"
    assert [c["ig_media_id"] for c in row["children"]] == ["c1", "c2"]
    assert row["children"][1] == {"ig_media_id": "c2", "media_type": "VIDEO", "media_url": "u2", "thumbnail_url": "t2"}
    assert set(posts.compared(carousel)) == {"ig_media_id", *posts.COMPARED}
