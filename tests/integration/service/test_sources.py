"""Hashtag and profile sources through a Facebook Login account, against the sandbox over loopback HTTP: the quota
kept before any call, hashtag ids searched once and kept, bad input refused with nothing changed and nothing sent,
Business Discovery's (#110), and a profile's every post stored with its author."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from filmroll import errors
from filmroll.service import sources
from filmroll.storage import open_storage
from filmroll.store.tables import MediaItem, Source
from filmroll.vocabulary import SourceKind

pytestmark = pytest.mark.anyio

MANAGER = 31


def _searches(sandbox) -> int:
    return len(sandbox.control.calls(endpoint="hashtag_search"))


async def _facebook_account(harness, sandbox) -> str:
    connection = await harness.connect_facebook(MANAGER)
    return f"@{connection.first.username}"


async def test_a_hashtag_is_searched_once_and_its_id_kept_past_its_source(harness, sandbox, tmp_path):
    via = await _facebook_account(harness, sandbox)
    added = await sources.add_hashtag(harness.database, harness.vault, harness.clients, "#SourDough", via=via)
    assert added.created and added.name == "#sourdough" and added.kind == SourceKind.HASHTAG
    again = await sources.add_hashtag(harness.database, harness.vault, harness.clients, "sourdough", via=via)
    assert not again.created and again.id == added.id
    assert _searches(sandbox) == 1
    removed = await sources.remove(harness.database, open_storage(f"file:{tmp_path}"), "#sourdough")
    assert removed.id == added.id
    assert not [s for s in await sources.listing(harness.database) if s.kind == SourceKind.HASHTAG]
    readded = await sources.add_hashtag(harness.database, harness.vault, harness.clients, "sourdough", via=via)
    assert readded.created
    assert _searches(sandbox) == 1  # the kept id: re-adding it searched nothing


async def test_the_31st_unique_tag_in_seven_days_is_refused_before_any_call(harness, sandbox):
    via = await _facebook_account(harness, sandbox)
    for n in range(30):
        await sources.add_hashtag(harness.database, harness.vault, harness.clients, f"tag{n}x", via=via)
    calls = len(sandbox.control.calls())
    with pytest.raises(errors.HashtagQuotaError) as refused:
        await sources.add_hashtag(harness.database, harness.vault, harness.clients, "onetoomany", via=via)
    assert len(sandbox.control.calls()) == calls  # nothing reached the sandbox
    now = harness.database.clock.now()
    assert timedelta(days=6, hours=23) < refused.value.frees_at - now <= timedelta(days=7)
    assert f"{refused.value.frees_at:%Y-%m-%d}" in refused.value.message
    view = await sources.quota(harness.database, harness.vault, harness.clients, via)
    assert view.used == 30 and view.limit == 30 and view.tags[0][0] == "tag0x"
    async with harness.database.read() as session:
        assert len((await session.execute(select(Source).where(Source.kind == SourceKind.HASHTAG))).all()) == 30


@pytest.mark.parametrize("name", ["", "#", "x" * 200, "two words", "tag!", "1234"])
async def test_a_tag_instagram_could_not_find_is_refused_with_nothing_sent(harness, sandbox, name):
    via = await _facebook_account(harness, sandbox)
    calls = len(sandbox.control.calls())
    with pytest.raises(errors.InputError):
        await sources.add_hashtag(harness.database, harness.vault, harness.clients, name, via=via)
    assert len(sandbox.control.calls()) == calls
    assert not [s for s in await sources.listing(harness.database) if s.kind != SourceKind.ACCOUNT]


async def test_via_must_be_a_known_facebook_login_account(harness, sandbox):
    instagram = (await harness.seed([40]))[0]
    calls = len(sandbox.control.calls())
    with pytest.raises(errors.InputError, match="Instagram Login"):
        await sources.add_hashtag(harness.database, harness.vault, harness.clients, "bread", via=str(instagram))
    with pytest.raises(errors.AccountNotFoundError):
        await sources.add_hashtag(harness.database, harness.vault, harness.clients, "bread", via="@nobody_here")
    assert len(sandbox.control.calls()) == calls


async def test_a_profile_source_keeps_every_post_with_its_author(harness, sandbox):
    via = await _facebook_account(harness, sandbox)
    target = next(a for a in sandbox.control.accounts(limit=60)["data"] if 60 <= a["media_count"] <= 80)
    sandbox.control.account(41, account_type="PERSONAL")
    personal = sandbox.control.account(41)["username"]
    with pytest.raises(errors.ProfileNotFoundError):
        await sources.add_profile(harness.database, harness.vault, harness.clients, personal, via=via)
    added = await sources.add_profile(harness.database, harness.vault, harness.clients, target["username"], via=via)
    assert added.name == f"@{target['username']}"
    await harness.sync_sources()
    async with harness.database.read() as session:
        stored = list((await session.execute(select(MediaItem).where(MediaItem.source_id == added.id))).scalars())
        source = await session.get(Source, added.id)
    assert len(stored) == target["media_count"]
    assert {m.username for m in stored} == {target["username"]}
    assert source.profile["username"] == target["username"] and source.profile["media_count"]
    assert source.sync_error is None and source.full_synced_at is not None
