"""``filmroll moderation list|approve|reject``: which of other people's posts (hashtags, other profiles) a feed
shows. FEED is the feed's slug; POST is the post's ``id`` in the feed's JSON (Instagram's media id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from filmroll.cli import common
from filmroll.cli.common import console, emit, json_output, run

if TYPE_CHECKING:
    from filmroll.service.moderation import QueueItem

app = typer.Typer(help="Approve or reject other people's posts (hashtags, other profiles) before a feed shows them.",
                  no_args_is_help=True)
_JSON = typer.Option(False, "--json", help="Machine-readable output (failures too)")


def _as_dict(item: QueueItem) -> dict[str, object]:
    return {"id": item.ig_media_id, "source": item.source, "username": item.username, "caption": item.caption,
            "type": item.media_type, "timestamp": item.timestamp.isoformat() if item.timestamp else None,
            "permalink": item.permalink, "status": item.state.value, "decided_by": item.decided_by,
            "decided_at": item.decided_at.isoformat() if item.decided_at else None}


@app.command("list")
def list_posts(feed: str = typer.Argument(..., help="The feed's slug"),
               status: str | None = typer.Option(None, "--status", help="pending, approved or rejected"),
               as_json: bool = _JSON) -> None:
    """The feed's posts from hashtags and other profiles, newest first, with who decided and when."""
    json_output(as_json)
    from filmroll.service import moderation
    from filmroll.vocabulary import PostState

    wanted = None
    if status is not None:
        if status not in ("pending", "approved", "rejected"):
            common.fail(f"--status is pending, approved or rejected (got {status[:40]!r})", common.ExitStatus.INVALID)
        wanted = PostState(status)

    async def body() -> list[QueueItem]:
        async with common.database() as opened:
            return await moderation.queue(opened, feed, wanted)

    found = run(body())
    if as_json:
        emit([_as_dict(item) for item in found])
        return
    table = common.table("id", "source", "status", "decided", "caption", title=f"{len(found)} post(s) in {feed}")
    for item in found:
        decided = f"{item.decided_by or ''} {item.decided_at:%Y-%m-%d %H:%M}" if item.decided_at else \
            (item.decided_by or "")
        table.add_row(item.ig_media_id, item.source, item.state.value, decided.strip(), (item.caption or "")[:60])
    console.print(table)


def _decide(feed: str, posts: list[str], decision: str, as_json: bool) -> None:
    json_output(as_json)
    from filmroll.service import moderation
    from filmroll.vocabulary import PostState

    async def body() -> int:
        async with common.database() as opened:
            return await moderation.decide(opened, feed, posts, PostState(decision), by="cli")

    changed = run(body())
    if as_json:
        emit({"ok": True, "feed": feed, "status": decision, "posts": posts, "changed": changed})
    else:
        console.print(f"{decision} {len(posts)} post(s) in {feed} ({changed} changed); sites see it within a minute")


@app.command("approve")
def approve(feed: str = typer.Argument(..., help="The feed's slug"),
            posts: list[str] = typer.Argument(..., help="Post ids (the feed JSON's id)"),
            as_json: bool = _JSON) -> None:
    """Show these posts in the feed (and republish it)."""
    _decide(feed, posts, "approved", as_json)


@app.command("reject")
def reject(feed: str = typer.Argument(..., help="The feed's slug"),
           posts: list[str] = typer.Argument(..., help="Post ids (the feed JSON's id)"),
           as_json: bool = _JSON) -> None:
    """Never show these posts in the feed: not in its JSON, HTML, widget or published files."""
    _decide(feed, posts, "rejected", as_json)
