"""``filmroll sources add|list|remove|quota``: posts that belong to no connected account, read through a Facebook
Login account: a hashtag's (kept past Instagram's 24 hours), another professional account's (Business Discovery)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from filmroll.cli import common
from filmroll.cli.common import console, emit, json_output, run, settings

if TYPE_CHECKING:
    from filmroll.service.sources import QuotaView, SourceView

app = typer.Typer(help="Sources of other people's posts: hashtags and other profiles, read through a Facebook Login "
                       "account.", no_args_is_help=True)
add_app = typer.Typer(help="Add a hashtag or another profile as a source.", no_args_is_help=True)
app.add_typer(add_app, name="add")

_VIA = typer.Option(..., "--via", help="The Facebook Login account to read it through: id or @username")
_JSON = typer.Option(False, "--json", help="Machine-readable output (failures too)")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _as_dict(view: SourceView) -> dict[str, Any]:
    return {"id": view.id, "kind": view.kind, "name": view.name, "query": view.query, "via": view.via,
            "status": view.status, "posts": view.posts, "last_synced_at": _iso(view.last_synced_at),
            "next_sync_at": _iso(view.next_sync_at), "sync_error": view.sync_error}


def _added(view: SourceView, as_json: bool) -> None:
    if as_json:
        emit({"ok": True, "created": view.created, **_as_dict(view)})
        return
    verb = "added" if view.created else "already a source:"
    console.print(f"{verb} {view.name} (source {view.id}) read through {view.via}; a running worker fetches its "
                  f"posts now, then keeps them. Put it in a feed: `filmroll feeds create TITLE "
                  f"--{view.kind} {view.query}`.")


def _add(kind: str, value: str, via: str, as_json: bool) -> None:
    json_output(as_json)
    from filmroll.runtime import open_runtime
    from filmroll.service import sources

    add = sources.add_hashtag if kind == "hashtag" else sources.add_profile

    async def body() -> SourceView:
        async with open_runtime(settings()) as runtime:
            return await add(runtime.database, runtime.vault, runtime.clients, value, via=via)

    _added(run(body()), as_json)


@add_app.command("hashtag")
def add_hashtag(name: str = typer.Argument(..., help="The tag, with or without #"), via: str = _VIA,
                as_json: bool = _JSON) -> None:
    """A hashtag's public posts, every one kept with its pictures (Instagram shows them for 24 hours only). Costs
    one of the account's 30 unique tags a week, unless it was searched before; a 31st is refused before any call."""
    _add("hashtag", name, via, as_json)


@add_app.command("profile")
def add_profile(username: str = typer.Argument(..., help="Another professional account's username"),
                via: str = _VIA, as_json: bool = _JSON) -> None:
    """Another professional account's profile and every post (Business Discovery). A personal or unknown account
    is refused (exit 8) and nothing is kept."""
    _add("profile", username, via, as_json)


@app.command("list")
def list_sources(as_json: bool = _JSON) -> None:
    """Every source: the accounts' own posts, hashtags and other profiles, with posts kept and the last sync."""
    json_output(as_json)
    from filmroll.service import sources

    async def body() -> list[SourceView]:
        async with common.database() as opened:
            return await sources.listing(opened)

    found = run(body())
    if as_json:
        emit([_as_dict(v) for v in found])
        return
    table = common.table("id", "source", "kind", "via", "status", "posts", "last sync", "problem",
                         title=f"{len(found)} source(s)")
    for v in found:
        table.add_row(str(v.id), v.name, v.kind, v.via or "-", v.status, f"{v.posts:,}",
                      f"{v.last_synced_at:%Y-%m-%d %H:%M}" if v.last_synced_at else "never", v.sync_error or "")
    console.print(table)


@app.command("remove")
def remove(source: str = typer.Argument(..., help="The source's id, #tag or @username"),
           as_json: bool = _JSON) -> None:
    """Remove a hashtag or profile source: its posts and stored pictures go, and feeds stop showing them. The tag's
    id is kept, so adding it again searches nothing."""
    json_output(as_json)
    from filmroll.runtime import open_runtime
    from filmroll.service import sources

    async def body() -> SourceView:
        async with open_runtime(settings()) as runtime:
            return await sources.remove(runtime.database, runtime.storage, source)

    view = run(body())
    if as_json:
        emit({"ok": True, "removed": _as_dict(view)})
    else:
        console.print(f"removed {view.name} (source {view.id}) and its {view.posts:,} post(s)")


@app.command("quota")
def quota(account: str = typer.Argument(..., help="The Facebook Login account: id or @username"),
          offline: bool = typer.Option(False, "--offline", help="Do not ask Instagram for its own list first"),
          as_json: bool = _JSON) -> None:
    """The account's hashtag quota: Instagram allows 30 unique tags in a rolling 7 days per account; each tag
    counted, and when its slot frees."""
    json_output(as_json)
    from filmroll.runtime import open_runtime
    from filmroll.service import sources

    async def body() -> QuotaView:
        async with open_runtime(settings()) as runtime:
            return await sources.quota(runtime.database, runtime.vault, runtime.clients, account,
                                       reconcile=not offline)

    view = run(body())
    if as_json:
        emit({"account": view.account, "limit": view.limit, "used": view.used,
              "tags": [{"name": name, "first_searched_at": first.isoformat(), "frees_at": frees.isoformat()}
                       for name, first, frees in view.tags]})
        return
    console.print(f"{view.account}: {view.used} of {view.limit} unique hashtags used in the last 7 days")
    if view.tags:
        table = common.table("tag", "first searched", "frees")
        for name, first, frees in view.tags:
            table.add_row(f"#{name}", f"{first:%Y-%m-%d %H:%M}", f"{frees:%Y-%m-%d %H:%M}")
        console.print(table)
