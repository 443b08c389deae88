"""`filmroll publish DIR` served by nginx (Debian's, on a loopback port of this test's own) gives the same JSON bytes
and the same pictures as `filmroll serve`; a republish after one new post rewrites only that feed's documents and
the new post's pictures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from filmroll.service import feeds as feed_service
from tests.integration.web.conftest import consent, start_connect
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import _sync_due_now, _wait_for, _wait_until_mirrored, make_served_feed
from tests.webapp import free_port, running_filmroll

pytestmark = pytest.mark.slow
NGINX = "/usr/sbin/nginx"


def readme_server_block(root: Path, port: int) -> str:
    """The README's nginx server block, verbatim but for the two lines a reader changes: where it listens (and the
    certificate lines), and the root."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = re.findall(r"```nginx\n(server \{.*?\n\})\n```", text, re.S)
    lines = block.splitlines()
    assert lines[1].strip().startswith("listen 443 ssl;") and lines[2].strip() == "root /var/www/feeds;", lines[:3]
    return "\n".join([lines[0], f"    listen 127.0.0.1:{port};", f"    root {root};", *lines[3:]])


def _nginx(root: Path, directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    (directory / "nginx.conf").write_text(f"""
user root; worker_processes 1; daemon off; pid {directory}/nginx.pid; error_log {directory}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy; fastcgi_temp_path {directory}/fcgi;
  uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
{readme_server_block(root, port)}
}}
""")
    process = subprocess.Popen([NGINX, "-c", str(directory / "nginx.conf"), "-p", str(directory)],
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process, f"http://127.0.0.1:{port}"
        except httpx.TransportError:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)


def _widget_shows_the_published_feed(browser, served: str, directory: Path, count: int) -> None:
    page_dir = directory / "host-page"
    page_dir.mkdir()
    (page_dir / "index.html").write_text(
        '<!doctype html><html lang=en><title>Bakery</title><link rel=icon href="data:,">'
        f'<script type="module" src="{served}/widget.js"></script>'
        f'<filmroll-feed src="{served}/feeds/bakery.json"></filmroll-feed></html>')
    port = free_port()
    host = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=page_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        deadline = time.monotonic() + 30
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:  # the host page's server is still starting
                assert time.monotonic() < deadline
                time.sleep(0.2)
        page.wait_for_function("""(count) => { const feed = document.querySelector('filmroll-feed');
            const images = feed && feed.shadowRoot ? [...feed.shadowRoot.querySelectorAll('li:not(.spare) img')]
                : [];  // the rows shown
            return images.length === count && images.every(i => i.complete && i.naturalWidth > 0); }""",
                               arg=count, timeout=30_000)
        sources = page.evaluate("""() => [...document.querySelector('filmroll-feed').shadowRoot
            .querySelectorAll('li:not(.spare) img')].map(i => i.currentSrc)""")
        assert all(url.startswith(served + "/media/") for url in sources), sources
        assert not errors, errors
    finally:
        context.close()
        host.terminate()
        host.wait(10)


def _publish(app, directory: Path) -> dict:
    settings = app.settings
    env = {**os.environ, "FILMROLL_DATABASE_URL": settings.database_url,
           "FILMROLL_VAULT__KEYS": settings.vault.keys.get_secret_value(),
           "FILMROLL_VAULT__KEYS_FILE": "/nonexistent/filmroll.keys", "FILMROLL_STORAGE__URL": settings.storage.url,
           "FILMROLL_MIRROR__CDN_HOSTS": json.dumps(settings.mirror.cdn_hosts), "FILMROLL_MIRROR__PROCESSES": "1"}
    done = subprocess.run([sys.executable, "-m", "filmroll", "publish", str(directory), "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not shutil.which(NGINX), reason="nginx is installed by scripts/bootstrap --test")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_published_feeds_served_by_nginx_are_the_same_bytes_and_a_republish_writes_only_what_changed(
        sandbox, database_url, tmp_path, browser):
    site = tmp_path / "site"
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True, feeds_base_url="/") as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 12)
        _wait_until_mirrored(admin, posts)
        params = consent(sandbox, start_connect(admin), account=14)
        assert admin.get("/callback?" + urlencode(params)).status_code == 303
        _wait_until_mirrored(admin, sandbox.control.account(14)["media_count"], account=2)
        make_served_feed(admin, database_url, feed_service.FeedSpec("Bakery", "bakery", ("1",), post_limit=4))
        make_served_feed(admin, database_url, feed_service.FeedSpec("Other", "other", ("2",), post_limit=4))
        first = _publish(app, site)
        assert first["feeds"] == ["bakery", "other"] and first["missing"] == [] and first["media_written"] > 0
        for slug in ("bakery", "other"):  # a feed's JSON is written last: seeing it means the rest is in place
            rest = [p.stat().st_mtime_ns for p in [*(site / "feeds" / slug).rglob("*"), site / "feeds" / f"{slug}.html"]
                    if p.is_file()]
            assert len(rest) > 2 and (site / "feeds" / f"{slug}.json").stat().st_mtime_ns >= max(rest)
        nginx, served = _nginx(site, tmp_path)
        try:
            url, pages = "/feeds/bakery.json", 0
            while url:
                ours = admin.get(url, headers={"Accept-Encoding": "identity"})
                theirs = httpx.get(served + url)
                assert theirs.status_code == 200 and theirs.content == ours.content, url  # the same bytes
                assert theirs.headers["content-type"] == "application/json"
                body = theirs.json()
                for post in body["posts"]:
                    for picture in [post["fallback"]["url"], *(s[f] for s in post["sizes"] for f in ("webp", "avif"))]:
                        copy = httpx.get(served + picture)
                        assert copy.status_code == 200 and copy.content == admin.get(picture).content, picture
                url, pages = body["next"], pages + 1
            assert pages == -(-posts // 4)
            for path in ("/feeds/bakery.html", "/feeds/bakery/embed/", "/widget.js", "/feeds/feed.css"):
                assert httpx.get(served + path).status_code == 200, path
            assert httpx.get(served + "/.incoming/").status_code in (403, 404)
            # The README's block serves the widget as a JavaScript module (its `types {…}` once replaced nginx's whole
            # map: text/plain, which Chromium refuses), and the widget on a page of another origin shows the feed.
            assert httpx.get(served + "/widget.js").headers["content-type"] == "application/javascript"
            _widget_shows_the_published_feed(browser, served, tmp_path, min(posts, 12))  # 12: its default limit

            # Nothing changed: nothing is written again.
            again = _publish(app, site)
            assert again["documents_written"] == 0 and again["media_written"] == 0 and again["removed"] == 0
            other_files = {p: p.stat().st_mtime_ns for p in (site / "feeds").rglob("*") if p.is_file()
                           and (p.name.startswith("other") or "/other/" in str(p))}
            assert other_files

            # One new post: only the bakery's documents and the new post's pictures are written.
            new = sandbox.control.add_media(12, caption="Fresh rye #bread", media_type="IMAGE")
            _sync_due_now(database_url)
            _wait_for(admin, "/feeds/bakery.json", lambda b: b["posts"][0]["id"] == new["id"], 60)
            latest = admin.get("/feeds/bakery.json").json()["posts"][0]
            named = {latest["fallback"]["url"], *(s[f] for s in latest["sizes"] for f in ("webp", "avif"))}
            third = _publish(app, site)
            assert third["media_written"] == len(named) and third["missing"] == []
            assert third["documents_written"] >= 1
            assert {p: p.stat().st_mtime_ns for p in other_files} == other_files  # the other feed untouched
            assert httpx.get(served + "/feeds/bakery.json").json()["posts"][0]["id"] == new["id"]
            assert not [p for p in site.rglob("*") if re.search(r"\.[0-9a-f]{12}$", p.name)]  # no temporary left
        finally:
            nginx.terminate()
            nginx.wait(10)
            nginx.stderr.close()
        admin.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_worker_republishes_a_feed_after_a_sync_changes_it(sandbox, database_url, tmp_path):
    site = tmp_path / "site"
    with running_filmroll(sandbox, database_url, worker=True, socket=False, mirror=True,
                          publish_dir=str(site)) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 12)
        _wait_until_mirrored(admin, posts)
        make_served_feed(admin, database_url, feed_service.FeedSpec("Bakery", "bakery", ("1",), post_limit=4))
        published = site / "feeds" / "bakery.json"

        def first_post() -> str | None:
            try:
                return json.loads(published.read_bytes())["posts"][0]["id"]
            except (FileNotFoundError, json.JSONDecodeError, IndexError):
                return None

        served = admin.get("/feeds/bakery.json").json()["posts"][0]["id"]
        deadline = time.monotonic() + 30
        while first_post() != served:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert (site / "widget.js").exists() and (site / "feeds" / "bakery" / "embed" / "index.html").exists()
        new = sandbox.control.add_media(12, caption="Out of the oven", media_type="IMAGE")
        _sync_due_now(database_url)
        deadline = time.monotonic() + 60
        while first_post() != new["id"]:  # synced, mirrored, then published: with nobody running a command
            assert time.monotonic() < deadline
            time.sleep(0.2)
        picture = json.loads(published.read_bytes())["posts"][0]["fallback"]["url"]
        assert (site / picture.removeprefix("/")).is_file()
        admin.close()
