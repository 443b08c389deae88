"""What every command shares: settings built here (the edge), the event loop, and the one place errors become
messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from filmroll import errors, eventloop
from filmroll.vocabulary import AccountStatus

if TYPE_CHECKING:
    from filmroll.settings import Settings
    from filmroll.store.database import Database

T = TypeVar("T")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    CONFIG = 2
    NOT_FOUND = 3
    INSTAGRAM = 4
    NEEDS_REAUTH = 5
    VAULT = 6
    BUSY = 7  # a worker holds the lease on what was asked for: try again when it is done
    INVALID = 8  # a value filmroll does not take (a feed setting): nothing was changed


def settings() -> Settings:
    from pydantic import ValidationError

    from filmroll.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        fail(f"the configuration is invalid: {problems}", ExitStatus.CONFIG)


@asynccontextmanager
async def database(current: Settings | None = None, *, upgrade: bool = True) -> AsyncIterator[Database]:
    """The database alone, for a command that needs neither the keyring nor Instagram (admins, keys, the schema):
    opened, migrated unless ``upgrade`` is off, and closed afterwards. The rest use ``runtime.open_runtime``."""
    from filmroll.store import migrate
    from filmroll.store.database import Database

    opened = Database((current or settings()).database_url)
    try:
        if upgrade:
            await migrate.upgrade(opened)
        yield opened
    finally:
        await opened.dispose()


def fail(message: str, status: ExitStatus = ExitStatus.ERROR) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(int(status))


def _status(exc: errors.FilmrollError) -> ExitStatus:
    if isinstance(exc, errors.ConfigError):
        return ExitStatus.CONFIG
    if isinstance(exc, errors.VaultError):
        return ExitStatus.VAULT
    if isinstance(exc, errors.AccountNotFoundError | errors.FeedNotFoundError):
        return ExitStatus.NOT_FOUND
    if isinstance(exc, errors.FeedSettingError):
        return ExitStatus.INVALID
    if isinstance(exc, errors.TokenInvalidError) or (
            isinstance(exc, errors.AccountStateError) and exc.status == AccountStatus.NEEDS_REAUTH):
        return ExitStatus.NEEDS_REAUTH
    if isinstance(exc, errors.AccountStateError) and exc.status == "busy":
        return ExitStatus.BUSY
    if isinstance(exc, errors.AccountStateError) and exc.status == "throttled":
        return ExitStatus.INSTAGRAM
    if isinstance(exc, errors.InstagramError):
        return ExitStatus.INSTAGRAM
    return ExitStatus.ERROR


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body; a FilmrollError becomes one line on stderr and a distinct exit status."""
    try:
        return eventloop.run(coroutine)
    except errors.FilmrollError as exc:
        fail(exc.message, _status(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return typer.prompt(prompt, hide_input=True)
    return sys.stdin.readline().strip()
