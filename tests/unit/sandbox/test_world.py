from filmroll.sandbox.world import MEDIA_CAP, World


def _world(seed=5):
    return World(seed, 1000, 1_800_000_000, {7: 12_000})


def test_same_seed_same_accounts_and_media():
    a, b = _world(), _world()
    assert a.account(3) == b.account(3)
    assert a.timeline(3).keys == b.timeline(3).keys
    assert _world(6).account(3) != a.account(3)


def test_timeline_is_strictly_newest_first_and_before_the_anchor():
    world = _world()
    for index in range(50):
        keys = world.timeline(index).keys
        stamps = [-k[0] for k in keys]
        assert stamps == sorted(stamps, reverse=True)
        assert len(set(stamps)) == len(stamps)
        assert all(ts < world.anchor for ts in stamps)


def test_large_account_exceeds_the_cap():
    world = _world()
    assert world.media_count(7) == 12_000 > MEDIA_CAP


def test_usernames_resolve_back_to_accounts():
    world = _world()
    for index in (0, 1, 42, 999):
        account = world.account(index)
        assert world.account_by_username(account.username) == account
    assert world.account_by_username("golden_bakery99999") is None
    assert world.account(1000) is None and world.account(-1) is None


def test_overlays_add_edit_delete():
    world = _world()
    before = world.media_count(2)
    added = world.add_media(2, timestamp=world.anchor + 10, media_type="IMAGE", product_type="FEED",
                            caption="new", children=[])
    assert world.timeline(2).keys[0] == (-added.timestamp, -int(added.id))
    victim = str(-world.timeline(2).keys[1][1])
    world.delete_media(victim)
    assert world.media(victim) is None and world.media_count(2) == before
    world.edit_media(added.id, {"caption": "edited"})
    assert world.media(added.id).caption == "edited"


def test_album_children_belong_to_their_parent():
    world = _world()
    for index in range(30):
        for key in world.timeline(index).keys:
            media = world.media_at(index, key)
            for child in media.children:
                assert world.child(child.id).parent_id == media.id
