"""Fault injection and the call log: what tests of filmroll's retries, races and crash safety stand on."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.helpers import graph_error, long_lived


def test_http_5xx_then_recovery(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.add_fault("status", endpoint="user", status=503, code=2, times=2)
    first = http.get("/me", params={"access_token": token})
    assert first.status_code == 503 and first.json()["error"]["code"] == 2
    assert http.get("/me", params={"access_token": token}).status_code == 503
    assert http.get("/me", params={"access_token": token}).status_code == 200
    assert sandbox.control.faults()[0]["hits"] == 2


def test_graph_error_fault_only_for_one_account_and_endpoint(sandbox, http):
    mine, other = long_lived(http, sandbox, 0), long_lived(http, sandbox, 1)
    ig_id = sandbox.control.account(0)["ig_id"]
    sandbox.control.add_fault("graph_error", endpoint="media_list", account=ig_id, code=1)
    assert graph_error(http.get("/me/media", params={"access_token": mine}))["code"] == 1
    assert http.get("/me", params={"access_token": mine}).status_code == 200
    assert http.get("/me/media", params={"access_token": other}).status_code == 200


def test_password_changed_error_through_a_fault(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.add_fault("graph_error", endpoint="user", code=190, subcode=460, times=1,
                              message="Error validating access token: The session has been invalidated")
    error = graph_error(http.get("/me", params={"access_token": token}))
    assert (error["code"], error["error_subcode"]) == (190, 460)


def test_connection_reset(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.add_fault("reset", endpoint="user", times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.get("/me", params={"access_token": token})
    with httpx.Client(base_url=sandbox.base_url) as fresh:
        assert fresh.get("/me", params={"access_token": token}).status_code == 200
    assert sandbox.control.calls(endpoint="user")[0]["outcome"] == "reset"


def test_latency_fault_delays_without_blocking_other_requests(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.add_fault("latency", endpoint="media_list", latency_ms=400)
    results = {}

    def slow():
        started = time.monotonic()
        with httpx.Client(base_url=sandbox.base_url) as client:
            client.get("/me/media", params={"access_token": token})
        results["slow"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.05)
    assert http.get("/me", params={"access_token": token}).status_code == 200
    results["fast_done_while_slow_running"] = thread.is_alive()
    thread.join()
    assert results["slow"] >= 0.4  # a lower bound only: sleeping can never be shorter
    assert results["fast_done_while_slow_running"]


def test_global_latency_switch(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.switches(latency_ms=150)
    started = time.monotonic()
    http.get("/me", params={"access_token": token})
    assert time.monotonic() - started >= 0.15


def test_hang_holds_a_request_until_released_and_overlaps_are_detected(sandbox, http):
    token = sandbox.control.mint_token(0, kind="long", age_seconds=2 * 86_400)["access_token"]
    fault = sandbox.control.add_fault("hang", endpoint="refresh", times=1)
    outcome = {}

    def refresh(name):
        with httpx.Client(base_url=sandbox.base_url, timeout=30) as client:
            outcome[name] = client.get("/refresh_access_token", params={
                "grant_type": "ig_refresh_token", "access_token": token}).status_code

    held = threading.Thread(target=refresh, args=("held",))
    held.start()
    deadline = time.monotonic() + 10
    while not sandbox.control.faults()[0]["held"] or sandbox.control.faults()[0]["hits"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    refresh("second")  # overlaps the held one
    assert "held" not in outcome
    sandbox.control.release(fault["id"])
    held.join(10)
    # The second refresh renewed the token, so the held one now meets a token under 24 h old: a real race.
    assert outcome == {"held": 400, "second": 200}
    overlaps = sandbox.control.overlaps("refresh")
    assert len(overlaps) == 1 and overlaps[0]["account"] == sandbox.control.account(0)["ig_id"]


def test_sequential_refreshes_are_not_overlaps(sandbox, http):
    token = sandbox.control.mint_token(0, kind="long", age_seconds=2 * 86_400)["access_token"]
    for _ in range(2):
        http.get("/refresh_access_token", params={"grant_type": "ig_refresh_token", "access_token": token})
        sandbox.control.advance(86_401)
    assert len(sandbox.control.calls(endpoint="refresh")) == 2
    assert sandbox.control.overlaps("refresh") == []


def test_probability_faults_are_seeded_and_partial(sandbox, http):
    token = long_lived(http, sandbox)
    sandbox.control.add_fault("status", endpoint="user", status=500, probability=0.5)
    statuses = [http.get("/me", params={"access_token": token}).status_code for _ in range(60)]
    assert 10 < statuses.count(500) < 50 and statuses.count(200) + statuses.count(500) == 60


def test_call_log_records_endpoint_account_and_outcome(sandbox, http):
    token = long_lived(http, sandbox, 3)
    ig_id = sandbox.control.account(3)["ig_id"]
    http.get("/me", params={"access_token": token})
    http.get("/me/media", params={"access_token": token})
    http.get("/me", params={"access_token": "bad"})
    calls = sandbox.control.calls()
    assert [(c["endpoint"], c["account"], c["outcome"]) for c in calls] == [
        ("user", ig_id, "ok"), ("media_list", ig_id, "ok"), ("graph", None, "error 190")]
    assert all(c["ended"] >= c["started"] for c in calls)
    assert sandbox.control.calls(account=ig_id, endpoint="user")[0]["method"] == "GET"
    summary = sandbox.control.call_summary()
    assert summary["user"] == {"ok": 1} and summary["graph"] == {"error 190": 1}
    sandbox.control.clear_calls()
    assert sandbox.control.calls() == []


def test_control_api_calls_are_not_logged_and_tokens_never_appear_in_the_log(sandbox, http):
    token = long_lived(http, sandbox)
    http.get("/me", params={"access_token": token})
    sandbox.control.summary()
    calls = sandbox.control.calls()
    assert len(calls) == 1
    assert token not in str(calls)


def test_fault_spec_validation(sandbox):
    for spec in ({"kind": "explode"}, {"kind": "status", "status": 200}, {"kind": "status", "probability": 0},
                 {"kind": "latency", "latency_ms": -5}, {"kind": "status", "times": 0}):
        with pytest.raises(Exception, match="400"):
            sandbox.control.add_fault(**spec)
    sandbox.control.add_fault("status")
    sandbox.control.clear_faults()
    assert sandbox.control.faults() == []


def test_calls_with_a_dead_token_are_still_counted_against_its_account(sandbox, http):
    token = long_lived(http, sandbox, 6)
    ig_id = sandbox.control.account(6)["ig_id"]
    sandbox.control.revoke(6, "password_changed")
    http.get("/me", params={"access_token": token})
    http.get("/refresh_access_token", params={"grant_type": "ig_refresh_token", "access_token": token})
    calls = sandbox.control.calls(account=ig_id)
    assert [(c["endpoint"], c["outcome"]) for c in calls] == [("user", "error 190/460"), ("refresh", "error 190/460")]
