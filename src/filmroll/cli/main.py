"""The ``filmroll`` command. Settings are built here, at the edge, and handed down as plain arguments."""

from __future__ import annotations

import typer

from filmroll.cli import sandbox

app = typer.Typer(
    name="filmroll",
    help="Connect Instagram accounts, keep their tokens alive, sync their media, serve them to websites.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("sandbox")(sandbox.sandbox)


@app.callback()
def _root() -> None:
    """filmroll: Instagram tokens that never die silently."""


def main() -> None:
    app()
