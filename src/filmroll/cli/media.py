"""``filmroll media ACCOUNT``, ``filmroll mirror ACCOUNT`` and ``filmroll storage usage|gc``: the mirrored pictures,
looked at, fetched now, measured and collected."""

from __future__ import annotations

import json

import typer

from filmroll.cli import common
from filmroll.cli.common import ExitStatus, console, fail, run, settings
from filmroll.vocabulary import Outcome

storage_app = typer.Typer(help="The stored pictures: how much room they take, and removing what is unreferenced.",
                          no_args_is_help=True)


def media(account: str = typer.Argument(..., help="id, @username or slug"),
          as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
          limit: int = typer.Option(1000, "--limit", min=1, max=100_000, help="At most this many posts")) -> None:
    """An account's posts, newest first, and where their pictures stand in the mirror."""

    from filmroll.runtime import open_runtime
    from filmroll.service import media as media_service

    async def read() -> tuple[str | None, list[media_service.PostView]]:
        async with open_runtime(settings()) as runtime:
            found, views = await media_service.posts(runtime.database, account, limit=limit)
            return found.username, views

    username, views = run(read())
    if as_json:
        typer.echo(json.dumps([{
            "ig_media_id": v.ig_media_id, "media_type": v.media_type, "is_reel": v.is_reel,
            "timestamp": v.timestamp.isoformat() if v.timestamp else None, "caption": v.caption,
            "permalink": v.permalink, "mirror_state": v.mirror_state, "mirror_error": v.mirror_error,
            "like_count": v.like_count, "comments_count": v.comments_count,
            "width": v.width, "height": v.height, "color": v.color,  # the original's size, not a variant's
            "files": v.files, "bytes": v.bytes, "children": v.children, "variants": v.variants} for v in views],
            indent=2))
        return
    table = common.table("posted", "type", "likes", "comments", "mirror", "files", "caption",
                         title=f"@{username}: {len(views)} posts, "
                               f"{sum(v.mirror_state == 'mirrored' for v in views)} mirrored")
    for v in views:
        state = v.mirror_state + (f" ({v.mirror_error[:60]})" if v.mirror_error else "")
        table.add_row(f"{v.timestamp:%Y-%m-%d}" if v.timestamp else "", "REEL" if v.is_reel else v.media_type or "",
                      "-" if v.like_count is None else f"{v.like_count:,}",
                      "-" if v.comments_count is None else f"{v.comments_count:,}", state,
                      f"{v.files} · {v.bytes / 1e6:.1f} MB", (v.caption or "").replace("\n", " ")[:50])
    console.print(table)


def mirror(account: str = typer.Argument(..., help="id, @username or slug")) -> None:
    """Store an account's pictures now, in the foreground (the workers do it on their own soon after each sync)."""
    from rich.progress import Progress

    from filmroll.runtime import open_runtime
    from filmroll.service import media as media_service
    from filmroll.worker import worker_id

    async def now() -> media_service.MirrorReport:
        from filmroll.storage import probe

        async with open_runtime(settings()) as runtime:
            await probe(runtime.storage)  # a missing bucket is said as such (exit 12), before any picture is fetched
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("mirroring", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                return await media_service.mirror_now(runtime.mirror(f"cli:{worker_id()}"), account,
                                                      progress=progress)

    report = run(now())
    if report.outcome is Outcome.MIRROR_RETRY:
        fail(f"{report.mirrored} post(s) mirrored, {report.pending} not yet: {report.error}; the workers try again "
             "with backoff", ExitStatus.INSTAGRAM)
    console.print(f"{report.mirrored} post(s) mirrored"
                  + (f"; {report.pending} not stored: refused, or waiting on a setting it names (see "
                     f"`filmroll media {account}`)" if report.pending else
                     "; every post is in storage"))


@storage_app.command("usage")
def storage_usage(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Files and bytes stored, per account and kind (originals, posters, videos, variants)."""

    from filmroll.runtime import open_runtime
    from filmroll.service import media as media_service

    async def read() -> tuple[str, list[media_service.Usage]]:
        async with open_runtime(settings()) as runtime:
            where = runtime.storage.description
            return where, await media_service.usage(runtime.database, where)

    where, rows = run(read())
    if as_json:
        typer.echo(json.dumps({"storage": where, "accounts": [
            {"account_id": u.account_id, "username": u.username, "source_id": u.source_id, "source": u.source,
             "files": u.files, "bytes": u.bytes}
            for u in rows]}, indent=2))
        return
    kinds = ("originals", "posters", "videos", "variants", "total")
    table = common.table("source", *(common.Column(c, justify="right") for c in kinds), title=f"stored in {where}")
    for u in rows:
        cells = [f"{u.files.get(r, 0)} · {u.bytes.get(r, 0) / 1e6:.1f} MB"
                 for r in ("original", "poster", "video", "variant")]
        table.add_row(u.source, *cells, f"{sum(u.bytes.values()) / 1e6:.1f} MB")
    console.print(table)


@storage_app.command("gc")
def storage_gc() -> None:
    """Remove now what the workers' collector would: files of posts deleted longer ago than the retention period,
    of accounts disconnected as long, and objects no row refers to."""
    from filmroll.runtime import open_runtime
    from filmroll.service import media as media_service
    from filmroll.worker import worker_id

    async def collect() -> tuple[int, int]:
        async with open_runtime(settings()) as runtime:
            return await media_service.collect(runtime.mirror(f"cli:{worker_id()}"))

    before, after = run(collect())
    console.print(f"{before - after} file(s) removed; {after} kept")
