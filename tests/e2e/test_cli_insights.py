"""`filmroll insights` as a person runs it: a real process against a database one sync has filled (today's row, the
89 days before it gaps), with `--json` and the README's exit codes for bad input. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow
INDEX = 14


def test_insights_prints_a_row_a_day_with_gaps_and_the_posts_rated(cli, sandbox):
    sandbox.control.add_media(INDEX, caption="Today's loaves")
    # An imported token's permissions are unknown: no insights call is made, so posts are rated by their counters
    # over the followers (the integration test covers the reach).
    cli("connect", "--token", stdin=sandbox.control.mint_token(INDEX, kind="long")["access_token"] + "\n")
    account = sandbox.control.account(INDEX)
    cli("sync", account["username"])

    found = json.loads(cli("insights", f"@{account['username']}", "--json").stdout)
    assert found["username"] == account["username"] and len(found["days"]) == 90
    today, before = found["days"][-1], found["days"][:-1]
    assert today["partial"] is True and today["followers_count"] == account["followers_count"]
    assert today["follows_count"] == account["follows_count"] and today["media_count"] == account["media_count"]
    assert all(d["followers_count"] is None and not d["partial"] for d in before)  # gaps, never invented
    assert found["posts"][0]["caption"] == "Today's loaves"
    for post in found["posts"]:
        assert post["reach"] is None and post["rate_basis"] == "followers" and post["measured_on"] is None
        assert post["engagements"] == (post["likes"] or 0) + (post["comments"] or 0)
        assert post["engagement_rate"] == pytest.approx(post["engagements"] / account["followers_count"])
    week = json.loads(cli("insights", account["username"], "--days", "7", "--json").stdout)
    assert week["days"] == found["days"][-7:]

    shown = cli("insights", f"@{account['username']}", "--days", "14").stdout
    assert "14 days, 1 with a snapshot" in shown and f"{account['followers_count']:,}" in shown
    assert "(so far)" in shown and "of followers" in shown

    for args, code, said in ((("@nobody_at_all",), 3, "no connected account"),
                             (("@" + account["username"], "--days", "0"), 8, "--days must be between 1 and 3660"),
                             (("not a reference",), 8, "is not an account reference")):
        refused = cli("insights", *args, check=False)
        assert refused.returncode == code and said in refused.stderr, (args, refused.stderr)
