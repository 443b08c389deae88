"""Business Use Case accounting per app + account, the platform limit per app, and their headers."""

from __future__ import annotations

import json

from tests.helpers import graph_error, long_lived


def test_every_graph_read_carries_usage_headers(sandbox, http):
    token = long_lived(http, sandbox)
    response = http.get("/me", params={"access_token": token})
    ig_id = sandbox.control.account(0)["ig_id"]
    buc = json.loads(response.headers["x-business-use-case-usage"])
    assert list(buc) == [ig_id]
    entry = buc[ig_id][0]
    assert entry["type"] == "instagram" and entry["estimated_time_to_regain_access"] == 0
    assert set(entry) == {"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"}
    assert set(json.loads(response.headers["x-app-usage"])) == {"call_count", "total_cputime", "total_time"}


def test_usage_climbs_and_then_80002_with_time_to_regain(sandbox, http):
    sandbox.control.rate_limits(account_calls=10, window=3600)
    token = long_lived(http, sandbox)
    counts = []
    for _ in range(10):
        response = http.get("/me", params={"access_token": token})
        assert response.status_code == 200
        counts.append(json.loads(response.headers["x-business-use-case-usage"]).popitem()[1][0]["call_count"])
    assert counts == sorted(counts) and counts[-1] >= 90
    throttled = http.get("/me", params={"access_token": token})
    error = graph_error(throttled)
    assert error["code"] == 80002 and error["message"].startswith("(#80002) There have been too many calls")
    usage = json.loads(throttled.headers["x-business-use-case-usage"]).popitem()[1][0]
    assert usage["call_count"] == 100 and 1 <= usage["estimated_time_to_regain_access"] <= 60
    other = long_lived(http, sandbox, 1)
    assert http.get("/me", params={"access_token": other}).status_code == 200  # per account
    sandbox.control.advance(3601)
    assert http.get("/me", params={"access_token": token}).status_code == 200


def test_manual_throttle_for_one_account(sandbox, http):
    token, other = long_lived(http, sandbox, 0), long_lived(http, sandbox, 1)
    sandbox.control.throttle(0, minutes=30, code=80002)
    response = http.get("/me/media", params={"access_token": token})
    assert graph_error(response)["code"] == 80002
    usage = json.loads(response.headers["x-business-use-case-usage"]).popitem()[1][0]
    assert usage["estimated_time_to_regain_access"] == 30
    assert http.get("/me", params={"access_token": other}).status_code == 200
    sandbox.control.advance(30 * 60 + 1)
    assert http.get("/me", params={"access_token": token}).status_code == 200


def test_other_throttle_codes(sandbox, http):
    token = long_lived(http, sandbox)
    for code, prefix in ((4, "(#4) Application request limit"), (17, "(#17) User request limit"),
                         (613, "Calls to this api have exceeded")):
        sandbox.control.throttle(0, minutes=1, code=code)
        error = graph_error(http.get("/me", params={"access_token": token}))
        assert error["code"] == code and error["message"].startswith(prefix)
        sandbox.control.advance(61)


def test_app_level_platform_limit_is_code_4(sandbox, http):
    sandbox.control.rate_limits(app_calls_per_user=3)
    tokens = [long_lived(http, sandbox, i) for i in range(2)]
    statuses = [http.get("/me", params={"access_token": tokens[i % 2]}).status_code for i in range(6)]
    assert statuses == [200] * 6
    error = graph_error(http.get("/me", params={"access_token": tokens[0]}))
    assert error["code"] == 4
    assert json.loads(http.get("/me", params={"access_token": tokens[1]}).headers["x-app-usage"])["call_count"] == 100


def test_calls_while_throttled_still_count(sandbox, http):
    sandbox.control.rate_limits(account_calls=3, window=3600)
    token = long_lived(http, sandbox)
    for _ in range(3):
        http.get("/me", params={"access_token": token})
    for _ in range(5):
        assert graph_error(http.get("/me", params={"access_token": token}))["code"] == 80002
    sandbox.control.advance(3601)
    assert http.get("/me", params={"access_token": token}).status_code == 200
