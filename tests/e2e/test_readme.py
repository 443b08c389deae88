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
import sys
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
    assert set(found) == {"sandbox", "web-ui", "website"}, found.keys()
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
    assert f"--account @{first.username}" in blocks()["website"]  # the account the sandbox way connects
    for name in ("APP_ID", "APP_SECRET"):
        value = re.search(rf"FILMROLL_INSTAGRAM__{name}=(\S+)", announced.stdout)
        assert value is not None and value[1] in readme  # the sample table shows the same app


class Shell:
    """README blocks run as written in one bash, in a fresh directory holding only the repository's .venv; the
    test reads what it prints, types at its prompts, and is the owner at the sandbox's consent page."""

    def __init__(self, tmp_path: Path, *names: str) -> None:
        script = "set -e\n" + "".join(blocks()[name] for name in names)
        (tmp_path / ".venv").symlink_to(ROOT / ".venv")
        self.directory = tmp_path
        self.sandbox_port, self.callback_port = free_port(), free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("FILMROLL_")}
        env.update({"FILMROLL_SANDBOX__PORT": str(self.sandbox_port), "PATH": "/usr/bin:/bin", "COLUMNS": "200",
                    "FILMROLL_SANDBOX__REDIRECT_URIS": f"https://localhost:{self.callback_port}/callback"})
        self.process = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines: Queue[str] = Queue()
        self.seen: list[str] = []
        self.sandbox: SimpleNamespace | None = None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for line in self.process.stdout:  # type: ignore[union-attr]
                self.lines.put(line)
        except ValueError:  # closed by the test's end
            pass

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.seen:
                if found := re.search(pattern, line):
                    self.seen.remove(line)
                    return found
            try:
                self.seen.append(self.lines.get(timeout=0.5))
            except Empty:
                assert self.process.poll() is None, "".join(self.seen)
        raise AssertionError(f"{pattern!r} never appeared:\n" + "".join(self.seen))

    def connect(self) -> str:
        """The sandbox way's part: the owner logs in as the account the sandbox printed and presses Allow."""
        username = self.wait_for(r"log in as (\S+) \(or any other\)")[1]
        base = f"http://127.0.0.1:{self.sandbox_port}"
        self.sandbox = SimpleNamespace(base_url=base, control=SandboxControl(base))
        assert self.sandbox.control.account(0)["username"] == username
        authorize = self.wait_for(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)")[1]
        landing = owner_allows(self.sandbox, authorize, account=0)  # type: ignore[arg-type]
        assert landing.startswith(f"https://localhost:{self.callback_port}/callback?")
        page = httpx.get(landing.split("#")[0], verify=False, timeout=30)
        assert page.status_code == 200 and f"Connected as @{username}" in page.text
        self.wait_for(rf"connected @{username}")
        self.wait_for(r"synced")
        self.wait_for(rf"{username}.*active")  # `filmroll accounts`
        return username

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        if self.sandbox is not None:
            self.sandbox.control.close()


def test_the_readme_set_up_runs_as_written(tmp_path):
    shell = Shell(tmp_path, "sandbox", "web-ui")
    try:
        username = shell.connect()
        assert shell.process.stdin is not None  # not a terminal: `admin create` reads the password from stdin
        shell.process.stdin.write(PASSWORD + "\n")
        shell.process.stdin.flush()
        shell.wait_for(r"admin admin created")
        shell.wait_for(rf"filmroll on https://\S+:{shell.callback_port}")
        with httpx.Client(base_url=f"https://localhost:{shell.callback_port}", verify=False, timeout=30) as browser:
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
        shell.close()
    assert (tmp_path / "filmroll.keys").stat().st_mode & 0o077 == 0


def test_the_readme_website_section_shows_every_picture_on_a_page_of_another_origin(tmp_path, browser):
    """Connect the sandbox way, then the website section word for word: the two lines `feeds create` printed go
    into a page served from another origin, and Chromium shows every picture of the feed from filmroll's."""
    shell = Shell(tmp_path, "sandbox", "website")
    host = None
    try:
        shell.connect()
        script = shell.wait_for(r'(<script type="module" src="(\S+)/widget\.js"></script>)')
        element = shell.wait_for(r"(<filmroll-feed src=\S+ .*></filmroll-feed>)")[1]
        served = shell.wait_for(r"filmroll on (https://\S+:\d+)")[1]
        assert script[2] == served == f"https://127.0.0.1:{shell.callback_port}"  # printed where serve listens
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text(
            f"<!doctype html><html lang=en><title>Our café</title><body><h1>Our café</h1>\n{script[1]}\n"
            f"{element}\n</body></html>")
        site_port = free_port()  # the host page's origin: not filmroll's
        host = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(site_port)],
                                cwd=tmp_path / "site", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        context = browser.new_context(ignore_https_errors=True)  # the person accepted serve's certificate once
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        deadline = time.monotonic() + 600  # the embedded worker mirrors the posts meanwhile
        while True:
            try:
                page.goto(f"http://127.0.0.1:{site_port}/", wait_until="load")
                page.wait_for_function("""() => { const feed = document.querySelector('filmroll-feed');
                    const images = feed && feed.shadowRoot ?
                        [...feed.shadowRoot.querySelectorAll('li:not(.spare) img')] : [];  // the rows shown
                    return images.length === 9 && images.every(i => i.complete && i.naturalWidth > 0); }""",
                                       timeout=15_000)
                break
            except Exception:
                assert time.monotonic() < deadline, "the feed's nine pictures never all loaded"
                time.sleep(3)
        pictures = [url for url in asked if "/media/" in url]
        assert pictures and all(url.startswith(served + "/media/") for url in pictures), asked[:20]
        context.close()
    finally:
        if host is not None:
            host.terminate()
            host.wait(10)
        shell.close()


def test_every_link_in_the_readme_resolves_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not target.startswith(("http", "#"))]
    assert links  # it does link the docs
    for target in links:
        resolved = (ROOT / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), target
