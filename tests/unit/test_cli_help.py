"""Every command's --help renders (rich markup in a help text once crashed `filmroll publish --help`), and the demo's
live table keeps the status column at 80 columns."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import typer
from rich.console import Console
from typer.testing import CliRunner

from filmroll.cli.demo import _table
from filmroll.cli.main import app


def _commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(group, "commands"):  # a group (typer carries its own click)
        for name, command in group.commands.items():
            found += _commands(command, (*path, name))
    return found


def test_every_help_renders():
    commands = _commands(typer.main.get_command(app))
    assert ("publish",) in commands and ("feeds", "create") in commands and len(commands) > 35
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert "Usage:" in result.output and "error" not in result.output.lower().split("usage:")[0], path


def test_the_demo_table_shows_the_status_of_every_account_at_80_columns():
    now = datetime.now(UTC)
    rows = []
    for index, (status, reason) in enumerate((("active", None), ("needs_reauth", "the account owner changed their "
                                                                 "password; they must sign in again"))):
        view = SimpleNamespace(status=status, status_reason=reason, username=f"indigo_bakery_{index}",
                               token_expires_at=now + timedelta(days=50), next_refresh_at=now + timedelta(days=20),
                               last_synced_at=now - timedelta(seconds=3))
        rows.append((view, SimpleNamespace(id=index, media_count=40)))
    console = Console(width=80, record=True)
    console.print(_table(rows, {0: 12, 1: 40}, 0.0, SimpleNamespace(outcomes=Counter(synced=3)), 12, []))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "needs_reauth" in text and "owner changed" in text and "status" in text
    assert f"{now + timedelta(days=50):%Y-%m-%d}" in text and "12 / 40" in text
