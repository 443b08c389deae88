"""A script drives the CLI: `connect --paste --json`, `sync --json`, `token refresh --json` and `probe --json` each
answer with one JSON document on stdout, failures included, and the documented exit code: success 0, not found 3,
needs_reauth 5, throttled 10, too early 11, the same every time."""

from __future__ import annotations

import json
import re
import time

from tests.helpers import owner_allows


def _answer(result) -> dict:  # type: ignore[no-untyped-def]
    document = json.loads(result.stdout)
    assert document["ok"] is (result.returncode == 0), (result.returncode, document)
    if not document["ok"]:
        assert document["exit_code"] == result.returncode and document["message"]
    return document


def test_a_script_gets_json_and_the_documented_exit_code_for_every_outcome(cli, sandbox):
    process = cli.start("connect", "--paste", "--json")
    deadline = time.monotonic() + 60
    url = None
    while url is None:  # the instructions go to stderr, so stdout stays one JSON document
        assert time.monotonic() < deadline
        line = process.stderr.readline()
        assert line
        if found := re.search(r"(http\S+/oauth/authorize\?\S+)", line):
            url = found[1]
    process.stdin.write(owner_allows(sandbox, url, account=14) + "\n")
    process.stdin.flush()
    out, _ = process.communicate(timeout=60)
    username = sandbox.control.account(14)["username"]
    connected = json.loads(out)
    assert process.returncode == 0 and connected["ok"] and connected["account"] == f"@{username}"
    assert connected["created"] is True and connected["token_expires_at"].endswith("+00:00")

    synced = cli("sync", f"@{username}", "--json", check=False)
    assert synced.returncode == 0 and _answer(synced)["posts"] > 0
    early = cli("token", "refresh", f"@{username}", "--json", check=False)
    assert early.returncode == 11 and _answer(early)["error"] == "too_early"
    assert "refreshes it from" in _answer(early)["message"]
    missing = [cli(*args, "@nobody", "--json", check=False) for args in (("sync",), ("token", "refresh"), ("probe",))]
    assert [m.returncode for m in missing] == [3, 3, 3] and all(_answer(m)["error"] == "not_found" for m in missing)
    alive = cli("probe", f"@{username}", "--json", check=False)
    assert alive.returncode == 0 and _answer(alive)["outcome"] == "alive"

    cli.let_time_pass(2 * 86_400)
    refreshed = cli("token", "refresh", f"@{username}", "--json", check=False)
    assert refreshed.returncode == 0 and _answer(refreshed)["refreshed_by"] == "this command"

    sandbox.control.throttle(14, minutes=1)
    for _ in range(2):  # the same condition, the same code, every time
        throttled = cli("sync", f"@{username}", "--json", check=False)
        assert throttled.returncode == 10 and _answer(throttled)["error"] == "throttled", throttled.stdout
    sandbox.control.advance(120)  # Instagram lets go

    sandbox.control.revoke(14, reason="password_changed")
    dead = cli("probe", f"@{username}", "--json", check=False)
    assert dead.returncode == 5 and _answer(dead)["error"] == "needs_reauth"
    for args in (("sync",), ("token", "refresh"), ("probe",)):  # and so it stays
        again = cli(*args, f"@{username}", "--json", check=False)
        assert again.returncode == 5 and _answer(again)["error"] == "needs_reauth", (args, again.stdout)
    doctor = cli("doctor", "--offline", "--json", check=False)
    assert doctor.returncode == 0 and {c["name"] for c in _answer(doctor)["checks"]} >= {"database reachable"}


def test_every_listing_answers_in_json_and_never_with_a_token(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(3, kind="long")["access_token"] + "\n")
    username = sandbox.control.account(3)["username"]
    (account,) = json.loads(cli("accounts", "--json").stdout)
    assert account["username"] == username and account["status"] == "active"
    shown = cli("token", "show", f"@{username}", "--json")
    facts = json.loads(shown.stdout)
    assert facts["id"] == account["id"] and facts["token_expires_at"] == account["token_expires_at"]
    (key,) = json.loads(cli("keys", "list", "--json").stdout)
    assert key["role"] == "encrypts" and key["tokens"] == 1 and re.fullmatch(r"[0-9a-zA-Z_-]+", key["key_id"])
    cli("feeds", "create", "Bakery", "--account", f"@{username}")
    (feed,) = json.loads(cli("feeds", "list", "--json").stdout)
    assert feed["slug"] == "bakery" and feed["urls"]["json"].endswith("/feeds/bakery.json")
    assert json.loads(cli("media", f"@{username}", "--json").stdout) == []  # not synced yet
    both = cli("token", "show", f"@{username}", "--json", "--reveal", check=False)
    assert both.returncode == 8 and "choose one" in json.loads(both.stdout)["message"]  # --json: failures too
    secret = cli("token", "show", f"@{username}", "--reveal").stdout.strip()
    assert len(secret) > 20 and secret not in shown.stdout + both.stdout + both.stderr
