"""The README is executed: its marked shell blocks (``<!-- readme-test: NAME -->``) run as written, one after the
other in one bash, in a fresh directory that holds only the repository's ``.venv`` (as after ``make run``). This
test plays the person at the keyboard and the browser: it types the admin password when asked, opens the printed
authorize URL, logs in as the account the sandbox printed and presses Allow, then signs in to the web UI that
`filmroll serve` started on the redirect URI's port. The only change to the text: the sandbox's port and the redirect
URI's port come from FILMROLL_SANDBOX__… settings, so that a busy port 8700 or 8765 cannot fail the run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from types import SimpleNamespace

import httpx
import pytest

from filmroll.sandbox.client import SandboxControl
from tests.helpers import owner_allows
from tests.webapp import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"
pytestmark = pytest.mark.slow


def blocks() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    found = dict(re.findall(r"<!-- readme-test: ([a-z-]+) -->\n```sh\n(.*?)```", text, re.S))
    assert set(found) == {"sandbox", "web-ui"}, found.keys()
    return found


def test_the_readme_sample_of_the_sandbox_is_true():
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"log in as (\S+) \(or any other\)", readme)
    announced = subprocess.run([str(ROOT / ".venv/bin/filmroll"), "sandbox", "--print-env"], capture_output=True,
                               text=True, timeout=60)
    assert announced.returncode == 0 and "FILMROLL_INSTAGRAM__APP_SECRET" in announced.stdout
    from filmroll.sandbox.world import World

    first = World(0, 100_000, 0, {}).account(0)
    assert shown is not None and first is not None and shown[1] == first.username
    for name in ("APP_ID", "APP_SECRET"):
        value = re.search(rf"FILMROLL_INSTAGRAM__{name}=(\S+)", announced.stdout)
        assert value is not None and value[1] in readme  # the sample table shows the same app


def test_the_readme_set_up_runs_as_written(tmp_path):
    script = "set -e\n" + blocks()["sandbox"] + blocks()["web-ui"]
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    sandbox_port, callback_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FILMROLL_")}
    env.update({"FILMROLL_SANDBOX__PORT": str(sandbox_port), "PATH": "/usr/bin:/bin", "COLUMNS": "200",
                "FILMROLL_SANDBOX__REDIRECT_URIS": f"https://localhost:{callback_port}/callback"})
    shell = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: Queue[str] = Queue()

    def pump() -> None:
        try:
            for line in shell.stdout:  # type: ignore[union-attr]
                lines.put(line)
        except ValueError:  # closed by the test's end
            pass

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    sandbox = None

    def wait_for(pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in seen:
                if found := re.search(pattern, line):
                    seen.remove(line)
                    return found
            try:
                seen.append(lines.get(timeout=0.5))
            except Empty:
                assert shell.poll() is None, "".join(seen)
        raise AssertionError(f"{pattern!r} never appeared:\n" + "".join(seen))

    try:
        username = wait_for(r"log in as (\S+) \(or any other\)")[1]
        sandbox = SimpleNamespace(base_url=f"http://127.0.0.1:{sandbox_port}",
                                  control=SandboxControl(f"http://127.0.0.1:{sandbox_port}"))
        assert sandbox.control.account(0)["username"] == username
        authorize = wait_for(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)")[1]
        landing = owner_allows(sandbox, authorize, account=0)  # the owner logs in as printed and presses Allow
        assert landing.startswith(f"https://localhost:{callback_port}/callback?")
        page = httpx.get(landing.split("#")[0], verify=False, timeout=30)
        assert page.status_code == 200 and f"Connected as @{username}" in page.text
        wait_for(rf"connected @{username}")
        wait_for(r"synced")
        wait_for(rf"{username}.*active")  # `filmroll accounts`
        assert shell.stdin is not None  # not a terminal: `admin create` reads the password from stdin, unprompted
        shell.stdin.write(PASSWORD + "\n")
        shell.stdin.flush()
        wait_for(r"admin admin created")
        wait_for(rf"filmroll on https://\S+:{callback_port}")
        with httpx.Client(base_url=f"https://localhost:{callback_port}", verify=False, timeout=30) as browser:
            deadline = time.monotonic() + 60
            while True:
                try:
                    form = browser.get("/login")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None, form.text
            signed = browser.post("/login", data={"username": "admin", "password": PASSWORD,
                                                  "csrf_token": token[1]}, follow_redirects=True)
            assert signed.status_code == 200 and f"@{username}" in signed.text, signed.text[:500]
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        try:
            shell.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
        for stream in (shell.stdin, shell.stdout):
            if stream is not None:
                stream.close()
        if sandbox is not None:
            sandbox.control.close()
    assert (tmp_path / "filmroll.keys").stat().st_mode & 0o077 == 0


def test_every_link_in_the_readme_resolves_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not target.startswith(("http", "#"))]
    assert links  # it does link the docs
    for target in links:
        resolved = (ROOT / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), target
