"""The control API itself: determinism, reset, clock, switches, minting, and clear errors for bad input."""

from __future__ import annotations

import httpx
import pytest

from filmroll.sandbox import SandboxConfig, SandboxControlError, running_sandbox
from tests.helpers import graph_error


def test_same_seed_same_world_other_seed_other_world(sandbox):
    mine = sandbox.control.accounts(limit=5)["data"]
    with running_sandbox(SandboxConfig(seed=sandbox.config.seed, accounts=10)) as twin:
        assert twin.control.accounts(limit=5)["data"] == mine
        assert twin.app_id == sandbox.app_id and twin.app_secret == sandbox.app_secret
        assert twin.control.media_ids(1) == sandbox.control.media_ids(1)
    with running_sandbox(SandboxConfig(seed=sandbox.config.seed + 1, accounts=10)) as other:
        assert other.control.accounts(limit=5)["data"] != mine
        assert other.app_id != sandbox.app_id


def test_reset_restores_the_seed_state(sandbox, http):
    sandbox.control.account(0, name="Changed")
    token = sandbox.control.mint_token(0)["access_token"]
    sandbox.control.advance(1000)
    sandbox.control.switches(token_response="data")
    sandbox.control.add_fault("status")
    sandbox.control.reset()
    assert sandbox.control.account(0)["name"] != "Changed"
    assert graph_error(http.get("/me", params={"access_token": token}))["code"] == 190
    assert sandbox.control.switches()["token_response"] == "flat"
    assert sandbox.control.faults() == []


def test_clock_only_moves_forward(sandbox):
    before = sandbox.control.now()
    assert sandbox.control.advance(86_400) >= before + 86_400
    with pytest.raises(SandboxControlError, match="only moves forward"):
        sandbox.control._call("POST", "/clock", {"set": before - 10})
    with pytest.raises(SandboxControlError, match="400"):
        sandbox.control._call("POST", "/clock", {"advance": -1})


@pytest.mark.parametrize(("changes", "message"), [
    ({"token_response": "xml"}, "takes one of flat, data"),
    ({"latency_ms": -1}, "whole number"),
    ({"latency_ms": True}, "whole number"),
    ({"auto_consent": "yes"}, "true or false"),
    ({"nonsense": 1}, "unknown switch 'nonsense'"),
])
def test_switch_validation_changes_nothing(sandbox, changes, message):
    before = sandbox.control.switches()
    with pytest.raises(SandboxControlError, match=message):
        sandbox.control.switches(**changes, exchange_method="POST")
    assert sandbox.control.switches() == before


def test_mint_thousands_of_tokens_with_chosen_issue_time(sandbox, http):
    now = sandbox.control.now()
    tokens = sandbox.control.mint_tokens(first=1000, count=5000, kind="long", issued_at=now - 50 * 86_400)
    assert len(tokens) == 5000 and len({t["access_token"] for t in tokens}) == 5000
    assert {t["account"] for t in tokens} == set(range(1000, 6000))
    sample = tokens[4321]
    assert http.get("/me", params={"fields": "user_id", "access_token": sample["access_token"]}).json() == {
        "user_id": sample["ig_id"]}
    sandbox.control.advance(11 * 86_400)  # 61 days after issue: dead
    assert graph_error(http.get("/me", params={"access_token": sample["access_token"]}))["error_subcode"] == 463


def test_mint_refuses_the_future_and_unknown_accounts(sandbox):
    with pytest.raises(SandboxControlError, match="future"):
        sandbox.control.mint_token(0, issued_at=sandbox.control.now() + 100)
    with pytest.raises(SandboxControlError, match="no sandbox account"):
        sandbox.control.mint_token("nobody")
    with pytest.raises(SandboxControlError, match="400"):
        sandbox.control.mint_token(0, kind="eternal")


def test_accounts_by_index_ig_id_scoped_id_and_username(sandbox):
    account = sandbox.control.account(42)
    for ref in (account["ig_id"], account["scoped_id"], account["username"], "@" + account["username"]):
        assert sandbox.control.account(ref)["index"] == 42


def test_account_edits_are_validated(sandbox):
    taken = sandbox.control.account(1)["username"]
    with pytest.raises(SandboxControlError, match="taken"):
        sandbox.control.account(0, username=taken)
    with pytest.raises(SandboxControlError, match="400"):
        sandbox.control.account(0, username="no spaces allowed")
    renamed = sandbox.control.account(0, username="brand.new")
    assert sandbox.control.account("brand.new")["index"] == 0 and renamed["username"] == "brand.new"


def test_inspect_and_mint_code(sandbox, http):
    token = sandbox.control.mint_token(3, kind="short")["access_token"]
    inspected = sandbox.control.inspect(token)
    assert inspected["valid"] and inspected["kind"] == "short" and inspected["account"] == 3
    assert sandbox.control.inspect("nope") == {"valid": False, "known": False}
    code = sandbox.control.mint_code(3)["code"]
    exchanged = http.post("/oauth/access_token", data={
        "client_id": sandbox.app_id, "client_secret": sandbox.app_secret, "grant_type": "authorization_code",
        "redirect_uri": sandbox.redirect_uri, "code": code})
    assert exchanged.status_code == 200


def test_unknown_control_paths_and_bad_json(sandbox):
    with httpx.Client(base_url=sandbox.base_url) as client:
        missing = client.get("/_sandbox/nothing-here")
        assert missing.status_code == 404 and "no control endpoint" in missing.json()["error"]
        broken = client.post("/_sandbox/tokens", content=b"{not json")
        assert broken.status_code == 400 and "error" in broken.json()
