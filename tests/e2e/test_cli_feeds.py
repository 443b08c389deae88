"""`filmroll feeds create|list|show|edit|delete` as a person (or a script) runs them: real processes, on SQLite and
PostgreSQL. A bad value gets a specific message, exit status 8, and changes nothing."""

from __future__ import annotations

import json

import pytest


def _connect(cli, sandbox, index: int) -> str:
    cli("connect", "--token", stdin=sandbox.control.mint_token(index, kind="long")["access_token"] + "\n")
    return sandbox.control.account(index)["username"]


# The commands are what this proves; the feeds' queries meet PostgreSQL in tests/integration/web/test_feeds.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_make_look_at_change_and_delete_feeds(cli, sandbox):
    first = _connect(cli, sandbox, 3)
    second = _connect(cli, sandbox, 4)
    assert "no feeds yet" in cli("feeds", "list").stdout

    # Made before any sync: the feed fills as the posts arrive.
    made = json.loads(cli("feeds", "create", "Our Bakeries — Shop", "--account", f"@{first}", "--account", second,
                          "--limit", "9", "--json").stdout)
    assert made["slug"] == "our-bakeries-shop" and made["accounts"] == [f"@{first}", f"@{second}"]
    assert made["post_limit"] == 9 and made["allowed_origins"] == ["*"] and made["reels"] is True
    assert made["urls"]["json"].endswith("/feeds/our-bakeries-shop.json")
    human = cli("feeds", "show", "our-bakeries-shop").stdout
    assert '<script type="module" src="' in human and "<filmroll-feed src=" in human  # the two lines for a page

    edited = json.loads(cli("feeds", "edit", "our-bakeries-shop", "--slug", "bakeries", "--no-reels",
                            "--type", "image", "--type", "CAROUSEL_ALBUM", "--include-hashtag", "#Bread",
                            "--origin", "https://www.example.org", "--pin", "111", "--pin", "222",
                            "--hide", "333", "--json").stdout)
    assert edited["slug"] == "bakeries" and edited["reels"] is False
    assert edited["media_types"] == ["IMAGE", "CAROUSEL_ALBUM"] and edited["include_hashtags"] == ["bread"]
    assert edited["allowed_origins"] == ["https://www.example.org"]
    assert edited["pinned"] == ["111", "222"] and edited["hidden"] == ["333"]
    again = json.loads(cli("feeds", "edit", "bakeries", "--pin", "444", "--unpin", "111", "--unhide", "333",
                           "--json").stdout)
    assert again["pinned"] == ["444", "222"] and again["hidden"] == [] and again["post_limit"] == 9  # the rest kept

    before = cli("feeds", "show", "bakeries", "--json").stdout
    for args, words in ((("--limit", "0"), "post limit"), (("--origin", "https://example.org/path"), "not an origin"),
                        (("--origin", "*.example.org"), "not an origin"), (("--type", "STORY"), "media types"),
                        (("--include-hashtag", "two words"), "not a hashtag"), (("--slug", "Bad Slug"), "not a slug"),
                        (("--account", "@nobody"), "no connected account")):
        refused = cli("feeds", "edit", "bakeries", *args, check=False)
        assert refused.returncode in (8, 3) and words in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert cli("feeds", "show", "bakeries", "--json").stdout == before  # nothing changed
    taken = cli("feeds", "create", "Bakeries", "--account", first, check=False)
    assert taken.returncode == 8 and "already" in taken.stderr

    listing = json.loads(cli("feeds", "list", "--json").stdout)
    assert [f["slug"] for f in listing] == ["bakeries"]
    assert cli("feeds", "show", "nothing", check=False).returncode == 3
    cli("feeds", "delete", "bakeries", "--yes")
    assert json.loads(cli("feeds", "list", "--json").stdout) == []
    assert cli("feeds", "delete", "bakeries", "--yes", check=False).returncode == 3
