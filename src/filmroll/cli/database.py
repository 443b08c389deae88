"""``filmroll db``: schema migrations."""

from __future__ import annotations

import typer

from filmroll.cli.common import console, database, run

app = typer.Typer(help="The database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database schema up to date (creates the SQLite file if needed)."""

    async def body() -> str:
        from filmroll.store import migrate

        async with database(check=False, create=True) as opened:
            return await migrate.upgrade(opened)

    console.print(f"database schema at revision {run(body())}")


@app.command("current")
def current() -> None:
    """Show the schema revision of the database, and the latest one this filmroll knows."""

    async def body() -> str | None:
        from filmroll.store import migrate

        async with database(check=False) as opened:
            return await migrate.current(opened)

    revision = run(body())
    from filmroll.store import migrate

    console.print(f"database: {revision or 'empty'}; latest: {migrate.head()}")
