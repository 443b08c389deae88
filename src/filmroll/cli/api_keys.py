"""``filmroll api-keys create|list|revoke``: keys for the management API (``/api/v1``). A key is printed once, when
it is made; filmroll keeps only its SHA-256."""

from __future__ import annotations

import typer

from filmroll.cli import common
from filmroll.cli.common import console, database, emit, json_output, run

app = typer.Typer(help="Keys for the management API (/api/v1): create, list, revoke.", no_args_is_help=True)
_JSON = typer.Option(False, "--json", help="Machine-readable output")


@app.command("create")
def create(name: str = typer.Argument(..., help="What the key is for (a person reads it in the list)"),
           scope: str = typer.Option(..., "--scope", help="read (GET only) or write (everything)"),
           as_json: bool = _JSON) -> None:
    """Make a key. It is shown this once: store it where the program that uses it reads its secrets."""
    json_output(as_json)
    from filmroll.service import api_keys

    async def body() -> tuple[api_keys.ApiKeyView, str]:
        api_keys.check_name(name)
        api_keys.check_scope(scope)  # before the database is opened: bad input changes nothing
        async with database() as opened:
            return await api_keys.create(opened, name, scope, actor="cli")

    view, key = run(body())
    if as_json:
        emit({**view.as_json(), "key": key})
        return
    console.print(f"API key {view.id} ({view.name}, {view.scope}):")
    typer.echo(key)
    console.print("Shown once: filmroll keeps only its SHA-256. Send it as `Authorization: Bearer <key>`.")


@app.command("list")
def listing(revoked: bool = typer.Option(False, "--revoked", help="Revoked keys too"), as_json: bool = _JSON) -> None:
    """The keys, never the keys themselves: id, name, scope, first characters, created, last used."""
    json_output(as_json)
    from filmroll.service import api_keys

    async def body() -> list[api_keys.ApiKeyView]:
        async with database() as opened:
            return await api_keys.listing(opened, revoked=revoked)

    keys = run(body())
    if as_json:
        emit([k.as_json() for k in keys])
        return
    table = common.table("id", "name", "scope", "key", "created", "last used", title=f"{len(keys)} API key(s)")
    for k in keys:
        table.add_row(str(k.id), k.name, k.scope, k.prefix + "…", f"{k.created_at:%Y-%m-%d %H:%M}",
                      f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
                      + (f" (revoked {k.revoked_at:%Y-%m-%d})" if k.revoked_at else ""))
    console.print(table)


@app.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key's id, or its name (every live key of that name)"),
           as_json: bool = _JSON) -> None:
    """Revoke a key: the next request that carries it is refused (401)."""
    json_output(as_json)
    from filmroll.service import api_keys

    async def body() -> list[api_keys.ApiKeyView]:
        async with database() as opened:
            return await api_keys.revoke(opened, key, actor="cli")

    gone = run(body())
    if as_json:
        emit({"revoked": [k.id for k in gone]})
        return
    console.print("revoked " + ", ".join(f"key {k.id} ({k.name})" for k in gone))
