"""End-to-end fixtures: the filmroll command as real processes, and Debian's Chromium driven by Playwright (no
browser download is possible here)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.seeding import let_time_pass
from tests.webapp import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One browser per module: Playwright's sync API keeps an event loop running on this thread while it lives,
    which would stop every asyncio-based test that runs after it."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


class Cli:
    def __init__(self, sandbox, database_url: str, directory: Path, redirect_uri: str) -> None:
        self.sandbox = sandbox
        self.database_url = database_url
        self.directory = directory
        self.env = {**os.environ, "COLUMNS": "250", "FILMROLL_DATABASE_URL": database_url,
                    "FILMROLL_INSTAGRAM__APP_ID": sandbox.app_id, "FILMROLL_INSTAGRAM__APP_SECRET": sandbox.app_secret,
                    "FILMROLL_INSTAGRAM__REDIRECT_URI": redirect_uri,
                    "FILMROLL_INSTAGRAM__AUTHORIZE_URL": sandbox.base_url + "/oauth/authorize",
                    "FILMROLL_INSTAGRAM__TOKEN_URL": sandbox.base_url + "/oauth/access_token",
                    "FILMROLL_INSTAGRAM__GRAPH_URL": sandbox.base_url,
                    "FILMROLL_FACEBOOK__APP_ID": sandbox.config.resolved_meta_app_id(),
                    "FILMROLL_FACEBOOK__APP_SECRET": sandbox.config.resolved_meta_app_secret(),
                    "FILMROLL_FACEBOOK__DIALOG_URL": sandbox.base_url + "/www.facebook.com/v25.0/dialog/oauth",
                    "FILMROLL_FACEBOOK__GRAPH_URL": sandbox.base_url + "/graph.facebook.com",
                    "FILMROLL_VAULT__KEYS_FILE": str(directory / "filmroll.keys")}
        self.env.pop("FILMROLL_VAULT__KEYS", None)

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "filmroll", *args], input=stdin, capture_output=True,
                                text=True, env=self.env, cwd=self.directory, timeout=120)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def let_time_pass(self, seconds: float) -> None:
        let_time_pass(self.sandbox, self.database_url, seconds)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "filmroll", *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env,
                                cwd=self.directory)


@pytest.fixture
def cli(sandbox, database_url, tmp_path) -> Cli:
    redirect_uri = f"https://localhost:{free_port()}/callback"
    sandbox.control.add_redirect_uri(redirect_uri)
    tool = Cli(sandbox, database_url, tmp_path, redirect_uri)
    tool("keys", "generate")
    assert oct((tmp_path / "filmroll.keys").stat().st_mode & 0o777) == "0o600"
    return tool


AXE = Path(__file__).resolve().parents[2] / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def accessibility_violations(page, url: str | None = None) -> list[dict]:
    """axe-core's serious and critical WCAG 2.x A/AA violations on the page as it stands (scripts/bootstrap --test
    installs axe-core from npm); ``url``: where the page's own origin serves it, for a page whose CSP forbids an
    inline script."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/bootstrap --test (it installs axe-core from npm)")
    if url:
        page.add_script_tag(url=url)
    else:
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    return list(found)


def reloaded_summary(page) -> str:
    """The account page's mirror summary, reloaded (for ``tests.webapp.wait_until_mirrored``)."""
    page.reload()
    return str(page.locator("#mirror-summary").inner_text())
