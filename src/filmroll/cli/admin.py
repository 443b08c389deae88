"""``filmroll admin``: people who may sign in to the web UI."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from filmroll.cli.common import console, database, fail, run

if TYPE_CHECKING:
    from filmroll.store.database import Database

T = TypeVar("T")

app = typer.Typer(help="Admins of the web UI.", no_args_is_help=True)


async def _with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    async with database() as opened:
        return await action(opened)


@app.command("create")
def create(username: str,
           password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin")) -> None:
    """Create an admin. The password (12 characters or more) is asked for, never taken as an argument."""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("no password given")
    from filmroll.service import admins

    run(_with_database(lambda database: admins.create(database, username, password)))
    console.print(f"admin {username} created")


@app.command("end-sessions")
def end_sessions(username: str) -> None:
    """Sign an admin out everywhere."""
    from filmroll.service import admins

    count = run(_with_database(lambda database: admins.end_sessions(database, username)))
    console.print(f"{count} session(s) ended")
