"""``filmroll connect-link create``: a single-use link an account's owner opens to connect it, with no admin login
(``service/connect_links.py``); the account carries your ``--custom-id``."""

from __future__ import annotations

from datetime import timedelta

import typer

from filmroll.cli.common import console, database, emit, json_output, run, settings

app = typer.Typer(help="Connect links for your clients: they connect their own account, no admin login.",
                  no_args_is_help=True)


@app.command("create")
def create(custom_id: str = typer.Option(..., "--custom-id", help="Your own id for the client; the account "
                                                                  "carries it"),
           return_url: str | None = typer.Option(None, "--return-url", help="Where the owner lands afterwards (an "
                                                 "origin in FILMROLL_API__RETURN_ORIGINS)"),
           expires_in: int = typer.Option(7 * 86_400, "--expires-in", help="Seconds the link stays usable "
                                          "(300 to 30 days)"),
           provider: str = typer.Option("instagram_login", "--provider", help="instagram_login or facebook"),
           as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Make a connect link. Send its URL to the account's owner: it works once, until it expires."""
    json_output(as_json)
    from filmroll.service import connect_links

    current = settings()

    async def body() -> connect_links.ConnectLinkView:
        connect_links.check_custom_id(custom_id)  # before the database is opened: bad input changes nothing
        if return_url is not None:
            connect_links.check_return_url(return_url, current.api.return_origins)
        async with database(current) as opened:
            return await connect_links.create(
                opened, custom_id=custom_id, provider=provider, return_url=return_url,
                expires_in=timedelta(seconds=expires_in), allowed_origins=current.api.return_origins,
                public_origin=current.public_origin(), actor="cli")

    made = run(body())
    if as_json:
        emit(made.as_json())
        return
    console.print(f"connect link {made.id} for {made.custom_id} ({made.provider}), until "
                  f"{made.expires_at:%Y-%m-%d %H:%M} UTC; shown once:")
    typer.echo(made.url)
