"""Incremental sync of profiles and media against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from filmroll.store import media as media_store
from filmroll.store.tables import Account, Event, MediaChild, MediaItem, Source
from tests.seeding import index_with, seed_accounts

pytestmark = pytest.mark.anyio


async def test_first_sync_stores_profile_and_every_post_with_children(harness, sandbox):
    index = index_with(sandbox, 40, 80)
    (account_id,) = await harness.seed([index])
    assert await harness.sync() == {"synced_full": 1}
    stored = await harness.media(account_id)
    assert [m.ig_media_id for m in stored] == sandbox.control.media_ids(index, limit=200)
    async with harness.database.read() as session:
        account = await session.get(Account, account_id)
        children = list((await session.execute(select(MediaChild))).scalars())
    profile = sandbox.control.account(index)
    source = await harness.source(account_id)
    assert account.username == profile["username"] and account.media_count == profile["media_count"]
    assert source.last_synced_at is not None and source.next_sync_at > datetime.now(UTC) + timedelta(minutes=9)
    albums = [m for m in stored if m.media_type == "CAROUSEL_ALBUM"]
    assert sum(m.children_count for m in albums) == len(children) > 0
    assert sandbox.control.calls(endpoint="children") == []  # children came inline, no call per album


async def test_the_documented_wrapped_me_still_yields_every_post(harness, sandbox):
    """``/me`` as the Get-started page documents it, ``{"data": [{…, "media": {…}}]}``: the media edge is inside the
    wrapped profile, and every post is stored (0 of them were, when the edge was looked for beside ``data``)."""
    sandbox.control.switches(me_response="data")
    index = index_with(sandbox, 40, 80)
    (account_id,) = await harness.seed([index])
    assert await harness.sync() == {"synced_full": 1}
    assert [m.ig_media_id for m in await harness.media(account_id)] == sandbox.control.media_ids(index, limit=200)
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}  # and the routine sync reads the same edge: nothing vanishes
    assert len(await harness.media(account_id)) == sandbox.control.account(index)["media_count"]


async def test_an_unchanged_account_costs_one_call_and_writes_nothing(harness, sandbox):
    (account_id,) = await harness.seed([index_with(sandbox, 30, 80)])
    await harness.sync()
    before = [(m.id, m.updated_at) for m in await harness.media(account_id)]
    sandbox.control.clear_calls()
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    assert len(sandbox.control.calls()) == 1
    assert [(m.id, m.updated_at) for m in await harness.media(account_id)] == before


async def test_an_unchanged_page_is_not_even_read_from_the_database(harness, sandbox):
    from sqlalchemy import event

    index = index_with(sandbox, 30, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engines = {harness.database.engine.sync_engine, harness.database.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        await harness.due([account_id])
        assert await harness.sync() == {"synced": 1}
        touching_media = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+media\b", re.IGNORECASE)
        assert statements and not [s for s in statements if touching_media.search(s)]  # fingerprint matched
        # A changed like count on the newest page changes the fingerprint: the page's posts are read, that one
        # updated in place.
        newest = sandbox.control.media_ids(index, limit=1)[0]
        sandbox.control.media(newest, like_count=987_654)
        statements.clear()
        await harness.due([account_id])
        assert await harness.sync() == {"synced": 1}
        assert [s for s in statements if s.lstrip().upper().startswith("UPDATE MEDIA SET")]
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert {m.ig_media_id: m.like_count for m in await harness.media(account_id)}[newest] == 987_654


async def test_new_counts_and_an_edited_caption_on_the_newest_page_cost_one_call(harness, sandbox):
    index = index_with(sandbox, 30, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    before = await harness.media_map(account_id)
    liked, edited = sandbox.control.media_ids(index, limit=3)[1:3]
    sandbox.control.media(liked, like_count=before[liked].like_count + 7, comments_count=3)
    sandbox.control.media(edited, caption="Better words, same photo")
    sandbox.control.clear_calls()
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    assert [c["endpoint"] for c in sandbox.control.calls()] == ["user"]
    after = await harness.media_map(account_id)
    assert (after[liked].like_count, after[liked].comments_count) == (before[liked].like_count + 7, 3)
    assert after[edited].caption == "Better words, same photo"
    moved = {i for i in after if after[i].updated_at != before[i].updated_at}
    assert moved == {liked, edited}
    # Columns the narrow page does not carry are kept as stored, never blanked.
    for ig_id in (liked, edited):
        assert after[ig_id].media_url == before[ig_id].media_url is not None
        assert after[ig_id].timestamp == before[ig_id].timestamp and after[ig_id].shortcode == before[ig_id].shortcode
    # The next routine sync sees its own fingerprint again: one call, nothing written.
    sandbox.control.clear_calls()
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    assert len(sandbox.control.calls()) == 1
    assert {i: m.updated_at for i, m in (await harness.media_map(account_id)).items()} == {
        i: m.updated_at for i, m in after.items()}


async def test_a_new_post_is_picked_up_incrementally(harness, sandbox):
    index = index_with(sandbox, 30, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    new = sandbox.control.add_media(index, caption="Fresh from the oven", media_type="CAROUSEL_ALBUM",
                                    children=["IMAGE", "VIDEO"])
    sandbox.control.clear_calls()
    await harness.due([account_id])
    await harness.sync()
    # The routine call shows a post we do not have; the newest page is read again with every field, once.
    assert [c["endpoint"] for c in sandbox.control.calls()] == ["user", "media_list"]
    newest = (await harness.media(account_id))[0]
    assert newest.ig_media_id == new["id"] and newest.caption == "Fresh from the oven" and newest.children_count == 2
    assert newest.media_url is not None and newest.timestamp is not None and newest.permalink is not None
    sandbox.control.clear_calls()
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    assert len(sandbox.control.calls()) == 1  # the page stored is the page a routine sync fingerprints


async def test_the_full_pass_finds_deleted_and_edited_posts(harness, sandbox):
    index = index_with(sandbox, 30, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    ids = sandbox.control.media_ids(index, limit=100)
    sandbox.control.delete_media(ids[-1])  # an old post, far below the first page
    sandbox.control.media(ids[-2], caption="Edited years later")
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}  # the incremental sync cannot see that far back
    assert len(await harness.media(account_id)) == len(ids)
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"synced_full": 1}
    live = {m.ig_media_id: m for m in await harness.media(account_id)}
    assert ids[-1] not in live and live[ids[-2]].caption == "Edited years later"
    everything = {m.ig_media_id: m for m in await harness.media(account_id, live=False)}
    assert everything[ids[-1]].deleted_at is not None  # marked, never erased


def _asked_by_id(sandbox) -> int:
    """Reads of one post by id: "media", or "graph:node" for an id Instagram no longer knows."""
    return len(sandbox.control.calls(endpoint="media")) + len(sandbox.control.calls(endpoint="graph:node"))


@pytest.mark.parametrize("listing", ["empty", "truncated"])
async def test_a_full_pass_over_an_empty_listing_deletes_nothing_and_says_so(harness, sandbox, listing):
    """Instagram's profile counts the posts while its listing shows none (empty pages that carry ``next``, or a
    newest page without items or ``next``): the daily full pass used to mark every stored post deleted and
    succeed, and a feed went blank until the next pass. Nothing is marked, the sync fails and says why."""
    index = index_with(sandbox, 30, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    stored = len(await harness.media(account_id))
    sandbox.control.switches(media_listing=listing)
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"sync_retry": 1}
    assert len(await harness.media(account_id)) == stored
    source = await harness.source(account_id)
    assert "listed none" in source.sync_error and source.stale_since is not None
    sandbox.control.switches(media_listing="whole")
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"synced_full": 1}
    assert len(await harness.media(account_id)) == stored


async def test_a_listing_cut_short_deletes_only_what_instagram_confirms_gone(harness, sandbox):
    """A full pass that could not read the listing to its end (here: a page limit) asks Instagram about each post
    it did not see, by id: the ones still there are kept, the one really deleted is marked."""
    from filmroll.service.policy import SyncPolicy

    index = index_with(sandbox, 60, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    ids = sandbox.control.media_ids(index, limit=200)
    sandbox.control.delete_media(ids[-1])
    sandbox.control.clear_calls()
    await harness.due([account_id], full=True)
    assert await harness.sync(policy=SyncPolicy(page_size=25, max_pages=2)) == {"synced_full": 1}
    live = {m.ig_media_id for m in await harness.media(account_id)}
    assert live == set(ids[:-1])  # the 10+ posts past page 2 were asked about, and kept
    assert _asked_by_id(sandbox) == len(ids) - 50


async def test_many_posts_gone_at_once_are_each_confirmed_before_they_are_marked(harness, sandbox):
    index = index_with(sandbox, 40, 80)
    (account_id,) = await harness.seed([index])
    await harness.sync()
    ids = sandbox.control.media_ids(index, limit=200)
    for media_id in ids[5:15]:  # a quarter of the account, beyond the share marked without asking
        sandbox.control.delete_media(media_id)
    sandbox.control.clear_calls()
    await harness.due([account_id], full=True)
    assert await harness.sync() == {"synced_full": 1}
    assert {m.ig_media_id for m in await harness.media(account_id)} == set(ids[:5] + ids[15:])
    assert _asked_by_id(sandbox) == 10


async def test_several_workers_never_duplicate_a_post(harness, sandbox):
    ids = await harness.seed([index_with(sandbox, 20, 80), 1, 2, 3, 4, 5])
    for _ in range(3):
        await harness.due(ids, full=True)
        await harness.sync(owners=4)
    async with harness.database.read() as session:
        rows = list((await session.execute(select(MediaItem.source_id, MediaItem.ig_media_id))).all())
    assert len(rows) == len(set(rows))
    for account_id in ids:
        source = await harness.source(account_id)
        async with harness.database.read() as session:
            account = await session.get(Account, account_id)
            assert await media_store.count(session, source.id) == account.media_count


async def test_a_revoked_token_marks_the_account_and_stops_syncing_it(harness, sandbox):
    (account_id,) = await harness.seed([3])
    sandbox.control.revoke(3, "app_removed")
    assert await harness.sync() == {"needs_reauth": 1}
    async with harness.database.read() as session:
        account = await session.get(Account, account_id)
    assert account.status == "needs_reauth" and "removed the app" in account.status_reason
    assert (await harness.source(account_id)).stale_since is not None
    await harness.due([account_id])
    assert await harness.sync() == {}


async def test_throttling_and_failures_postpone_and_mark_the_feed_stale(harness, sandbox):
    (first, second) = await harness.seed([1, 2])
    sandbox.control.throttle(1, minutes=20)
    sandbox.control.add_fault("status", endpoint="user", account=sandbox.control.account(2)["ig_id"], status=503)
    assert await harness.sync() == {"sync_throttled": 1, "sync_retry": 1}
    throttled, failing = await harness.source(first), await harness.source(second)
    assert throttled.next_sync_at > datetime.now(UTC) + timedelta(minutes=19) and throttled.sync_failures == 0
    assert failing.sync_failures == 1 and "TransientError" in failing.sync_error
    assert throttled.stale_since is not None and failing.stale_since is not None


async def test_a_feed_going_stale_and_current_again_writes_one_event_each_way(harness, sandbox):
    (account_id,) = await harness.seed([2])
    assert await harness.sync() == {"synced_full": 1}
    sandbox.control.add_fault("status", endpoint="user", status=503, times=2)
    for _ in range(2):  # the second failure is not a new state
        await harness.due([account_id])
        assert await harness.sync() == {"sync_retry": 1}
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}  # a routine sync of a current feed: no event
    async with harness.database.read() as session:
        kinds_and_messages = (await session.execute(select(Event.kind, Event.message).where(
            Event.account_id == account_id, Event.kind.like("sync.%")).order_by(Event.id))).all()
    account = await harness.source(account_id)
    assert [kind for kind, _ in kinds_and_messages] == ["sync.failing", "sync.recovered"]
    assert "TransientError" in kinds_and_messages[0][1] and "works again" in kinds_and_messages[1][1]
    assert account.stale_since is None and account.sync_failures == 0 and account.sync_error is None


async def test_a_busy_account_is_synced_less_often(harness, sandbox):
    sandbox.control.rate_limits(account_calls=10, window=3600)
    index = index_with(sandbox, 1, 20)
    (account_id,) = await harness.seed([index])
    for _ in range(8):  # use up most of the account's budget
        await harness.instagram.me(_token(harness, sandbox, index))
    await harness.sync()
    account = await harness.source(account_id)
    assert account.usage_percent >= 90
    assert account.next_sync_at - account.last_synced_at > timedelta(minutes=25)


def _token(harness, sandbox, index):
    from filmroll.secret import Secret

    return Secret(sandbox.control.mint_token(index)["access_token"])


async def test_insights_snapshots_with_the_permission_only(harness, sandbox):
    from filmroll.store.tables import InsightSnapshot

    index = index_with(sandbox, 12, 80)
    (with_permission,) = await seed_accounts(harness.database, harness.vault, sandbox, 1, first=index, due=False,
                                             permissions=("instagram_business_basic",
                                                          "instagram_business_manage_insights"))
    (without,) = await seed_accounts(harness.database, harness.vault, sandbox, 1, first=index + 1, due=False)
    await harness.due([with_permission, without])
    await harness.sync()
    async with harness.database.read() as session:
        everything = list((await session.execute(select(InsightSnapshot))).scalars())
    # The profile's counts are kept a day at a time for every account, whatever its permissions (the sync reads
    # them anyway); Instagram's insights only for the account that may read them.
    history = {"followers_count", "follows_count", "media_count"}
    assert {(r.account_id, r.metric) for r in everything if r.metric in history} == {
        (a, m) for a in (with_permission, without) for m in history}
    rows = [r for r in everything if r.metric not in history]
    account = await harness.source(with_permission)
    assert {r.account_id for r in rows} == {with_permission}
    account_rows = [r for r in rows if r.ig_media_id == ""]
    assert {r.metric for r in account_rows} == {"reach", "accounts_engaged", "total_interactions", "likes",
                                                "comments", "views"}
    assert len({r.ig_media_id for r in rows if r.ig_media_id}) >= 5  # newest posts (some may lack insights)
    assert account.insights_at is not None
    insight_calls = [c for c in sandbox.control.calls() if c["endpoint"] in ("user_insights", "media_insights")]
    assert {c["account"] for c in insight_calls} == {sandbox.control.account(index)["ig_id"]}
    # Within the interval: no new insight calls. A re-take the same day replaces, never duplicates.
    sandbox.control.clear_calls()
    await harness.due([with_permission])
    await harness.sync()
    assert not [c for c in sandbox.control.calls() if c["endpoint"].endswith("insights")]
    async with harness.database.transaction() as session:
        await session.execute(update(Source).where(Source.account_id == with_permission)
                              .values(insights_at=datetime.now(UTC) - timedelta(days=2)))
    await harness.due([with_permission])
    await harness.sync()
    async with harness.database.read() as session:
        again = list((await session.execute(select(InsightSnapshot))).scalars())
    assert len(again) == len(everything)


HOSTILE = {  # what Instagram's JSON can carry, each in a caption (valid JSON escapes, not all valid text)
    "lone high surrogate \ud800 here": "lone high surrogate \ufffd here",
    "lone low surrogate \udfff here": "lone low surrogate \ufffd here",
    "reversed pair \ude00\ud83d": "reversed pair \ufffd\ufffd",
    "a NUL\x00 inside": "a NUL inside",
    "an emoji pair \U0001f600 and a family \U0001f468\u200d\U0001f469\u200d\U0001f467": None,
    "right-to-left \u202eoverride\u202c and \ufeffBOM": None,
    "</script><img src=x onerror=alert(1)> & \"quotes\"": None,
    "long " + "é" * 2_190: None,
}


async def test_every_kind_of_hostile_text_from_instagram_is_stored_as_valid_text(harness, sandbox):
    """A lone surrogate in a caption (valid JSON) once made every sync of its account crash at the store, logged as
    "failed unexpectedly", with no sync_error: the account silently stopped syncing."""
    index = index_with(sandbox, 10, 40)
    ids = sandbox.control.media_ids(index, limit=len(HOSTILE))
    for media_id, caption in zip(ids, HOSTILE, strict=True):
        sandbox.control.media(media_id, caption=caption)
    sandbox.control.account(index, name="Caf\ud800 \x00name")
    (account_id,) = await harness.seed([index])
    assert await harness.sync() == {"synced_full": 1}
    stored = {m.ig_media_id: m.caption for m in await harness.media(account_id)}
    for media_id, (sent, expected) in zip(ids, HOSTILE.items(), strict=True):
        assert stored[media_id] == (expected or sent), media_id
        stored[media_id].encode("utf-8")  # storable everywhere: no surrogate, no NUL
        assert "\x00" not in stored[media_id]
    account, source = (await harness.accounts())[account_id], await harness.source(account_id)
    assert account.name == "Caf\ufffd name" and source.sync_error is None and source.sync_failures == 0
    # Unchanged, the next sync is the routine one (one call), not a crash on the same caption again.
    await harness.due([account_id])
    assert await harness.sync() == {"synced": 1}
