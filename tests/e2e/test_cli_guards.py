"""The first hour of a new user, where it used to end in a traceback: every odd account reference, database URL,
database state, keys file, setting and option gets one line that says what is wrong and what to do, the documented
exit code, and changes nothing. Then a hypothesis fuzz over arguments and environment finds no traceback."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import aio
from tests.databases import _admin, _pg_url

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 130}


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode in DOCUMENTED, (result.returncode, result.stderr)


def test_account_references_take_only_ascii_digits_usernames_and_slugs(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(9, kind="long")["access_token"] + "\n")
    for odd in ("²", "①", "\u0661", "\U0001d7cf", "@", "a b", "' OR 1=1 --", "@" + "x" * 80):
        result = cli("disconnect", odd, check=False)
        _no_traceback(result)
        assert result.returncode == 8 and "is not an account reference" in result.stderr, (odd, result.stderr)
    assert '"status": "active"' in cli("accounts", "--json").stdout  # account 1 is still connected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_database_urls_and_states_are_explained_and_left_alone(cli, tmp_path):
    password = f"pw{uuid.uuid4().hex}"
    cases = {
        "sqlite://": (2, "names no SQLite file"),
        "sqlite:///:memory:": (2, "names no SQLite file"),
        "not a url": (2, "is not a database URL"),
        f"mysql://u:{password}@127.0.0.1/x": (2, "supports SQLite and PostgreSQL"),
        f"postgresql://u:{password}@127.0.0.1:1/x": (9, "cannot reach the database"),
        f"postgresql://postgres:{password}@127.0.0.1/no_such_db_{uuid.uuid4().hex[:6]}": (9, "does not exist"),
        f"sqlite:///{tmp_path}/no/such/dir/filmroll.db": (9, "cannot be opened: its directory"),
    }
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database\n" * 200)
    corrupt.chmod(0o600)
    cases[f"sqlite:///{corrupt}"] = (9, "is damaged or is not a SQLite database")
    before = hashlib.sha256(corrupt.read_bytes()).hexdigest()
    for url, (code, said) in cases.items():
        cli.env["FILMROLL_DATABASE_URL"] = url
        result = cli("accounts", check=False)
        _no_traceback(result)
        assert result.returncode == code and said in result.stderr, (url, result.stderr)
        assert password not in result.stderr + result.stdout
        if code == 9:
            assert "nothing was changed" in result.stderr
    assert hashlib.sha256(corrupt.read_bytes()).hexdigest() == before
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_locked_by_another_process_is_explained(cli):
    path = cli.database_url.removeprefix("sqlite:///")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cli.env["FILMROLL_DATABASE_URL"] = cli.database_url + "?timeout=1"
        result = cli("accounts", check=False)
        _no_traceback(result)
        assert result.returncode == 9 and "locked" in result.stderr and "nothing was changed" in result.stderr
    finally:
        holder.kill()
        holder.communicate()


def test_only_the_schema_commands_create_tables_anywhere(cli, database_url, tmp_path):
    if database_url.startswith("sqlite"):
        (tmp_path / "empty.db").touch(0o600)  # an empty file is an empty database (a missing one: test_cli_startup)
        empty = f"sqlite:///{tmp_path / 'empty.db'}"
        foreign = tmp_path / "foreign.db"
        with sqlite3.connect(foreign) as connection:
            connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        foreign.chmod(0o600)
        foreign_url = f"sqlite:///{foreign}"
    else:
        names = [f"filmroll_guard_{uuid.uuid4().hex[:10]}" for _ in range(2)]
        for name in names:
            aio.run(_admin(f'CREATE DATABASE "{name}"'))
        empty, foreign_url = (_pg_url(name) for name in names)

        async def foreign_table() -> None:
            import asyncpg

            connection = await asyncpg.connect(foreign_url)
            try:
                await connection.execute("CREATE TABLE invoices (id integer primary key)")
            finally:
                await connection.close()

        aio.run(foreign_table())
    try:
        for url, said in ((empty, "has no filmroll tables yet; run `filmroll db upgrade`"),
                          (foreign_url, "holds 1 other table(s) and no filmroll schema")):
            cli.env["FILMROLL_DATABASE_URL"] = url
            for command in (("accounts",), ("accounts", "--json"), ("feeds", "list"), ("disconnect", "@someone"),
                            ("admin", "create", "ops")):
                result = cli(*command, stdin="a long enough password\n", check=False)
                _no_traceback(result)
                told = json.loads(result.stdout)["message"] if "--json" in command else result.stderr
                assert result.returncode == 9 and said in told, (command, result.stdout, result.stderr)
            assert _tables(url) <= {"invoices"}  # nothing was created
        cli.env["FILMROLL_DATABASE_URL"] = empty
        cli("db", "upgrade")
        assert "accounts" in _tables(empty) and cli("accounts").returncode == 0
    finally:
        if not database_url.startswith("sqlite"):
            for name in names:
                aio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    from filmroll.store.database import Database

    async def read() -> set[str]:
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await database.dispose()

    return aio.run(read())


def test_settings_and_options_are_checked_with_their_names(cli):
    for name, value, said in (("FILMROLL_INSTAGRAM__SCOPES", "notjson", "must be JSON"),
                              ("FILMROLL_INSTAGRAM__TIMEOUT", "-1", "FILMROLL_INSTAGRAM__TIMEOUT"),
                              ("FILMROLL_INSTAGRAM__TIMEOUT", "nan", "finite number"),
                              ("FILMROLL_WEB__PORT", "70000", "FILMROLL_WEB__PORT"),
                              ("FILMROLL_WEB__SESSION_ABSOLUTE_HOURS", "-5", "FILMROLL_WEB__SESSION_ABSOLUTE_HOURS"),
                              ("FILMROLL_SYNC__INTERVAL_MINUTES", "often", "FILMROLL_SYNC__INTERVAL_MINUTES")):
        cli.env[name] = value
        result = cli("accounts", check=False)
        del cli.env[name]
        _no_traceback(result)
        assert result.returncode == 2 and said in result.stderr, (name, value, result.stderr)
    for args in (("worker", "--lease-seconds", "999999999999"), ("serve", "--port", "70000"),
                 ("connect", "--timeout", "-5"), ("sync", "1", "--interval-minutes", "0")):
        result = cli(*args, check=False)
        _no_traceback(result)
        assert result.returncode == 2 and "Invalid value" in result.stderr, (args, result.stderr)


def test_a_keys_file_that_is_not_text_is_explained(cli):
    keys = cli.directory / "filmroll.keys"
    keys.write_bytes(b"\xff\xfe\x00binary")
    result = cli("accounts", check=False)
    _no_traceback(result)
    assert result.returncode == 2 and "not a filmroll keys file" in result.stderr


def test_ctrl_c_ends_connect_paste_at_once_without_a_traceback(cli):
    # As from a terminal: Ctrl-C delivered. (A shell that runs this suite in the background, as `.ci/run &` would,
    # starts its children with SIGINT ignored; Python then never turns it into KeyboardInterrupt.)
    process = subprocess.Popen([sys.executable, "-m", "filmroll", "connect", "--paste", "--no-open"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli.env, cwd=cli.directory,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while "Copy the whole address" not in process.stdout.readline():
        assert time.monotonic() < deadline
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 130 and time.monotonic() - started < 10, (process.returncode, err)
    assert "interrupted" in err and "Traceback" not in err and "Event loop is closed" not in err


# ----- the fuzz ----------------------------------------------------------------------------------------------

COMMANDS = [["accounts"], ["accounts", "--json"], ["disconnect"], ["sync"], ["media"], ["token", "refresh"],
            ["token", "show"], ["reconnect-link"], ["feeds", "show"], ["feeds", "create"], ["export"],
            ["delete", "--yes"], ["keys", "list"], ["db", "current"], ["worker", "--until-idle", "--lease-seconds"],
            ["sync", "1", "--interval-minutes"], ["storage", "usage"], ["webhooks", "subscribe"],
            ["doctor", "--offline"]]
ODD = st.sampled_from(["", " ", "1", "0", "-1", "²", "\u0661", "\U0001d7cf", "@", "@nobody", "nobody",
                       "999999999999999999999",
                       "nan", "inf", "-0", "1e309", "%s", "{}", "'", '"', "\\", "\x1b[31m", "--json", "--", "a" * 300,
                       "../../etc/passwd", "@golden.bakery", "sandbox-1", "✓", "\u202e", "0x10"])
SETTINGS = st.sampled_from([{}, {"FILMROLL_INSTAGRAM__SCOPES": "notjson"}, {"FILMROLL_INSTAGRAM__TIMEOUT": "-1"},
                            {"FILMROLL_DATABASE_URL": "sqlite://"}, {"FILMROLL_WEB__PORT": "x"},
                            {"FILMROLL_VAULT__KEYS": "not base64!"}, {"FILMROLL_VAULT__KEYS": "YWJj"},
                            {"FILMROLL_LOG_LEVEL": "LOUD"}, {"FILMROLL_MIRROR__WIDTHS": "[1, 2]"},
                            {"FILMROLL_STORAGE__URL": "ftp://x"}, {"FILMROLL_FEEDS__MAX_POSTS": "0"}])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_fuzz_of_arguments_and_settings_finds_no_traceback(cli):
    seen: set[int] = set()

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(command=st.sampled_from(COMMANDS), extra=st.lists(ODD, max_size=3), env=SETTINGS)
    def one(command: list[str], extra: list[str], env: dict[str, str]) -> None:
        saved = dict(cli.env)
        cli.env.update(env)
        try:
            result = cli(*command, *extra, stdin="", check=False)
        finally:
            cli.env.clear()
            cli.env.update(saved)
        _no_traceback(result)
        seen.add(result.returncode)

    one()
    assert len(seen) >= 3  # the fuzz reached more than one kind of answer


def test_the_exit_codes_are_documented_where_people_look():
    from filmroll.cli.common import ExitStatus

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = subprocess.run([sys.executable, "-m", "filmroll", "--help"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "250"}, timeout=60).stdout
    for status in ExitStatus:
        assert f"| {status.value} |" in readme, status
        assert f"{status.value} {status.name.lower().replace('_', ' ')}" in listed, status
    assert {s.value for s in ExitStatus} == DOCUMENTED


def test_serve_and_connect_refuse_a_redirect_uri_they_cannot_receive(cli):
    cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"] = "https://localhost:8765/callback"
    elsewhere = cli("serve", "--port", "8766", check=False)
    _no_traceback(elsewhere)
    assert elsewhere.returncode == 2 and "would listen on 8766" in elsewhere.stderr
    assert "--port 8765" in elsewhere.stderr
    cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"] = "http://localhost:8765/callback"
    for args in (("connect", "--no-open"), ("connect", "--paste")):
        plain = cli(*args, check=False)
        _no_traceback(plain)
        assert plain.returncode == 2 and "only to https:// addresses" in plain.stderr, plain.stderr


def test_a_bad_imported_token_says_so_without_talk_of_reconnecting(cli):
    result = cli("connect", "--token", stdin="IGAAthisisnotatoken0123456789\n", check=False)
    _no_traceback(result)
    assert result.returncode == 5 and "nothing was stored" in result.stderr and "Generate a new one" in result.stderr
    assert "Reconnect" not in result.stderr and "IGAAthisisnotatoken" not in result.stderr
    assert "no account is connected yet" in cli("accounts").stdout


def test_a_full_sync_that_stores_nothing_of_a_non_empty_account_does_not_exit_0(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(16, kind="long")["access_token"] + "\n")
    username = sandbox.control.account(16)["username"]
    account = sandbox.control.account(16)
    assert account["media_count"] == 21
    profile = {"id": account["ig_id"], "user_id": account["ig_id"], "username": username, "account_type": "BUSINESS",
               "media_count": account["media_count"], "media": {"data": []}}
    sandbox.control.add_fault("body", endpoint="user", status=200, message=json.dumps(profile))
    sandbox.control.add_fault("body", endpoint="media_list", status=200, message='{"data": []}')
    try:
        result = cli("sync", f"@{username}", "--full", check=False)
    finally:
        sandbox.control.clear_faults()
    _no_traceback(result)
    assert result.returncode == 4 and "counts 21 posts" in result.stderr and "but listed none" in result.stderr
    assert "nothing was changed" in result.stderr
    assert cli("sync", f"@{username}", "--full").returncode == 0  # Instagram lists them again: stored, exit 0


def test_output_that_is_not_a_terminal_is_never_wrapped_or_cut(cli, sandbox):
    """Piped into a file or a script, a table row and a long line stay whole: rich's 80 columns once cut the Meta
    callback URLs in `doctor` to '…/meta/deauthor…', the very URLs to paste into the App Dashboard."""
    cli.env.pop("COLUMNS")
    cli("connect", "--token", stdin=sandbox.control.mint_token(5, kind="long")["access_token"] + "\n")
    out = cli("doctor", "--offline").stdout + cli("accounts").stdout + cli("feeds", "list").stdout
    origin = cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"].removesuffix("/callback")
    for url in ("/meta/deauthorize", "/meta/data-deletion", "/meta/webhook"):
        assert origin + url in out
    assert "…" not in out and "cannot be checked without an owner's sign-in (the first connect says so" in out
    assert f"@{sandbox.control.account(5)['username']}" in out
