"""`filmroll sandbox` as a user runs it: a real process, its printed credentials, a scripted OAuth flow."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest


def _start(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    process = subprocess.Popen([sys.executable, "-m", "filmroll", "sandbox", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "graph" not in printed:
        line = process.stdout.readline()
        assert line or process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        for key, pattern in (("base", r"Listening on\s+(\S+)"), ("app_id", r"Instagram app ID\s+(\d+)"),
                             ("secret", r"Instagram app secret\s+([0-9a-f]+)"),
                             ("redirect", r"Redirect URIs\s+(\S+)"), ("graph", r"GRAPH_URL=(\S+)")):
            match = re.search(pattern, line)
            if match:
                printed[key] = match.group(1)
    return process, printed


def _stop(process: subprocess.Popen, signum: int = signal.SIGINT) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=15)
    finally:
        process.stdout.close()
        process.stderr.close()


def test_auto_consent_sandbox_runs_the_whole_token_story_from_a_script():
    process, printed = _start("--auto-consent", "--accounts", "50", "--seed", "3")
    try:
        base = printed["base"]
        with httpx.Client(base_url=base, timeout=10) as http:
            authorize = http.get("/oauth/authorize", params={
                "client_id": printed["app_id"], "redirect_uri": printed["redirect"], "response_type": "code",
                "scope": "instagram_business_basic", "state": "cli"})
            assert authorize.status_code == 302
            code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
            short = http.post("/oauth/access_token", data={
                "client_id": printed["app_id"], "client_secret": printed["secret"],
                "grant_type": "authorization_code", "redirect_uri": printed["redirect"], "code": code}).json()
            long = http.get("/access_token", params={"grant_type": "ig_exchange_token",
                                                     "client_secret": printed["secret"],
                                                     "access_token": short["access_token"]}).json()
            assert long["expires_in"] == 5_183_944
            me = http.get("/v25.0/me", params={"fields": "user_id,username",
                                               "access_token": long["access_token"]}).json()
            assert me["username"] == http.get("/_sandbox/accounts/0").json()["username"]
    finally:
        assert _stop(process) == 0


def test_same_seed_prints_the_same_credentials():
    first, one = _start("--seed", "11", "--accounts", "10")
    assert _stop(first, signal.SIGTERM) == 0
    second, two = _start("--seed", "11", "--accounts", "10")
    _stop(second)
    assert (one["app_id"], one["secret"]) == (two["app_id"], two["secret"])


def test_port_in_use_is_a_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = subprocess.run([sys.executable, "-m", "filmroll", "sandbox", "--port", str(port)],
                                capture_output=True, text=True, timeout=30)
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("uri", ["http://localhost:8000/callback", "ftp://x"])
def test_http_redirect_uris_are_refused_like_instagram_does(uri):
    result = subprocess.run([sys.executable, "-m", "filmroll", "sandbox", "--redirect-uri", uri],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "only https://" in result.stderr


def test_help_lists_the_options():
    result = subprocess.run([sys.executable, "-m", "filmroll", "sandbox", "--help"], capture_output=True,
                            text=True, timeout=30, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0
    for option in ("--host", "--port", "--seed", "--auto-consent", "--redirect-uri"):
        assert option in result.stdout
