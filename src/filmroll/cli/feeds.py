"""``filmroll feeds create|list|show|edit|delete``: what websites show, and where they fetch it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from filmroll.cli import common
from filmroll.cli.common import console, database, run, settings

if TYPE_CHECKING:
    from filmroll.service.feeds import FeedInfo

app = typer.Typer(help="Feeds: the posts of one or more accounts, as JSON, HTML and a widget for websites.",
                  no_args_is_help=True)

_ACCOUNT = typer.Option(None, "--account", "-a", help="id, @username or slug; repeat for several accounts")
_HASHTAG = typer.Option(None, "--hashtag", help="A hashtag's posts (added as a source when it is none yet); repeat")
_PROFILE = typer.Option(None, "--profile", help="Another professional account's posts (Business Discovery); "
                        "repeat")
_VIA = typer.Option(None, "--via", help="The Facebook Login account that reads new --hashtag and --profile "
                    "sources (needed when there are several)")
_MODERATION = typer.Option(None, "--moderation", help="open (other people's posts show on arrival) or approve "
                           "(only once approved: the default with a --hashtag)")
_BLOCK = typer.Option(None, "--block-word", help="Reject a post whose caption has this word (any case or accent); "
                      "repeat")
_LIMIT = typer.Option(None, "--limit", help="Posts per page (1-100; 'load more' reaches the rest)")
_TYPES = typer.Option(None, "--type", help="IMAGE, VIDEO or CAROUSEL_ALBUM; repeat (default: all three)")
_REELS = typer.Option(None, "--reels/--no-reels", help="Show reels (default: yes)")
_INCLUDE = typer.Option(None, "--include-hashtag", help="Only posts with one of these hashtags; repeat")
_EXCLUDE = typer.Option(None, "--exclude-hashtag", help="Never posts with this hashtag; repeat")
_ORIGIN = typer.Option(None, "--origin", help="A site allowed to fetch and frame the feed, e.g. "
                                              "https://www.example.org; repeat ('*', the default: any site)")
_JSON = typer.Option(False, "--json", help="Machine-readable output")


def _base() -> str:
    """Where the feeds are reached: the configured base or public URL, else where `filmroll serve` listens with
    the same settings (scheme, host and port: common.served_at, which serve itself asks)."""
    current = settings()
    if current.feeds.base_url or current.web.public_url:
        return (current.feeds.base_url or current.web.public_url or "").rstrip("/")
    scheme, host, port = common.served_at(current)
    if not host or (host.replace(".", "").replace(":", "") in ("", "0")):  # every interface: name this machine
        host = "localhost"
    return f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"


def _as_dict(info: FeedInfo, base: str) -> dict[str, Any]:
    return {"slug": info.slug, "title": info.title, "accounts": info.accounts, "sources": info.sources,
            "moderation": info.moderation, "block_words": info.block_words, "post_limit": info.post_limit,
            "media_types": info.media_types, "reels": info.reels, "include_hashtags": info.include_hashtags,
            "exclude_hashtags": info.exclude_hashtags, "allowed_origins": info.allowed_origins,
            "hidden": info.hidden, "pinned": info.pinned, "changed_at": info.changed_at.isoformat(),
            "urls": _urls(info.slug, base)}


def _urls(slug: str, base: str) -> dict[str, str]:
    return {"json": f"{base}/feeds/{slug}.json", "html": f"{base}/feeds/{slug}.html",
            "embed": f"{base}/feeds/{slug}/embed", "widget": f"{base}/widget.js"}


def _print(info: FeedInfo, base: str, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_as_dict(info, base), indent=2))
        return
    urls = _urls(info.slug, base)
    console.print(f"[bold]{info.title}[/bold] ({info.slug}): {', '.join(info.sources)}, {info.post_limit} posts "
                  f"per page, {', '.join(info.media_types)}{'' if info.reels else ', no reels'}")
    if info.moderation != "open" or info.block_words:
        console.print(f"  moderation: {info.moderation}"
                      + (f"; block words: {', '.join(info.block_words)}" if info.block_words else "")
                      + (f" (`filmroll moderation list {info.slug}`)" if info.moderation == "approve" else ""))
    if info.include_hashtags or info.exclude_hashtags:
        console.print(f"  hashtags: only {' '.join('#' + t for t in info.include_hashtags) or 'any'}; never "
                      f"{' '.join('#' + t for t in info.exclude_hashtags) or '-'}")
    if info.hidden or info.pinned:
        console.print(f"  pinned: {', '.join(info.pinned) or '-'}; hidden: {', '.join(info.hidden) or '-'}")
    console.print(f"  allowed origins: {' '.join(info.allowed_origins)}")
    console.print(f"  JSON   {urls['json']}\n  HTML   {urls['html']}\n  embed  {urls['embed']}")
    console.print("  on a web page:", style="dim")
    typer.echo(f'    <script type="module" src="{urls["widget"]}"></script>\n'
               f'    <filmroll-feed src="{urls["json"]}" layout="grid" columns="3" limit="{info.post_limit}">'
               '</filmroll-feed>')


@app.command("create")
def create(title: str = typer.Argument(..., help="The feed's title (its slug is made from it unless --slug)"),
           account: list[str] | None = _ACCOUNT, hashtag: list[str] | None = _HASHTAG,
           profile: list[str] | None = _PROFILE, via: str | None = _VIA,
           slug: str | None = typer.Option(None, "--slug", help="The feed's URL name"),
           limit: int | None = _LIMIT, media_type: list[str] | None = _TYPES, reels: bool | None = _REELS,
           include: list[str] | None = _INCLUDE, exclude: list[str] | None = _EXCLUDE,
           origin: list[str] | None = _ORIGIN, moderation: str | None = _MODERATION,
           block_word: list[str] | None = _BLOCK, as_json: bool = _JSON) -> None:
    """Make a feed of accounts' posts, hashtags and other profiles, and print its URLs and the two lines of HTML for
    a web page. A source still syncing is fine: the feed fills as its posts arrive. With a hashtag, nothing shows
    until posts are approved (`filmroll moderation`), unless --moderation open."""
    common.json_output(as_json)
    from filmroll.service import feeds as feed_service

    spec = feed_service.FeedSpec(title, slug or feed_service.slug_for(title), tuple(account or ()),
                                 moderation=moderation, block_words=tuple(block_word or ()))
    spec = _changed(spec, limit=limit, media_type=media_type, reels=reels, include=include, exclude=exclude,
                    origin=origin)
    if not account and not hashtag and not profile:
        common.fail("a feed needs at least one source: --account @username, --hashtag NAME or --profile USERNAME",
                    common.ExitStatus.INVALID)

    async def make() -> FeedInfo:
        from dataclasses import replace

        from filmroll.service import sources

        # Every value checked before a source is added (the sources to come stand in as one).
        checked = replace(spec, sources=(0,) if hashtag or profile else ()).checked()
        if not hashtag and not profile:
            async with database() as opened:
                return await feed_service.create(opened, checked)
        from filmroll.runtime import open_runtime

        async with open_runtime(settings()) as runtime:
            ids = [(await sources.ensure(runtime.database, runtime.vault, runtime.clients, kind, name, via=via)).id
                   for kind, names in (("hashtag", hashtag or []), ("profile", profile or [])) for name in names]
            return await feed_service.create(runtime.database, replace(checked, sources=tuple(ids)))

    _print(run(make()), _base(), as_json=as_json)


def _changed(spec: Any, **given: Any) -> Any:
    from dataclasses import replace

    names = {"limit": "post_limit", "media_type": "media_types", "reels": "reels", "include": "include_hashtags",
             "exclude": "exclude_hashtags", "origin": "allowed_origins", "account": "accounts", "title": "title",
             "new_slug": "slug", "moderation": "moderation", "block_word": "block_words"}
    change = {names[k]: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v not in (None, [])}
    return replace(spec, **change)


@app.command("list")
def list_feeds(as_json: bool = _JSON) -> None:
    """Every feed, with its accounts and URL."""

    from filmroll.service import feeds as feed_service

    async def read() -> list[FeedInfo]:
        async with database() as opened:
            return await feed_service.list_feeds(opened)

    found, base = run(read()), _base()
    if as_json:
        typer.echo(json.dumps([_as_dict(f, base) for f in found], indent=2))
        return
    if not found:
        console.print("no feeds yet: `filmroll feeds create TITLE --account @username`")
        return
    table = common.table("slug", "title", "accounts", "per page", "JSON", title=f"{len(found)} feed(s)")
    for f in found:
        table.add_row(f.slug, f.title, ", ".join(f.accounts), str(f.post_limit), _urls(f.slug, base)["json"])
    console.print(table)


@app.command("show")
def show(slug: str = typer.Argument(..., help="The feed's slug"), as_json: bool = _JSON) -> None:
    """One feed's settings and URLs."""
    from filmroll.service import feeds as feed_service

    async def read() -> FeedInfo:
        async with database() as opened:
            return await feed_service.show(opened, slug)

    _print(run(read()), _base(), as_json=as_json)


@app.command("edit")
def edit(slug: str = typer.Argument(..., help="The feed's slug"),
         title: str | None = typer.Option(None, "--title"), new_slug: str | None = typer.Option(None, "--slug"),
         account: list[str] | None = typer.Option(None, "--account", "-a", help="Replaces the accounts; repeat"),
         limit: int | None = _LIMIT, media_type: list[str] | None = _TYPES, reels: bool | None = _REELS,
         include: list[str] | None = _INCLUDE, exclude: list[str] | None = _EXCLUDE,
         origin: list[str] | None = _ORIGIN, moderation: str | None = _MODERATION,
         block_word: list[str] | None = typer.Option(None, "--block-word", help="Replaces the block words; repeat"),
         hide: list[str] | None = typer.Option(None, "--hide", help="A post's Instagram id never to show; repeat"),
         unhide: list[str] | None = typer.Option(None, "--unhide", help="Show a hidden post again; repeat"),
         pin: list[str] | None = typer.Option(None, "--pin", help="A post's Instagram id to show first (in the "
                                              "order given, before those pinned already); repeat"),
         unpin: list[str] | None = typer.Option(None, "--unpin", help="Unpin a post; repeat"),
         as_json: bool = _JSON) -> None:
    """Change a feed's settings; what is not given stays as it is. Sites see the change within a minute."""
    from filmroll.service import feeds as feed_service

    async def change() -> FeedInfo:
        async with database() as opened:
            current = await feed_service.show(opened, slug)
            spec = _changed(current.spec(), title=title, new_slug=new_slug, account=account, limit=limit,
                            media_type=media_type, reels=reels, include=include, exclude=exclude, origin=origin,
                            moderation=moderation, block_word=block_word)
            hidden = [i for i in spec.hidden if i not in (unhide or [])] + [i for i in hide or []]
            pinned = [*(pin or []), *(i for i in spec.pinned if i not in (unpin or []) + (pin or []))]
            fields = {k: getattr(spec, k) for k in ("title", "slug", "accounts", "post_limit", "media_types", "reels",
                                                    "include_hashtags", "exclude_hashtags", "allowed_origins",
                                                    "moderation", "block_words")}
            return await feed_service.edit(opened, slug, {**fields, "hidden": tuple(hidden), "pinned": tuple(pinned)})

    _print(run(change()), _base(), as_json=as_json)


@app.command("delete")
def delete(slug: str = typer.Argument(..., help="The feed's slug"),
           yes: bool = typer.Option(False, "--yes", help="Do not ask")) -> None:
    """Delete a feed (the posts and pictures stay: they are the accounts'). Sites showing it get a 404."""
    from filmroll.service import feeds as feed_service

    if not yes and not typer.confirm(f"delete the feed {slug!r}?"):
        raise typer.Exit(1)

    async def remove() -> None:
        async with database() as opened:
            await feed_service.delete(opened, slug)

    run(remove())
    console.print(f"feed {slug!r} deleted")
