"""A hashtag feed is an archive, not a 24-hour view, and shows strangers' posts only once approved: posts seen
through ``recent_media`` are stored and mirrored at once, and three days on (the API no longer returns them, their CDN
URLs have expired) they are all still in the feed with their pictures from filmroll's storage. Against the sandbox
over loopback HTTP, real storage, the worker's own sync and mirror jobs."""

from __future__ import annotations

import io
import json

import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat
from sqlalchemy import select

from filmroll.service import feed_documents, moderation, sources
from filmroll.service import feeds as feed_service
from filmroll.service.feed_documents import DocumentSettings
from filmroll.store.tables import MediaFile, Source
from filmroll.vocabulary import Outcome, PostState

pytestmark = pytest.mark.anyio
SETTINGS = DocumentSettings(widths=(320, 640), formats=("webp",), dead_account_days=90, max_posts=100)
MANAGER = 33


async def _page(harness, slug: str) -> dict:
    documents = feed_documents.render(await feed_documents.gather(harness.database, slug, SETTINGS), SETTINGS)
    return json.loads(documents.pages[None])


async def _due(harness, source_id: int) -> None:
    async with harness.database.transaction() as session:
        source = await session.get(Source, source_id)
        source.next_sync_at = harness.database.clock.now()


@pytest.mark.parametrize("storage", ["local"], indirect=True)
async def test_hashtag_posts_outlive_the_window_and_show_only_once_approved(rig, harness, sandbox):
    via = f"@{(await harness.connect_facebook(MANAGER)).first.username}"
    sandbox.control._call("PATCH", "/hashtags/harbourlight", {"posts_per_day": 0})
    sandbox.control._call("POST", "/hashtags/harbourlight/media", {"count": 4, "caption": "Evening #harbourlight"})
    sandbox.control._call("POST", "/hashtags/harbourlight/media", {"media_type": "CAROUSEL_ALBUM",
                                                                   "children": ["IMAGE", "IMAGE"]})
    sandbox.control._call("POST", "/hashtags/harbourlight/media", {"caption": "Selling cheap SPÄM here"})
    source = await sources.add_hashtag(harness.database, harness.vault, harness.clients, "harbourlight", via=via)
    info = await feed_service.create(harness.database, feed_service.FeedSpec(
        "Harbour", "harbour", (), sources=(source.id,), block_words=("spam",)))
    assert info.moderation == "approve" and info.block_words == ["spam"]

    assert (await harness.sync_sources()) == {Outcome.SYNCED_FULL: 1, Outcome.SYNCED: 1}  # the account, the tag
    assert (await rig.run()).get(Outcome.MIRRORED, 0) >= 1
    assert (await _page(harness, "harbour"))["posts"] == []  # nothing shows before it is approved

    queue = await moderation.queue(harness.database, "harbour")
    assert len(queue) == 6 and all(item.username is None for item in queue)
    spam = next(i for i in queue if "SPÄM" in (i.caption or ""))
    assert spam.state == PostState.REJECTED and spam.decided_by == "block word spam"
    approved = [i.ig_media_id for i in queue if i is not spam][:4]
    rejected = next(i.ig_media_id for i in queue if i is not spam and i.ig_media_id not in approved)
    await moderation.decide(harness.database, "harbour", approved, PostState.APPROVED, by="ada")
    await moderation.decide(harness.database, "harbour", [rejected], PostState.REJECTED, by="ada")
    with pytest.raises(Exception, match="nothing was changed"):
        await moderation.decide(harness.database, "harbour", ["17000000000000001"], PostState.APPROVED, by="ada")
    shown = await _page(harness, "harbour")
    assert sorted(p["id"] for p in shown["posts"]) == sorted(approved)
    assert all(p["username"] is None and p["account"] is None for p in shown["posts"])
    assert all(p["source"] == {"kind": "hashtag", "name": "harbourlight"} for p in shown["posts"])
    assert all(p["fallback"]["url"].startswith("/media/sources/") for p in shown["posts"])

    # Three days on: recent_media returns none of them, their CDN URLs have expired; the feed is unchanged.
    sandbox.control.advance(3 * 86_400 + 3600)
    await _due(harness, source.id)
    searches = len(sandbox.control.calls(endpoint="hashtag_search"))
    assert (await harness.sync_sources()).get(Outcome.SYNCED) == 1
    assert len(sandbox.control.calls(endpoint="hashtag_search")) == searches  # the id was kept
    recent = sandbox.control.calls(endpoint="recent_media")[-1]
    assert recent["outcome"] == "ok"
    token = sandbox.control._call("POST", "/facebook/tokens", {"account": MANAGER})["access_token"]
    me = sandbox.control.account(MANAGER)["ig_id"]
    tag_id = sandbox.control._call("GET", "/hashtags/harbourlight")["id"]
    assert httpx.get(f"{sandbox.base_url}/graph.facebook.com/v25.0/{tag_id}/recent_media",
                     params={"user_id": me, "fields": "id", "access_token": token}).json()["data"] == []
    later = await _page(harness, "harbour")
    assert [p["id"] for p in later["posts"]] == [p["id"] for p in shown["posts"]]
    for post in later["posts"]:
        assert (await rig.storage.get(post["fallback"]["url"].removeprefix("/media/"))) is not None


@pytest.mark.parametrize("videos", [True, False])
@pytest.mark.parametrize("storage", ["local"], indirect=True)
async def test_a_hashtag_video_gets_a_poster_from_its_first_frame_when_videos_are_mirrored(rig, harness, sandbox,
                                                                                           videos):
    """Hashtag edges give a video no thumbnail_url: with videos mirrored, the poster is the video's own first frame
    (decoded from the stored file, rendered with colours and a placeholder); without, the post is a video tile."""
    via = f"@{(await harness.connect_facebook(MANAGER)).first.username}"
    sandbox.control._call("PATCH", "/hashtags/tidepool", {"posts_per_day": 0})
    for _ in range(2):
        sandbox.control._call("POST", "/hashtags/tidepool/media", {"media_type": "VIDEO"})
    sandbox.control._call("POST", "/hashtags/tidepool/media", {"media_type": "CAROUSEL_ALBUM",
                                                               "children": ["VIDEO", "IMAGE"]})
    source = await sources.add_hashtag(harness.database, harness.vault, harness.clients, "tidepool", via=via)
    await feed_service.create(harness.database, feed_service.FeedSpec("Tide", "tide", (), sources=(source.id,),
                                                                      moderation="open"))
    await harness.sync_sources()
    assert (await rig.run(videos=videos)).get(Outcome.MIRRORED, 0) >= 1
    page = await _page(harness, "tide")
    assert len(page["posts"]) == 3
    if not videos:  # nothing to make a poster from: the two videos are video tiles, the album shows its picture
        assert sorted(p["fallback"] is None for p in page["posts"]) == [False, True, True]
        assert all(p["video"] is None for p in page["posts"])
        return

    async with harness.database.read() as session:
        files = list((await session.execute(select(MediaFile).where(MediaFile.source_id == source.id,
                                                                    MediaFile.variant == ""))).scalars())
    videos = {f.ig_media_id: f for f in files if f.role == "video"}
    posters = {f.ig_media_id: f for f in files if f.role == "poster"}
    assert len(videos) == 3 and set(posters) == set(videos)  # two videos and the album's video child
    for ig_id, poster in posters.items():
        assert poster.content_type == "image/jpeg" and poster.placeholder and poster.color
        video = await rig.storage.get(videos[ig_id].storage_key)
        made = Image.open(io.BytesIO(await rig.storage.get(poster.storage_key)))
        # The frame the sandbox encoded: the same scene, so the same size and nearly the same colours.
        frame = next(av.open(io.BytesIO(video)).decode(video=0)).to_image()
        assert made.size == frame.size == (poster.width, poster.height)
        difference = ImageStat.Stat(ImageChops.difference(made.convert("RGB"), frame)).mean
        assert max(difference) < 6, difference
    page = await _page(harness, "tide")
    assert all(p["fallback"]["url"].startswith("/media/sources/") for p in page["posts"])
    assert all(p["video"]["url"].endswith(".mp4") for p in page["posts"])  # the album's first child is its video
