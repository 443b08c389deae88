from hypothesis import given
from hypothesis import strategies as st

from filmroll.sandbox.ids import IdScheme, mix64


@given(seed=st.integers(0, 2**32), index=st.integers(0, 10**7))
def test_every_id_family_round_trips(seed, index):
    ids = IdScheme(seed)
    assert ids.ig_user.decode(ids.ig_user.encode(index)) == index
    assert ids.scoped.decode(ids.scoped.encode(index)) == index
    assert ids.media_index(ids.media_id(index, 12_345)) == (index, 12_345)
    assert ids.child_index(ids.child_id(index * 7, 9)) == (index * 7, 9)


def test_ids_look_like_instagrams():
    ids = IdScheme(1)
    ig, scoped = ids.ig_user.encode(0), ids.scoped.encode(0)
    assert ig.startswith("1784") and len(ig) == 17
    assert scoped.startswith("27") and len(scoped) == 17
    assert ids.media_id(0, 0).startswith("179") and len(ids.media_id(0, 0)) == 17


def test_ids_are_distinct_and_seed_dependent():
    a, b = IdScheme(1), IdScheme(2)
    assert len({a.ig_user.encode(i) for i in range(10_000)}) == 10_000
    assert a.ig_user.encode(5) != b.ig_user.encode(5)


def test_foreign_strings_do_not_decode():
    ids = IdScheme(3)
    for value in ("", "me", "12", "-17841400000000001", "9" * 30, "17841400000000000x"):
        assert ids.ig_user.decode(value) is None


def test_mix64_spreads():
    # 5 000 draws into 1 000 buckets fill about 993 of them when uniform
    assert len({mix64(1, i) % 1000 for i in range(5000)}) > 980
