"""``filmroll publish DIR|s3://BUCKET/PREFIX``: every feed as static files for nginx or a CDN."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from filmroll.cli.common import console, fail, run, settings

if TYPE_CHECKING:
    from filmroll.service.publish import PublishReport


def publish(target: str = typer.Argument(..., help="A directory, or s3://BUCKET\\[/PREFIX] (the storage settings' "
                                                   "S3 endpoint and keys)"),
            feed: list[str] | None = typer.Option(None, "--feed", help="Only this feed (slug); repeat"),
            base_url: str = typer.Option("", "--base-url", help="Where the published files are reached, e.g. "
                                         "https://www.example.org (default: paths from the site's root)"),
            as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Write each feed's JSON pages, HTML fragments and embed pages, the widget, and every picture they show, to a
    directory (or S3) that any web server serves: the website no longer depends on filmroll being up. Run again
    after a change (the worker does, with FILMROLL_PUBLISH__DIR set): only what changed is written."""
    from filmroll.runtime import open_runtime, publish_target
    from filmroll.service.publish import publish as publish_feeds
    from filmroll.worker import worker_id

    current = settings()
    if base_url and not base_url.startswith(("https://", "http://", "/")):
        fail(f"--base-url must be an http(s) URL or a path, not {base_url!r}")

    async def write() -> PublishReport:
        destination = publish_target(target, current.storage)
        try:
            async with open_runtime(current) as runtime:
                return await publish_feeds(runtime.mirror(f"publish:{worker_id()}"), destination,
                                           runtime.document_settings(), base_url=base_url.rstrip("/"),
                                           slugs=feed or None)
        finally:
            await destination.close()

    report = run(write())
    if as_json:
        typer.echo(json.dumps({"target": target, "feeds": report.feeds, "documents_written": report.documents_written,
                               "documents_unchanged": report.documents_unchanged,
                               "media_written": report.media_written, "media_present": report.media_present,
                               "removed": report.removed, "bytes_written": report.bytes_written,
                               "missing": report.missing}, indent=2))
    else:
        console.print(f"{len(report.feeds)} feed(s) published to {target}: {report.documents_written} document(s) "
                      f"and {report.media_written} picture(s) written ({report.bytes_written / 1e6:.1f} MB), "
                      f"{report.documents_unchanged + report.media_present} unchanged, {report.removed} removed")
    if report.missing:
        fail(f"{len(report.missing)} picture(s) are not in storage yet (the mirror is still at work): run "
             "`filmroll publish` again once `filmroll media ACCOUNT` shows every post mirrored")

