"""What every command shares: settings built here (the edge), the event loop, and the one place errors become
messages and exit codes."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Column, Table

from filmroll import errors, eventloop
from filmroll.exits import ExitStatus, status_of

if TYPE_CHECKING:
    from filmroll.settings import Settings
    from filmroll.store.database import Database

T = TypeVar("T")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}  # a redirect URI's host on this machine


def _console(stream: TextIO, **options: Any) -> Console:
    """Not a terminal (a script, a pipe, a log): nothing wraps at rich's default 80 columns, tables included (a
    table row on one line), unless COLUMNS says how wide to be."""
    if stream.isatty():
        return Console(highlight=False, **options)
    return Console(highlight=False, soft_wrap=True, width=None if os.environ.get("COLUMNS") else _UNWRAPPED,
                   **options)


_UNWRAPPED = 1000  # wider than any line filmroll prints, so a table takes only the width its cells need
console = _console(sys.stdout)
err_console = _console(sys.stderr, stderr=True)


def table(*columns: str | Column, **options: Any) -> Table:
    """A table whose long values fold onto the next line instead of ending in "…": a URL to paste, an error, an id
    is printed whole at any width (a narrow terminal, or COLUMNS set for a pipe)."""
    made = [Column(header=c) if isinstance(c, str) else c for c in columns]
    for column in made:
        column.overflow = "fold"
    return Table(*made, **options)


EXIT_CODES_HELP = "Exit codes: " + ", ".join(f"{s.value} {s.name.lower().replace('_', ' ')}" for s in ExitStatus)


def served_at(current: Settings, *, host: str | None = None, port: int | None = None,
              tls: bool = False) -> tuple[str, str, int]:
    """Where `filmroll serve` listens with these settings: (scheme, host, port). A redirect URI on this machine
    names the port the owner comes back to (unless FILMROLL_WEB__PORT says otherwise), and an https one makes serve
    speak HTTPS with a certificate of its own; the feeds' URLs are printed from the same answer."""
    redirect = urlsplit(current.instagram.redirect_uri)
    local = redirect.hostname in LOCAL_HOSTS
    if port is None:
        port = redirect.port if local and redirect.port and "FILMROLL_WEB__PORT" not in os.environ \
            else current.web.port
    https = tls or bool(current.web.tls_cert) or (local and redirect.scheme == "https")
    return "https" if https else "http", host or current.web.host, port


def bind(host: str, port: int, *, option: str = "--port") -> socket.socket:
    """A listening address of our own, or one line and exit 2 naming it. Bound without SO_REUSEPORT, so a port that
    another server holds (with SO_REUSEPORT, as Granian binds, or without) is refused rather than shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = ("is already in use (another filmroll, or another program)" if exc.errno == errno.EADDRINUSE
                  else f"cannot be used ({exc.strerror})")
        fail(f"{host}:{port} {reason}; stop it, or choose another port with {option}", ExitStatus.CONFIG)
    return sock


def settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from filmroll.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"FILMROLL_{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        fail(f"the configuration is invalid: {problems}", ExitStatus.CONFIG)
    except SettingsError as exc:  # a list or table setting that is not JSON
        named = re.search(r'field "([a-z_]+)"', str(exc))
        field = f"a setting ({named[1]})" if named else "a setting"
        fail(f"the configuration is invalid: {field} must be JSON, e.g. FILMROLL_INSTAGRAM__SCOPES="
             '\'["instagram_business_basic"]\'', ExitStatus.CONFIG)


@asynccontextmanager
async def database(current: Settings | None = None, *, check: bool = True,
                   create: bool = False) -> AsyncIterator[Database]:
    """The database alone, for a command that needs neither the keyring nor Instagram (admins, keys, the schema):
    opened, its schema checked unless ``check`` is off (`filmroll db` itself), and closed afterwards; a SQLite file
    is created only with ``create`` (`filmroll db upgrade`). The rest use ``runtime.open_runtime``."""
    from filmroll.store import migrate
    from filmroll.store.database import Database

    opened = Database((current or settings()).database_url, create=create)
    try:
        if check:
            await migrate.require_current(opened)
        yield opened
    finally:
        await opened.dispose()


_output = {"json": False}  # one command per process: set by a command given --json, read by fail()


def json_output(enabled: bool) -> None:
    """From here on, answers (failures too) go to stdout as JSON: a script parses every outcome alike."""
    _output["json"] = enabled


def emit(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, default=_plain))


def _plain(value: object) -> object:
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def fail(message: str, status: ExitStatus = ExitStatus.ERROR, **facts: object) -> NoReturn:
    """One line on stderr (or, under --json, ``{"ok": false, "error": …, "exit_code": …, "message": …}`` on stdout)
    and the exit code."""
    report(message, status, **facts)
    raise typer.Exit(int(status))


def report(message: str, status: ExitStatus, **facts: object) -> None:
    """What :func:`fail` says, without ending the command (``main``'s funnel exits itself)."""
    if _output["json"]:
        emit({"ok": False, "error": status.name.lower(), "exit_code": int(status), "message": message, **facts})
    else:
        err_console.print(f"[red]error:[/red] {message}")


def explain(exc: BaseException) -> tuple[str, ExitStatus] | None:
    """The one funnel from an exception to what a person reads and the exit code; None: not one filmroll knows
    (a bug), which ``main`` reports without a traceback unless logging is at DEBUG."""
    if isinstance(exc, errors.FilmrollError):
        return exc.message, status_of(exc)
    from filmroll.store.database import explain as explain_database

    url = settings_quietly()
    found = explain_database(exc, url) if url is not None else None
    if found is not None:
        return found.message, ExitStatus.DATABASE
    return None


def settings_quietly() -> str | None:
    """The database URL the settings name, or None when the settings themselves are unreadable."""
    from filmroll.settings import Settings

    try:
        return Settings().database_url
    except Exception:
        return None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body; a FilmrollError (or a database failure) becomes one line on stderr and a
    distinct exit status, Ctrl-C exit 130."""
    try:
        return eventloop.run(coroutine)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(ExitStatus.INTERRUPTED) from None
    except Exception as exc:
        explained = explain(exc)
        if explained is None:
            raise
        fail(*explained)


def read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return typer.prompt(prompt, hide_input=True)
    return sys.stdin.readline().strip()
