"""The public feed document, version 1, as ``/openapi.json`` publishes it (docs/feeds.md says it in words).

These models describe what ``service/feed_documents.py`` renders; they are never used to build a reply (a feed's
bytes are made once per change, not validated per request). They forbid fields they do not name, so the schemathesis
run in the tests fails the day the renderer sends something the published schema does not say.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Strict):
    """An error, as RFC 9457 ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="filmroll's reason code, e.g. not_found, body_too_large")


class FeedSummary(_Strict):
    slug: str
    title: str
    url: str
    updated_at: str | None = Field(description="When the feed's content last changed (UTC, ISO 8601)")
    last_synced_at: str | None = Field(description="The least recent of its sources' last syncs")
    stale_since: str | None = Field(description="Set while syncing a source fails: since when")


class ProfilePicture(_Strict):
    url: str
    width: int
    height: int


class Account(_Strict):
    username: str | None
    name: str | None
    status: Literal["active", "needs_reauth", "disconnected", "revoked"]
    profile_url: str | None
    followers_count: int | None
    follows_count: int | None
    media_count: int | None
    profile_picture: ProfilePicture | None
    last_synced_at: str | None
    stale_since: str | None


class Size(_Strict):
    width: int
    height: int
    webp: str | None = None
    avif: str | None = None


class StoredFile(_Strict):
    url: str
    type: str = Field(description="Its media type, e.g. image/jpeg, video/mp4")


class _Picture(_Strict):
    width: int | None
    height: int | None
    color: str | None = Field(description='The dominant colour, "r,g,b"')
    palette: dict[str, Any] | None = Field(description="Seven swatches: dominant, vibrant, muted and their light "
                                           "and dark kinds")
    placeholder: str | None = Field(description="A BlurHash")
    sizes: list[Size]
    fallback: StoredFile | None
    video: StoredFile | None


class Child(_Picture):
    id: str
    type: str | None


class PostSource(BaseModel):
    kind: str = Field(description="account (a connected account's own posts), hashtag or profile (another "
                      "professional account's, Business Discovery)")
    name: str | None = Field(description="The account's or the profile's username, or the tag (without '@' or '#')")


class Post(_Picture):
    id: str
    account: str | None = Field(description="Whose post it is: the username, where known (null for a hashtag's)")
    username: str | None = Field(description="The author's username where Instagram tells it; null for a "
                                 "hashtag's post (Instagram never says, and none is invented)")
    source: PostSource | None = Field(description="The feed's source that brought it")
    type: str | None = Field(description="IMAGE, VIDEO or CAROUSEL_ALBUM")
    is_reel: bool
    permalink: str | None
    timestamp: str | None
    caption: str
    pruned_caption: str
    hashtags: list[str]
    mentions: list[str]
    alt_text: str
    like_count: int | None
    comments_count: int | None
    children: list[Child]


class FeedDocument(_Strict):
    version: Literal[1]
    feed: FeedSummary
    accounts: list[Account]
    posts: list[Post]
    next: str | None = Field(description="The next page's URL, for 'load more'; null on the last page")


_NOT_FOUND = {"description": "No such feed, or a post no longer in it", "model": Problem,
              "content": {"application/problem+json": {}}}
_NOT_MODIFIED = {"description": "Not modified (If-None-Match named the current ETag)"}
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}

JSON_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FeedDocument, "description": "The feed, or one page of it"}, 304: _NOT_MODIFIED,
    404: _NOT_FOUND}
HTML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "An HTML page or fragment", **_HTML}, 304: _NOT_MODIFIED, 404: _NOT_FOUND}
SCRIPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The <filmroll-feed> module", "content": {"text/javascript": {"schema": {"type": "string"}}}},
    304: _NOT_MODIFIED}
