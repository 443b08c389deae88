"""`filmroll api-keys` as a person runs it: a key printed once and never again, listed by its first characters,
several live at once for a rotation, revoked by id or name; bad input changes nothing, with the README's codes."""

from __future__ import annotations

import json

import pytest

from filmroll.service.api_keys import well_formed

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_create_list_rotate_and_revoke_keys(cli):
    made = json.loads(cli("api-keys", "create", "ci deploys", "--scope", "write", "--json").stdout)
    key = made["key"]
    assert key.startswith("flr_") and len(key) == 53 and well_formed(key)
    assert made["scope"] == "write" and key.startswith(made["prefix"]) and len(made["prefix"]) == 12
    shown = cli("api-keys", "create", "ci deploys", "--scope", "read")  # its successor, live beside it
    second = next(line for line in shown.stdout.splitlines() if line.startswith("flr_"))
    assert well_formed(second) and second != key

    listed = cli("api-keys", "list", "--json").stdout
    assert key not in listed and second not in listed  # never shown again
    assert [(k["name"], k["scope"]) for k in json.loads(listed)] == [("ci deploys", "write"), ("ci deploys", "read")]
    assert "flr_" in cli("api-keys", "list").stdout

    assert json.loads(cli("api-keys", "revoke", str(made["id"]), "--json").stdout) == {"revoked": [made["id"]]}
    assert [k["scope"] for k in json.loads(cli("api-keys", "list", "--json").stdout)] == ["read"]
    revoked = json.loads(cli("api-keys", "list", "--revoked", "--json").stdout)
    assert revoked[0]["revoked_at"] is not None

    for args, code, said in ((("create", "x", "--scope", "admin"), 8, "scope is read or write"),
                             (("create", "", "--scope", "read"), 8, "1 to 64 characters"),
                             (("revoke", "999"), 3, "no live API key")):
        before = cli("api-keys", "list", "--json").stdout
        refused = cli("api-keys", *args, check=False)
        assert refused.returncode == code and said in refused.stderr, (args, refused.stderr)
        assert cli("api-keys", "list", "--json").stdout == before  # nothing changed


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_standalone_worker_serves_its_metrics_on_loopback(cli):
    import signal
    import time

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from tests.webapp import free_port

    port = free_port()
    worker = cli.start("worker", "--metrics-port", str(port), "--database-gauges", "--no-sync")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert worker.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        families = {f.name for f in text_string_to_metric_families(answer.text)}
        assert answer.status_code == 200 and {"filmroll_jobs", "filmroll_accounts", "filmroll_sync_lag_seconds",
                                              "filmroll_token_expiry_seconds"} <= families, families
        assert "filmroll_feed_responses" not in families  # a worker answers no feed
        taken = cli.start("worker", "--metrics-port", str(port), "--no-sync")  # the port is in use: said so
        _, said = taken.communicate(timeout=60)
        assert taken.returncode == 2 and f"--metrics-port {port}" in said, said
    finally:
        worker.send_signal(signal.SIGTERM)
        _, said = worker.communicate(timeout=60)
    assert worker.returncode == 0, said


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_connect_links_from_the_cli_and_accounts_by_custom_id(cli, sandbox):
    cli.env["FILMROLL_API__RETURN_ORIGINS"] = '["https://agency.example"]'
    made = json.loads(cli("connect-link", "create", "--custom-id", "client-9", "--return-url",
                          "https://agency.example/done", "--json").stdout)
    assert made["custom_id"] == "client-9" and "/connect-link?link=" in made["url"]
    secret = made["url"].split("link=")[1]
    assert secret not in cli("accounts", "--json").stdout
    for args, said in ((("--custom-id", "has space"), "a custom id is 1 to 100"),
                       (("--custom-id", "c", "--return-url", "https://elsewhere.example/x"),
                        "FILMROLL_API__RETURN_ORIGINS"),
                       (("--custom-id", "c", "--expires-in", "5"), "between 300 seconds and 30 days")):
        refused = cli("connect-link", "create", *args, check=False)
        assert refused.returncode == 8 and said in refused.stderr, (args, refused.stderr)
    cli("connect", "--token", stdin=sandbox.control.mint_token(3, kind="long")["access_token"] + "\n")
    assert json.loads(cli("accounts", "--custom-id", "client-9", "--json").stdout) == []
    everyone = json.loads(cli("accounts", "--status", "active", "--json").stdout)
    assert len(everyone) == 1 and everyone[0]["custom_id"] is None
    refused = cli("accounts", "--status", "gone", check=False)
    assert refused.returncode == 8 and "--status is active" in refused.stderr
