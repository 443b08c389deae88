"""The ``filmroll`` command. Settings are built here, at the edge, and handed down as plain arguments."""

from __future__ import annotations

import logging
import os
import sys

import typer

from filmroll.cli import (
    accounts,
    admin,
    api_keys,
    connect,
    connect_links,
    database,
    demo,
    doctor,
    feeds,
    insights,
    keys,
    media,
    moderation,
    publish,
    sandbox,
    serve,
    sources,
    sync,
    webhooks,
    worker,
)
from filmroll.cli.common import EXIT_CODES_HELP, ExitStatus, err_console, explain, json_output, report

app = typer.Typer(
    name="filmroll",
    help="Connect Instagram accounts, keep their tokens alive, sync their media, serve them to websites.\n\n"
         + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("sandbox")(sandbox.sandbox)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("connect")(connect.connect)
app.command("accounts")(accounts.accounts)
app.command("sync")(sync.sync)
app.command("media")(media.media)
app.command("insights")(insights.insights)
app.command("mirror")(media.mirror)
app.command("publish")(publish.publish)
app.command("disconnect")(accounts.disconnect)
app.command("delete")(accounts.delete)
app.command("export")(accounts.export)
app.command("reconnect-link")(accounts.reconnect_link)
app.command("probe")(accounts.probe)
app.command("doctor")(doctor.doctor)
app.add_typer(accounts.token_app, name="token")
app.add_typer(keys.app, name="keys")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(connect_links.app, name="connect-link")
app.add_typer(database.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(media.storage_app, name="storage")
app.add_typer(feeds.app, name="feeds")
app.add_typer(sources.app, name="sources")
app.add_typer(moderation.app, name="moderation")
app.add_typer(webhooks.app, name="webhooks")


@app.callback()
def _root(log_level: str = typer.Option("WARNING", envvar="FILMROLL_LOG_LEVEL",
                                         help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)")) -> None:
    """filmroll: Instagram tokens that never die silently."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from filmroll.settings import unknown_variables
    from filmroll.store.database import CancelledCheckin

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, CancelledCheckin) for f in handler.filters):
            handler.addFilter(CancelledCheckin())

    for name, closest in unknown_variables(os.environ):
        err_console.print(f"[yellow]warning:[/yellow] {name} is not a filmroll setting and is ignored"
                          + (f" (did you mean {closest}?)" if closest else ""), markup=True, highlight=False)


def main() -> None:
    """The one funnel: every failure ends as a message that says what to do and its documented exit code; a
    traceback only for a bug, and only at FILMROLL_LOG_LEVEL=DEBUG."""
    # A --json command answers its failures as JSON too, those raised before its body runs included (the database
    # check of a listing, say).
    json_output("--json" in sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
    except typer.TyperException as exc:  # a usage error (typer's own click): it shows itself, exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        sys.exit(getattr(exc, "exit_code", ExitStatus.CONFIG))
    except Exception as exc:
        explained = explain(exc)
        if explained is None:
            logging.getLogger("filmroll").debug("unexpected error", exc_info=True)
            explained = (f"filmroll stopped on an unexpected {type(exc).__name__}; run it again with "
                         "FILMROLL_LOG_LEVEL=DEBUG to see where, and please report it", ExitStatus.ERROR)
        report(*explained)
        sys.exit(explained[1])
    sys.exit(code if isinstance(code, int) else 0)
