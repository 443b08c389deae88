"""``filmroll insights ACCOUNT``: followers, follows and posts a day at a time, and the recent posts' engagement."""

from __future__ import annotations

import json

import typer

from filmroll.cli import common
from filmroll.cli.common import console, run, settings

BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "-"  # a day without a snapshot, a metric not given


def sparkline(values: list[int | None]) -> str:
    """One character a day, its height the day's value within the range; a day without a snapshot is a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(" " if v is None else BLOCKS[0 if span == 0 else round((v - low) * (len(BLOCKS) - 1) / span)]
                   for v in values)


def insights(account: str = typer.Argument(..., help="id, @username or slug"),
             days: int = typer.Option(90, "--days", help="This many days, today included (1-3660)"),
             as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Followers, follows and posts over time (a row a day; a day without a snapshot is a gap, never a guess), and
    the likes, comments, saves, reach and views of the window's posts, with their engagement rate."""
    from filmroll.runtime import open_runtime
    from filmroll.service import insights as insight_service

    async def read() -> insight_service.Insights:
        insight_service.check_days(days)  # before the database is opened: bad input changes and costs nothing
        async with open_runtime(settings()) as runtime:
            return await insight_service.history(runtime.database, account, days=days)

    found = run(read())
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
        return
    followers = [d.followers_count for d in found.days]
    known = [(d.day, d.followers_count) for d in found.days if d.followers_count is not None]
    summary = f"@{found.username}: {days} days, {found.known_days} with a snapshot"
    if len(known) >= 2:
        change = known[-1][1] - known[0][1]
        summary += f"; followers {known[0][1]:,} ({known[0][0]}) → {known[-1][1]:,} ({known[-1][0]}), {change:+,}"
    console.print(summary)
    if known:
        console.print(f"followers {sparkline(followers)}", highlight=False)
    table = common.table("day", common.Column("followers", justify="right"),
                         common.Column("follows", justify="right"), common.Column("posts", justify="right"),
                         title="a row a day (- : no snapshot that day)")
    for d in found.days:
        cells = [GAP if v is None else f"{v:,}" for v in (d.followers_count, d.follows_count, d.media_count)]
        table.add_row(f"{d.day}" + (" (so far)" if d.partial else ""), *cells)
    console.print(table)
    if not found.posts:
        console.print(f"No post in the last {days} days.")
        return
    posts = common.table("posted", *(common.Column(c, justify="right") for c in
                                     ("likes", "comments", "saves", "reach", "views", "engagement")),
                         "caption", title="posts (- : Instagram gave no value)")
    for p in found.posts:
        rate = GAP if p.engagement_rate is None else \
            f"{p.engagement_rate:.1%}" + (" of followers" if p.rate_basis == "followers" else " of reach")
        posts.add_row(f"{p.timestamp:%Y-%m-%d}" if p.timestamp else "",
                      *(GAP if v is None else f"{v:,}" for v in (p.likes, p.comments, p.saved, p.reach, p.views)),
                      rate, (p.caption or "").replace("\n", " ")[:40])
    console.print(posts)
