"""``filmroll sources``, ``moderation`` and ``feeds create --hashtag/--profile`` as a person runs them: real
processes against the sandbox's Facebook half, every failure one line with the README's exit code, nothing changed
and nothing sent to Facebook."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import facebook_owner_allows, printed_url

MANAGER, OTHER = 61, 62


def _connect_facebook(cli, sandbox, account: int) -> str:
    process = cli.start("connect", "--provider", "facebook", "--paste", "--json")
    url = printed_url(process, r"/dialog/oauth\?", stderr=True)
    process.stdin.write(facebook_owner_allows(sandbox, url, account) + "\n")
    process.stdin.flush()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, (out, err)
    return json.loads(out)["account"]


def _fails(cli, *args: str) -> tuple[int, dict]:
    result: subprocess.CompletedProcess = cli(*args, "--json", check=False)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # both databases: the integration tests
def test_sources_quota_moderation_and_a_hashtag_feed_from_the_command_line(cli, sandbox):
    via = _connect_facebook(cli, sandbox, MANAGER)
    sandbox.control._call("PATCH", "/hashtags/seaglass", {"posts_per_day": 0})
    sandbox.control._call("POST", "/hashtags/seaglass/media", {"count": 3, "caption": "Found some #seaglass"})
    added = json.loads(cli("sources", "add", "hashtag", "#SeaGlass", "--via", via, "--json").stdout)
    assert added["ok"] and added["created"] and added["name"] == "#seaglass" and added["via"] == via
    quota = json.loads(cli("sources", "quota", via, "--json").stdout)
    assert quota["limit"] == 30 and quota["used"] == 1 and quota["tags"][0]["name"] == "seaglass"
    assert quota["tags"][0]["frees_at"] > quota["tags"][0]["first_searched_at"]
    listed = json.loads(cli("sources", "list", "--json").stdout)
    assert {s["name"] for s in listed} == {via, "#seaglass"}

    calls = len(sandbox.control.calls())
    for bad, code in ((["", "--via", via], 8), (["x" * 200, "--via", via], 8), (["two words", "--via", via], 8),
                      (["bread", "--via", "@nobody_here"], 3)):
        returncode, answer = _fails(cli, "sources", "add", "hashtag", *bad)
        assert (returncode, answer["exit_code"], answer["ok"]) == (code, code, False), (bad, answer)
    assert len(sandbox.control.calls()) == calls  # nothing reached Facebook
    personal = sandbox.control.account(OTHER, account_type="PERSONAL")["username"]
    returncode, answer = _fails(cli, "sources", "add", "profile", personal, "--via", via)
    assert returncode == 8 and "professional account" in answer["message"]

    made = json.loads(cli("feeds", "create", "Sea glass", "--hashtag", "seaglass", "--block-word", "Spam",
                          "--json").stdout)
    assert made["moderation"] == "approve" and made["sources"] == ["#seaglass"] and made["block_words"] == ["spam"]
    cli.env["FILMROLL_MIRROR__CDN_HOSTS"] = json.dumps([sandbox.base_url])
    cli("worker", "--until-idle", "--json")  # syncs the tag (and the account) and mirrors their pictures
    queue = json.loads(cli("moderation", "list", "sea-glass", "--json").stdout)
    assert len(queue) == 3 and {p["status"] for p in queue} == {"pending"} and {p["username"] for p in queue} == {None}
    ids = [p["id"] for p in queue]
    approved = json.loads(cli("moderation", "approve", "sea-glass", *ids[:2], "--json").stdout)
    assert approved["ok"] and approved["changed"] == 2
    cli("moderation", "reject", "sea-glass", ids[2])
    rejected = json.loads(cli("moderation", "list", "sea-glass", "--status", "rejected", "--json").stdout)
    assert [p["id"] for p in rejected] == [ids[2]] and rejected[0]["decided_by"] == "cli"
    refused = cli("moderation", "approve", "sea-glass", "12345", "--json", check=False)
    assert refused.returncode == 8 and "nothing was changed" in json.loads(refused.stdout)["message"]
    removed = json.loads(cli("sources", "remove", "#seaglass", "--json").stdout)
    assert removed["ok"] and removed["removed"]["name"] == "#seaglass"
    again = json.loads(cli("sources", "add", "hashtag", "seaglass", "--via", via, "--json").stdout)
    assert again["created"]
    assert len(sandbox.control.calls(endpoint="hashtag_search")) == 1  # its id was kept: searched once in all
