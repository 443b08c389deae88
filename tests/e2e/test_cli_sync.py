"""`filmroll sync` and the sync columns of `filmroll accounts`, as a person runs them: real processes against the
sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from tests.seeding import index_with


def _listing(cli) -> dict:
    (account,) = json.loads(cli("accounts", "--json").stdout)
    account.pop("token_expires_in_seconds")  # counts down between two reads
    return account


@pytest.mark.slow
def test_sync_an_account_now_and_choose_how_often_it_is_synced(cli, sandbox):
    index = index_with(sandbox, 30, 80)
    cli("connect", "--token", stdin=sandbox.control.mint_token(index, kind="long")["access_token"] + "\n")
    username, posts = sandbox.control.account(index)["username"], sandbox.control.account(index)["media_count"]
    before = _listing(cli)
    assert before["posts"] == 0 and before["last_synced_at"] is None
    assert (before["sync_interval_minutes"], before["sync_interval_is_default"]) == (10, True)

    out = cli("sync", f"@{username}").stdout
    assert re.search(rf"@{username} synced in full: {posts} posts stored \(\+{posts}\), Instagram reports {posts};"
                     r" next sync in 10 min", out), out
    after = _listing(cli)
    assert after["posts"] == after["media_count"] == posts and after["sync_error"] is None
    assert f"{posts} / {posts}" in cli("accounts").stdout
    assert "synced: " in cli("sync", username).stdout  # a routine sync this time: nothing new

    cli.env["FILMROLL_SYNC__INTERVAL_MINUTES"] = "15"  # the deployment's default
    assert _listing(cli)["sync_interval_minutes"] == 15
    out = cli("sync", username, "--interval-minutes", "30").stdout
    assert f"@{username} is synced every 30 min; next sync in 30 min" in out
    chosen = _listing(cli)
    assert (chosen["sync_interval_minutes"], chosen["sync_interval_is_default"]) == (30, False)
    assert type(chosen["sync_interval_minutes"]) is int
    gap = datetime.fromisoformat(chosen["next_sync_at"]) - datetime.fromisoformat(chosen["last_synced_at"])
    assert gap == timedelta(minutes=30)

    # Bad input: a clear message, a usage exit status, and nothing changed.
    for args, words in ((("--interval-minutes", "0"), "greater than or equal to 1"),
                        (("--interval-minutes", "5", "--default-interval"), "not both"),
                        (("--full", "--interval-minutes", "5"), "give one")):
        refused = cli("sync", username, *args, check=False)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
    assert _listing(cli) == chosen
    cli.env["FILMROLL_SYNC__INTERVAL_MINUTES"] = "0"
    refused = cli("accounts", check=False)
    assert refused.returncode == 2 and "SYNC__INTERVAL_MINUTES" in refused.stderr
    cli.env["FILMROLL_SYNC__INTERVAL_MINUTES"] = "15"

    assert "every 15 min (the default)" in cli("sync", username, "--default-interval").stdout
    assert _listing(cli)["sync_interval_is_default"] is True
    assert cli("sync", "@nobody", check=False).returncode == 3


def test_syncing_an_account_whose_token_died_says_so(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(31, kind="long")["access_token"] + "\n")
    username = sandbox.control.account(31)["username"]
    sandbox.control.revoke(31, "password_changed")
    failed = cli("sync", username, check=False)
    assert failed.returncode == 5 and "was not synced: its token no longer works" in failed.stderr
    assert "password" in failed.stderr
    listing = _listing(cli)
    assert listing["status"] == "needs_reauth" and listing["stale_since"] is not None
    again = cli("sync", username, check=False)
    assert again.returncode == 5 and "needs reauth" in again.stderr and "reconnect it first" in again.stderr


def test_a_sync_that_lists_no_posts_where_instagram_counts_them_fails_and_changes_nothing(cli, sandbox):
    """It used to store 0 of the posts and exit 0 (a wrapped /me hid the media edge; a listing came back empty)."""
    cli("connect", "--token", stdin=sandbox.control.mint_token(32, kind="long")["access_token"] + "\n")
    username = sandbox.control.account(32)["username"]
    count = sandbox.control.account(32)["media_count"]
    sandbox.control.switches(me_response="data")  # the documented shape, with the edge inside it
    cli("sync", username, "--full")
    assert _listing(cli)["posts"] == count
    sandbox.control.switches(media_listing="truncated")
    failed = cli("sync", username, "--full", check=False)
    assert failed.returncode == 4 and f"counts {count} posts" in failed.stderr and "listed none" in failed.stderr
    after = _listing(cli)
    assert after["posts"] == count and after["stale_since"] is not None and "listed none" in after["sync_error"]
