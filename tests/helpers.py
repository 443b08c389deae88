"""Helpers shared by the sandbox tests: the OAuth dance and error-envelope checks."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx

from filmroll.sandbox import RunningSandbox


def authorize_params(sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    params = {"client_id": sandbox.app_id, "redirect_uri": sandbox.redirect_uri, "response_type": "code",
              "scope": "instagram_business_basic,instagram_business_manage_insights", "state": "st4te"}
    params.update(extra)
    return params


def consent_code(http: httpx.Client, sandbox: RunningSandbox, account: int = 0, **extra: str) -> str:
    """Walk the real consent page: GET authorize, POST username/password + Allow, read the code."""
    page = http.get("/oauth/authorize", params=authorize_params(sandbox, **extra))
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
    username = sandbox.control.account(account)["username"]
    done = http.post("/oauth/authorize", data={"request_id": request_id, "username": username,
                                               "password": "password", "action": "allow"})
    assert done.status_code == 302, done.text
    return parse_qs(urlsplit(done.headers["location"]).query)["code"][0]


def exchange(http: httpx.Client, sandbox: RunningSandbox, authorization_code: str,
             **overrides: str) -> httpx.Response:
    form = {"client_id": sandbox.app_id, "client_secret": sandbox.app_secret, "grant_type": "authorization_code",
            "redirect_uri": sandbox.redirect_uri, "code": authorization_code}
    form.update(overrides)
    return http.post("/oauth/access_token", data=form)


def long_lived(http: httpx.Client, sandbox: RunningSandbox, account: int = 0) -> str:
    return sandbox.control.mint_token(account, kind="long", age_seconds=0,
                                      permissions=["instagram_business_basic",
                                                   "instagram_business_manage_insights"])["access_token"]


def graph_error(response: httpx.Response) -> dict:
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code", "fbtrace_id"} <= set(body["error"]), body
    return body["error"]


def owner_allows(sandbox: RunningSandbox, authorize_url: str, account: int = 0) -> str:
    """The account owner logs in on the sandbox's consent page and presses Allow; returns where they are sent."""
    with httpx.Client(base_url=sandbox.base_url, follow_redirects=False) as owner:
        page = owner.get(authorize_url.replace(sandbox.base_url, ""))
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
        done = owner.post("/oauth/authorize", data={
            "request_id": request_id, "action": "allow", "password": "password",
            "username": sandbox.control.account(account)["username"]})
    assert done.status_code == 302, done.text
    return done.headers["location"]


def facebook_owner_allows(sandbox: RunningSandbox, dialog_url: str, account: int = 0) -> str:
    """A Facebook user (known by their sandbox Instagram account) logs in on the sandbox's Facebook dialog and
    presses Continue; returns where they are sent."""
    path = dialog_url.replace(sandbox.base_url, "")
    with httpx.Client(base_url=sandbox.base_url, follow_redirects=False) as owner:
        page = owner.get(path)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
        done = owner.post(path.split("?", 1)[0], data={
            "request_id": request_id, "action": "allow", "password": "password",
            "username": sandbox.control.account(account)["username"]})
    assert done.status_code == 302, done.text
    return done.headers["location"]


def printed_url(process: subprocess.Popen, pattern: str = r"/oauth/authorize\?", *, stderr: bool = False) -> str:
    """The first URL matching ``pattern`` a running ``filmroll`` command prints (on stderr: with --json, its
    instructions go there)."""
    import time

    stream, other = (process.stderr, process.stdout) if stderr else (process.stdout, process.stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stream.readline()
        assert line, other.read()
        match = re.search(rf"(http\S+{pattern}\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no URL matching {pattern} printed")
