"""The token commands as a person runs them: real processes, configured by environment, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests import aio
from tests.helpers import facebook_owner_allows, owner_allows, printed_url

ROOT = Path(__file__).resolve().parents[2]


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, (out, err)
    return out, err


def test_connect_with_paste_then_manage_the_token(cli, sandbox):
    process = cli.start("connect", "--paste")
    landing = owner_allows(sandbox, printed_url(process), account=21)
    process.stdin.write(landing + "\n")  # what the person copies from the address bar, "#_" and all
    process.stdin.flush()
    out, _ = _finish(process)
    username = sandbox.control.account(21)["username"]
    assert f"connected @{username}" in out
    listing = json.loads(cli("accounts", "--json").stdout)
    assert [a["username"] for a in listing] == [username] and listing[0]["status"] == "active"
    assert 59 * 86_400 < listing[0]["token_expires_in_seconds"] <= 5_183_944
    shown = cli("token", "show", f"@{username}")
    assert "IGAA" not in shown.stdout + shown.stderr
    revealed = cli("token", "show", f"@{username}", "--reveal").stdout.strip()
    assert revealed.startswith("IGAA") and sandbox.control.inspect(revealed)["valid"]
    cli.let_time_pass(2 * 86_400)
    assert "token refreshed" in cli("token", "refresh", username).stdout
    assert json.loads(cli("accounts", "--json").stdout)[0]["refreshed_at"] is not None
    assert "disconnected" in cli("disconnect", username).stdout
    gone = cli("token", "show", username, "--reveal", check=False)
    assert gone.returncode == 3 and "no stored token" in gone.stderr


def test_connect_through_the_local_https_callback(cli, sandbox):
    process = cli.start("connect", "--no-open")
    landing = owner_allows(sandbox, printed_url(process), account=22)
    assert landing.startswith(cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"] + "?") and landing.endswith("#_")
    for _ in range(50):  # the browser's part: follow Instagram's redirect to the local HTTPS server
        try:
            page = httpx.get(landing.split("#")[0], verify=False, timeout=10)
            break
        except httpx.ConnectError:
            time.sleep(0.1)
    assert page.status_code == 200 and "Connected as" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    out, _ = _finish(process)
    assert f"connected @{sandbox.control.account(22)['username']}" in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # both databases: test_facebook_login.py
def test_connect_with_facebook_login_connects_every_linked_account_and_is_never_refreshed(cli, sandbox):
    sandbox.control._call("POST", "/facebook/users/23/pages", {"account": 24})
    process = cli.start("connect", "--provider", "facebook", "--paste", "--json")
    landing = facebook_owner_allows(sandbox, printed_url(process, r"/dialog/oauth\?", stderr=True), account=23)
    process.stdin.write(landing + "\n")
    process.stdin.flush()
    out, _ = _finish(process)
    answer = json.loads(out)
    names = [sandbox.control.account(i)["username"] for i in (23, 24)]
    assert answer["ok"] and answer["provider"] == "facebook"
    assert [a["account"] for a in answer["accounts"]] == [f"@{n}" for n in names]
    assert all(a["data_access_expires_at"] for a in answer["accounts"])
    listing = {a["username"]: a for a in json.loads(cli("accounts", "--json").stdout)}
    assert set(listing) == set(names)
    assert all(a["provider"] == "facebook" and a["data_access_expires_at"] and a["token_expires_at"]
               and a["next_refresh_at"] is None for a in listing.values())
    refused = cli("token", "refresh", f"@{names[0]}", check=False)
    assert refused.returncode == 8 and "never refreshed" in refused.stderr
    assert "EAA" not in refused.stderr + refused.stdout
    assert not sandbox.control.calls(endpoint="refresh")


def test_connect_refuses_a_redirect_from_another_run(cli, sandbox):
    first = cli.start("connect", "--paste")
    first_landing = owner_allows(sandbox, printed_url(first), account=23)
    first.kill()
    first.communicate()
    second = cli.start("connect", "--paste")
    printed_url(second)
    second.stdin.write(first_landing + "\n")
    second.stdin.flush()
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 1 and "another browser session" in err
    assert sandbox.control.calls(endpoint="token") == []


def test_import_a_dashboard_token(cli, sandbox):
    token = sandbox.control.mint_token(24, kind="long", age_seconds=10 * 86_400)["access_token"]
    out = cli("connect", "--token", stdin=token + "\n").stdout
    assert f"connected @{sandbox.control.account(24)['username']}" in out and token not in out
    bad = cli("connect", "--token", stdin="IGAAnot-a-token\n", check=False)
    assert bad.returncode == 5 and "IGAAnot-a-token" not in bad.stderr + bad.stdout


def test_reconnect_keeps_one_account(cli, sandbox):
    for _ in range(2):
        token = sandbox.control.mint_token(25, kind="long")["access_token"]
        cli("connect", "--token", stdin=token + "\n")
    assert len(json.loads(cli("accounts", "--json").stdout)) == 1


def test_key_rotation_from_the_cli(cli, sandbox):
    for account in (26, 27):
        cli("connect", "--token", stdin=sandbox.control.mint_token(account, kind="long")["access_token"] + "\n")
    first = re.search(r"([0-9a-f]{16})\s+encrypts\s+2 token", cli("keys", "list").stdout).group(1)
    assert "2 token(s) re-encrypted" in cli("keys", "rotate").stdout
    listing = cli("keys", "list").stdout
    assert re.search(rf"{first}\s+decrypts\s+0 token", listing)
    cli("keys", "retire", first)
    assert first not in cli("keys", "list").stdout
    revealed = cli("token", "show", sandbox.control.account(26)["username"], "--reveal").stdout.strip()
    assert sandbox.control.inspect(revealed)["valid"]


def test_a_lost_key_file_stops_every_command_with_a_clear_message(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(28, kind="long")["access_token"] + "\n")
    kept = (cli.directory / "filmroll.keys").read_bytes()
    (cli.directory / "filmroll.keys").unlink()
    for command in (("accounts",), ("sync", "1"), ("token", "refresh", "1")):
        lost = cli(*command, check=False)
        assert lost.returncode == 6 and "Restore filmroll.keys from your backup" in lost.stderr, lost.stderr
        assert "keys generate`" not in lost.stderr.replace("keys generate --force", "")  # never the advice to
    refused = cli("keys", "generate", check=False)  # ... make a key that cannot read the stored tokens
    assert refused.returncode == 6 and "holds 1 token(s)" in refused.stderr and "Restore" in refused.stderr
    assert not (cli.directory / "filmroll.keys").exists()
    cli("keys", "generate", "--force")  # the operator insists
    mismatched = cli("accounts", check=False)
    assert mismatched.returncode == 6 and "Restore the key" in mismatched.stderr
    (cli.directory / "filmroll.keys").write_bytes(kept)  # the backup restored: all is well again
    assert cli("accounts").returncode == 0


def test_doctor(cli, sandbox):
    healthy = cli("doctor", check=False)
    assert healthy.returncode == 0, healthy.stdout
    origin = cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"].removesuffix("/callback")
    assert f"{origin}/meta/deauthorize" in healthy.stdout and f"{origin}/meta/data-deletion" in healthy.stdout
    cli.env["FILMROLL_INSTAGRAM__APP_ID"] = sandbox.control.summary()["meta_app_id"]
    cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"] = "http://localhost:8000/callback"
    broken = cli("doctor", check=False)
    assert broken.returncode == 2
    assert "Invalid platform app" in broken.stdout and "only https://" in broken.stdout
    (cli.directory / "filmroll.keys").unlink()
    assert "keys generate" in cli("doctor", "--offline", check=False).stdout


def test_a_wrong_app_secret_is_named_at_the_first_connect_and_doctor_says_it_cannot_tell(cli, sandbox):
    wrong = "".join("0" if c != "0" else "1" for c in sandbox.app_secret)  # well-formed, not the app's
    cli.env["FILMROLL_INSTAGRAM__APP_SECRET"] = wrong
    doctor = cli("doctor", "--offline", check=False)
    assert doctor.returncode == 0 and "cannot be checked without an owner's sign-in" in doctor.stdout
    process = cli.start("connect", "--paste")
    process.stdin.write(owner_allows(sandbox, printed_url(process), account=22) + "\n")
    process.stdin.flush()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, (out, err)  # a configuration error
    assert "rejected the app credentials: Error validating client secret. Use the Instagram app ID and secret" \
        in " ".join((out + err).split()) and "Traceback" not in out + err
    assert wrong not in out + err and sandbox.app_secret not in out + err
    assert cli("accounts", "--json").stdout.strip() == "[]"  # nothing stored


def _quiet_for(database_url: str, days: int) -> None:
    """Every sign that a token reached Instagram moved ``days`` back, as after a long time with no worker."""
    from sqlalchemy import select

    from filmroll.store.database import Database
    from filmroll.store.tables import Account, Source, Token

    by = timedelta(days=days)

    async def backdate() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                for row in [*(await session.execute(select(Account))).scalars(),
                            *(await session.execute(select(Source))).scalars(),
                            *(await session.execute(select(Token))).scalars()]:
                    for column in ("connected_at", "last_synced_at", "refreshed_at", "last_probe_at"):
                        if getattr(row, column, None) is not None:
                            setattr(row, column, getattr(row, column) - by)
        finally:
            await database.dispose()

    aio.run(backdate())


def test_doctor_warns_long_before_meta_switches_off_a_quiet_app(cli, sandbox):
    assert "no tokens held yet" in cli("doctor", "--offline").stdout
    cli("connect", "--token", stdin=sandbox.control.mint_token(12, kind="long")["access_token"] + "\n")
    healthy = cli("doctor", "--offline").stdout
    assert re.search(r"Meta app kept active[│ ]+a call reached Instagram \d+ min ago", healthy), healthy
    _quiet_for(cli.database_url, 40)
    quiet = cli("doctor", "--offline", check=False)
    assert quiet.returncode == 2 and "no call has reached Instagram for 40 days" in quiet.stdout
    assert "1 token(s) are held" in quiet.stdout and "49 days from now" in quiet.stdout, quiet.stdout
    cli.env["FILMROLL_META__INACTIVE_WARNING_DAYS"] = "45"  # the operator's own threshold
    assert cli("doctor", "--offline").returncode == 0
    del cli.env["FILMROLL_META__INACTIVE_WARNING_DAYS"]
    username = sandbox.control.account(12)["username"]
    cli("sync", f"@{username}")  # a call that reaches Instagram: the app is active again
    assert "a call reached Instagram" in cli("doctor", "--offline").stdout


def test_admin_create(cli):
    assert "admin ops created" in cli("admin", "create", "ops", stdin="a long enough password\n").stdout
    short = cli("admin", "create", "other", stdin="short\n", check=False)
    assert short.returncode == 1 and "12 to 256 characters" in short.stderr
    assert cli("admin", "create", "ops", stdin="a long enough password\n", check=False).returncode == 1


def test_db_upgrade_and_current(cli):
    from filmroll.store import migrate

    latest = migrate.head()
    assert len(list((ROOT / "src/filmroll/store/migrations/versions").glob("0*.py"))) == int(latest)
    upgraded = cli("db", "upgrade")
    assert f"database schema at revision {latest}" in upgraded.stdout
    assert upgraded.stderr == ""  # quiet by default: none of alembic's INFO lines
    assert f"database: {latest}; latest: {latest}" in cli("db", "current").stdout


def test_the_keys_file_is_one_git_add_away_from_nothing():
    """filmroll writes filmroll.keys in the working directory; in a clone of this repository git ignores it."""
    done = subprocess.run(["git", "check-ignore", "--no-index", "filmroll.keys", "deploy/prod.keys"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ["filmroll.keys", "deploy/prod.keys"], done.stderr


def test_unknown_account_is_exit_3(cli):
    result = cli("token", "refresh", "@nobody", check=False)
    assert result.returncode == 3 and "no connected account" in result.stderr


def test_urls_printed_carry_no_secret(cli, sandbox):
    process = cli.start("connect", "--paste")
    url = printed_url(process)
    process.kill()
    out, err = process.communicate()
    assert sandbox.app_secret not in url + out + err
    assert urlsplit(url).path == "/oauth/authorize"


def test_reconnect_link_for_an_owner(cli, sandbox):
    cli("connect", "--token", stdin=sandbox.control.mint_token(account=23, kind="long")["access_token"] + "\n")
    username = sandbox.control.account(23)["username"]
    made = cli("reconnect-link", f"@{username}")
    url = made.stdout.strip().splitlines()[-1]
    origin = cli.env["FILMROLL_INSTAGRAM__REDIRECT_URI"].rsplit("/", 1)[0]
    assert url.startswith(origin + "/reconnect?link=") and len(url.split("link=")[1]) >= 43
    assert f"@{username}, single use, valid until" in made.stdout
    second = cli("reconnect-link", f"@{username}").stdout.strip().splitlines()[-1]
    assert second != url  # a new secret each time
    assert cli("reconnect-link", "@nobody", check=False).returncode == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_doctor_finds_a_database_others_can_read_and_makes_it_private(cli):
    cli("db", "upgrade")
    database = cli.directory / "filmroll.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # created private
    database.chmod(0o644)  # as an older filmroll, or a copy, left it
    loose = cli("doctor", "--offline", check=False)
    assert loose.returncode == 2 and "database files private" in loose.stdout and "was 644" in loose.stdout
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    again = cli("doctor", "--offline", check=False)
    assert "database files private" in again.stdout and "was 644" not in again.stdout


def test_delete_asks_then_removes_the_account_through_the_deletion_job(cli, sandbox):
    token = sandbox.control.mint_token(7, kind="long", age_seconds=2 * 86_400)["access_token"]
    cli("connect", "--token", stdin=token + "\n")
    username = sandbox.control.account(7)["username"]
    declined = cli("delete", f"@{username}", stdin="n\n", check=False)
    assert declined.returncode == 1 and "nothing was deleted" in declined.stderr
    assert [a["username"] for a in json.loads(cli("accounts", "--json").stdout)] == [username]
    done = cli("delete", f"@{username}", "--yes")
    code = re.search(r"confirmation code ([0-9A-Z]{16})", done.stdout)
    assert code and f"@{username} and everything stored of it are deleted" in done.stdout
    assert json.loads(cli("accounts", "--json").stdout) == []
    missing = cli("delete", f"@{username}", "--yes", check=False)
    assert missing.returncode == 3  # no such account (any more)


def test_webhooks_subscribe_asks_instagram_for_the_accounts_fields(cli, sandbox):
    token = sandbox.control.mint_token(8, kind="long", age_seconds=2 * 86_400)["access_token"]
    cli("connect", "--token", stdin=token + "\n")
    username = sandbox.control.account(8)["username"]
    sandbox.control.clear_calls()
    out = cli("webhooks", "subscribe", f"@{username}").stdout
    assert f"@{username} subscribed to comments, mentions" in out
    calls = [c for c in sandbox.control.calls() if "subscribed_apps" in c["endpoint"]]
    assert len(calls) == 1, sandbox.control.calls()
    assert cli("webhooks", "subscribe", "@nobody", check=False).returncode == 3
