"""Every way `serve`, `worker`, `demo` and the commands start, stop or fail is one line on stderr and its exit code,
with nothing written that was not there before: real processes, in a directory of their own."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.webapp import free_port

FILMROLL = [sys.executable, "-m", "filmroll"]


def _env(directory: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FILMROLL_")}
    env.update({"COLUMNS": "200", "FILMROLL_INSTAGRAM__REDIRECT_URI": f"https://localhost:{free_port()}/callback",
                "FILMROLL_MIRROR__PROCESSES": "1", **extra})
    return env


def _run(directory: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*FILMROLL, *args], cwd=directory, env=env or _env(directory), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*")}


def _one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr and all(w in lines[0] for w in words), lines
    return lines[0]


def test_commands_that_do_not_migrate_create_no_database(tmp_path):
    assert _run(tmp_path, "keys", "generate").returncode == 0
    before = _files(tmp_path)
    for args in (("accounts",), ("accounts", "--json"), ("feeds", "list"), ("media", "1"), ("db", "current"),
                 ("storage", "usage"), ("token", "show", "1")):
        result = _run(tmp_path, *args)
        if "--json" in args:
            assert result.returncode == 9 and json.loads(result.stdout)["error"] == "database", result.stdout
        else:
            _one_line(result, 9, "filmroll.db does not exist yet", "filmroll db upgrade")
        assert _files(tmp_path) == before, args
    doctor = _run(tmp_path, "doctor", "--offline", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 2 and "does not exist yet" in checks["database reachable"]["detail"]
    assert _files(tmp_path) == before
    assert _run(tmp_path, "db", "upgrade").returncode == 0 and (tmp_path / "filmroll.db").exists()


def test_serve_and_worker_without_keys_say_so_in_one_line_and_create_nothing(tmp_path):
    for args in (("serve",), ("worker", "--until-idle")):
        _one_line(_run(tmp_path, *args), 2, "no vault key", "filmroll keys generate")
        assert _files(tmp_path) == {}, args


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_and_worker_whose_stored_tokens_lost_their_key_say_restore_it(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(2, kind="long")["access_token"] + "\n")
    (cli.directory / "filmroll.keys").unlink()
    before = _files(cli.directory)
    for args in (("serve",), ("worker", "--until-idle")):
        _one_line(cli(*args, check=False), 6, "Restore filmroll.keys from your backup")
        assert _files(cli.directory) == before, args


def test_a_damaged_database_stops_serve_and_worker_once_with_exit_9(tmp_path):
    assert _run(tmp_path, "keys", "generate").returncode == 0
    (tmp_path / "filmroll.db").write_bytes(b"this is not a database\n" * 400)
    for args in (("serve",), ("worker",)):
        _one_line(_run(tmp_path, *args, timeout=60), 9, "filmroll.db is damaged")
    # Damaged inside: the schema reads, the work queues do not (a page in the middle overwritten).
    (tmp_path / "filmroll.db").unlink()
    assert _run(tmp_path, "db", "upgrade").returncode == 0
    size = (tmp_path / "filmroll.db").stat().st_size
    with open(tmp_path / "filmroll.db", "r+b") as handle:
        handle.seek(4096 * 3)
        handle.write(b"\xa5" * min(4096 * 4, size - 4096 * 3))
    worker = _run(tmp_path, "worker", timeout=60)  # before: a traceback every 1.5 s, for ever
    _one_line(worker, 9, "damaged", "malformed")


def test_a_port_in_use_is_one_line_and_a_second_filmroll_on_the_same_port_is_refused(tmp_path):
    assert _run(tmp_path, "keys", "generate").returncode == 0
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    env = _env(tmp_path, FILMROLL_INSTAGRAM__REDIRECT_URI=f"https://localhost:{port}/callback")
    try:
        _one_line(_run(tmp_path, "serve", env=env), 2, f"127.0.0.1:{port} is already in use", "--port")
    finally:
        holder.close()
    assert not (tmp_path / "filmroll.db").exists()

    first = subprocess.Popen([*FILMROLL, "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = _run(tmp_path, "serve", env=env)  # before: it started and both listened (SO_REUSEPORT)
        _one_line(second, 2, f"127.0.0.1:{port} is already in use")
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ctrl_c_in_a_sync_gives_its_lease_back(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(3, kind="long")["access_token"] + "\n")
    held = sandbox.control.add_fault("hang", account=sandbox.control.account(3)["ig_id"], times=1)
    sync = subprocess.Popen([*FILMROLL, "sync", "1"], cwd=cli.directory, env=cli.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sync_lease(cli.database_url)[0]:  # it holds the lease and waits on Instagram
            assert sync.poll() is None and time.monotonic() < deadline, sync.communicate()
            time.sleep(0.1)
        sync.send_signal(signal.SIGINT)
        _, stderr = sync.communicate(timeout=60)
    finally:
        sandbox.control.release(held["id"])
    assert sync.returncode == 130 and stderr.strip() == "interrupted", stderr
    assert _sync_lease(cli.database_url) == (None, None)  # before: held for the lease's ~95 s, exit 7 meanwhile
    again = cli("sync", "1", check=False)
    assert again.returncode == 0, again.stderr


def _sync_lease(database_url: str) -> tuple[str | None, str | None]:
    with sqlite3.connect(database_url.split("///", 1)[1]) as db:
        return db.execute("SELECT sync_lease_owner, sync_lease_until FROM sources WHERE account_id = 1 "
                          "AND kind = 'account'").fetchone()


def test_a_misspelled_variable_is_warned_about_by_every_command_and_listed_by_doctor(tmp_path):
    env = _env(tmp_path, FILMROLL_DATABSE_URL="sqlite:///elsewhere.db")
    for args in (("keys", "list"), ("accounts",), ("sandbox", "--print-env")):
        result = _run(tmp_path, *args, env=env)
        assert ("warning: FILMROLL_DATABSE_URL is not a filmroll setting and is ignored (did you mean "
                "FILMROLL_DATABASE_URL?)") in result.stderr, (args, result.stderr)
    doctor = json.loads(_run(tmp_path, "doctor", "--offline", "--json", env=env).stdout)
    (check,) = [c for c in doctor["checks"] if c["name"] == "every FILMROLL_ variable is a setting"]
    assert not check["ok"] and "did you mean FILMROLL_DATABASE_URL" in check["detail"]
    quiet = _run(tmp_path, "sandbox", "--print-env", env=_env(tmp_path))
    assert quiet.returncode == 0 and quiet.stderr == ""
