"""A chart made from /metrics, as docs/operations.md shows it: serve's embedded worker mirrors a newly connected
account's pictures (the sandbox's CDN slowed down) while /metrics is scraped twice a second; the mirror's queue falls
to zero as the stored bytes climb to what the database holds, and filmroll's own chart draws both series."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

import httpx
import jinja2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from filmroll.web import charts
from tests.e2e.test_web_connect_browser import connect_in_the_browser
from tests.seeding import index_with
from tests.webapp import running_filmroll

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("FILMROLL_SCREENSHOTS")
TEMPLATES = os.path.join(os.path.dirname(charts.__file__), "templates")


def _scrape(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10, verify=False).text  # from this machine: no key needed
    return {f.name: f.samples[0].value for f in text_string_to_metric_families(text)
            if f.name in ("filmroll_mirror_queue_posts", "filmroll_mirror_stored_bytes")}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_mirror_queue_drains_on_the_metrics_chart(sandbox, database_url, browser, tmp_path, monkeypatch):
    monkeypatch.setenv("FILMROLL_METRICS__CACHE_SECONDS", "0.4")  # a sample each scrape, for the chart
    index = index_with(sandbox, 20, 40)
    sandbox.control.add_fault("latency", endpoint="cdn", latency_ms=250)
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    with running_filmroll(sandbox, database_url, https=True, worker=True, mirror=True) as app:
        samples: list[tuple[datetime, dict[str, float]]] = [(datetime.now(UTC), _scrape(app.base_url))]
        connect_in_the_browser(page, app, sandbox, index)
        deadline = time.monotonic() + 180
        while samples[-1][1]["filmroll_mirror_queue_posts"] > 0 or not samples[-1][1]["filmroll_mirror_stored_bytes"]:
            assert time.monotonic() < deadline, samples[-3:]
            samples.append((datetime.now(UTC), _scrape(app.base_url)))
            time.sleep(0.5)
    queue = [int(s["filmroll_mirror_queue_posts"]) for _, s in samples]
    stored = [int(s["filmroll_mirror_stored_bytes"] / 1e6) for _, s in samples]
    assert max(queue) > 0 and queue[-1] == 0 and stored[-1] > stored[0]
    assert all(b >= a for a, b in itertools.pairwise(stored))  # bytes only ever grow here

    moments = [when for when, _ in samples]
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = environment.from_string("""<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{{ css }}"></head><body><main class="insights">{% from "charts.html" import line %}
<h2>filmroll_mirror_queue_posts</h2>{{ line(queue, "queue", "Posts waiting for their pictures") }}
<h2>filmroll_mirror_stored_bytes (MB)</h2>{{ line(stored, "stored", "Megabytes stored") }}</main></body></html>""")
    (tmp_path / "chart.html").write_text(html.render(
        css="file://" + os.path.join(TEMPLATES, "filmroll.css"),
        queue=charts.line_chart(moments, queue, partial_last=False, what="posts waiting"),
        stored=charts.line_chart(moments, stored, partial_last=False, what="megabytes stored")))
    page.set_viewport_size({"width": 1000, "height": 700})
    page.goto(f"file://{tmp_path / 'chart.html'}")
    assert page.locator("svg.line-chart").count() == 2 and page.locator("path.series").count() == 2
    if SHOTS:
        page.locator("main").screenshot(path=os.path.join(SHOTS, "metrics-mirror-queue.jpg"), type="jpeg",
                                        quality=82)
    context.close()
