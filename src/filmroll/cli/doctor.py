"""``filmroll doctor``: check the configuration and say precisely what to fix."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from filmroll import errors, eventloop
from filmroll.cli import common
from filmroll.cli.common import ExitStatus, console, emit, json_output, settings
from filmroll.secret import Secret

if TYPE_CHECKING:
    from filmroll.settings import Settings
    from filmroll.store.database import Database


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _redirect_checks(current: Settings) -> list[Check]:
    uri = current.instagram.redirect_uri
    parts = urlsplit(uri)
    found = [Check("redirect URI is https", parts.scheme == "https",
                   uri if parts.scheme == "https" else f"{uri}: Instagram accepts only https:// redirect URIs, "
                   "even for localhost (use `filmroll serve --tls-cert …` or a TLS proxy)")]
    exact = not parts.fragment and parts.path != ""
    found.append(Check("redirect URI has an exact form", exact,
                       "matches byte for byte what you register in the App Dashboard (mind the trailing slash the "
                       "dashboard may add)" if exact else "it needs a path (e.g. /callback) and no #fragment"))
    return found


def _variable_checks() -> list[Check]:
    from filmroll.settings import unknown_variables

    unknown = unknown_variables(os.environ)
    if not unknown:
        return [Check("every FILMROLL_ variable is a setting", True, "no unknown names")]
    return [Check("every FILMROLL_ variable is a setting", False,
                  f"{name} is not one and is ignored" + (f": did you mean {closest}?" if closest else ""))
            for name, closest in unknown]


def _app_checks(current: Settings) -> list[Check]:
    app_id, secret = current.instagram.app_id, current.instagram.app_secret.get_secret_value()
    id_ok, secret_ok = bool(re.fullmatch(r"\d{10,20}", app_id)), bool(re.fullmatch(r"[0-9a-f]{32}", secret))
    return [
        Check("Instagram app ID is set", id_ok,
              "looks like an Instagram app ID" if id_ok else
              "set FILMROLL_INSTAGRAM__APP_ID to the Instagram app ID (App Dashboard → Instagram → API setup with "
              "Instagram login), not the Meta app ID"),
        Check("Instagram app secret is set", secret_ok,
              "32 hex characters; whether it is the right one cannot be checked without an owner's sign-in (the "
              "first connect says so if Instagram refuses it)" if secret_ok else
              "set FILMROLL_INSTAGRAM__APP_SECRET to the Instagram app secret (32 hex characters)"),
    ]


def _facebook_checks(current: Settings) -> list[Check]:
    """Facebook Login is optional (hashtags, other profiles, Page-linked accounts); once its app ID is set, its
    settings are checked as Instagram's are."""
    fb = current.facebook
    if not fb.app_id:
        return [Check("Facebook Login", True, "not configured (optional: set FILMROLL_FACEBOOK__APP_ID and "
                      "__APP_SECRET for photos by hashtag and from other profiles)")]
    secret, uri = fb.app_secret.get_secret_value(), current.facebook_redirect_uri()
    id_ok = bool(re.fullmatch(r"\d{10,20}", fb.app_id)) and fb.app_id != current.instagram.app_id
    secret_ok = bool(re.fullmatch(r"[0-9a-f]{32}", secret))
    return [
        Check("Meta app ID is set (Facebook Login)", id_ok,
              "looks like a Meta app ID" if id_ok else
              "set FILMROLL_FACEBOOK__APP_ID to the Meta app ID (App settings → Basic), not the Instagram app ID"),
        Check("Meta app secret is set (Facebook Login)", secret_ok,
              "32 hex characters" if secret_ok else
              "set FILMROLL_FACEBOOK__APP_SECRET to the Meta app secret (App settings → Basic, 32 hex characters)"),
        Check("Facebook redirect URI is https", uri.startswith("https://"),
              uri if uri.startswith("https://") else f"{uri}: Facebook Login sends owners only to https:// "
              "addresses; set FILMROLL_FACEBOOK__REDIRECT_URI"),
    ]


async def _dialog_check(current: Settings) -> Check:
    """Ask the Facebook dialog about the Meta app id and the redirect URI, as the Instagram check does."""
    import aiohttp

    fb = current.facebook
    params = {"client_id": fb.app_id, "redirect_uri": current.facebook_redirect_uri(), "response_type": "code",
              "scope": ",".join(fb.scopes), "state": "doctor"}
    name = "Facebook accepts the Meta app and redirect URI"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session, \
                session.get(fb.dialog_url, params=params, allow_redirects=False) as response:
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check(name, False, f"could not reach {urlsplit(fb.dialog_url).netloc} ({type(exc).__name__})")
    if "Invalid App ID" in body:
        return Check(name, False, "Facebook says 'Invalid App ID': use the Meta app ID (App settings → Basic), not "
                     "the Instagram app ID")
    if "URL Blocked" in body:
        return Check(name, False, f"Facebook does not know {current.facebook_redirect_uri()}: add it, byte for byte, "
                     "under Facebook Login → Settings → Valid OAuth Redirect URIs")
    return Check(name, response.status in (200, 302), f"the dialog answered HTTP {response.status}")


def _callback_checks(current: Settings) -> list[Check]:
    """The URLs to paste into the App Dashboard (Business login settings); Meta calls only https ones."""
    origin = current.public_origin()
    urls = (f"deauthorize callback {origin}{current.meta.deauthorize_path} · data deletion request "
            f"{origin}{current.meta.data_deletion_path} · webhooks {origin}{current.meta.webhook_path}")
    if origin.startswith("https://"):
        return [Check("Meta callback URLs", True, f"paste into the App Dashboard: {urls}")]
    return [Check("Meta callback URLs", False, f"{urls}: Meta calls only https:// URLs; set FILMROLL_WEB__PUBLIC_URL "
                  "to the https address people reach filmroll at")]


async def _authorize_check(current: Settings) -> Check:
    """Ask the authorize page about our app id: Instagram says "Invalid platform app" for a Meta app id."""
    import aiohttp

    params = {"client_id": current.instagram.app_id, "redirect_uri": current.instagram.redirect_uri,
              "response_type": "code", "scope": ",".join(current.instagram.scopes), "state": "doctor"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session, \
                session.get(current.instagram.authorize_url, params=params, allow_redirects=False) as response:
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check("Instagram accepts the app and redirect URI", False,
                     f"could not reach {urlsplit(current.instagram.authorize_url).netloc} ({type(exc).__name__})")
    if "Invalid platform app" in body:
        return Check("Instagram accepts the app and redirect URI", False,
                     "Instagram says 'Invalid platform app': the app ID is probably the Meta app ID; use the "
                     "Instagram app ID from App Dashboard → Instagram → API setup with Instagram login")
    if "Invalid redirect_uri" in body:
        return Check("Instagram accepts the app and redirect URI", False,
                     f"Instagram does not know {current.instagram.redirect_uri}: add it, byte for byte, under "
                     "Business login settings → OAuth redirect URIs")
    if response.status == 404 or "isn't available" in body:
        return Check("Instagram accepts the app and redirect URI", False,
                     "Instagram does not know this app ID (page isn't available)")
    return Check("Instagram accepts the app and redirect URI", response.status in (200, 302),
                 f"the authorize page answered HTTP {response.status}")


def _file_checks(current: Settings) -> list[Check]:
    """A SQLite database holds admin hashes and token ciphertexts: only its owner may read it. Looked at before
    anything opens it (opening it makes it private)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(current.database_url)
    except Exception:
        return []  # the database check below says what is wrong with the URL
    path = url.database or ""
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or not os.path.exists(path):
        return []
    loose = {name: stat.S_IMODE(os.stat(name).st_mode) for name in (path, f"{path}-wal", f"{path}-shm")
             if os.path.exists(name) and os.stat(name).st_mode & 0o077}
    if not loose:
        return [Check("database files private", True, f"{path} (and -wal, -shm): owner only")]
    shown = ", ".join(f"{name} was {mode:o}" for name, mode in loose.items())
    return [Check("database files private", False, f"{shown}: others could read admin password hashes and "
                  "encrypted tokens; filmroll made them 600 just now. Check who had access.")]


async def _store_checks(current: Settings) -> list[Check]:
    from filmroll.store import migrate
    from filmroll.store.database import Database
    from filmroll.store.tokens import key_ids_in_use
    from filmroll.vault import load_keyring

    found = []
    try:
        keyring = load_keyring(Secret(current.vault.keys.get_secret_value()), current.vault.keys_file)
        found.append(Check("vault key present", True, f"{len(keyring.ids)} key(s); encrypting with "
                                                      f"{keyring.primary_id}"))
    except errors.FilmrollError as exc:
        keyring = None
        found.append(Check("vault key present", False, exc.message))
    database = Database(current.database_url, create=False)
    try:
        revision = await migrate.current(database)
        at_head = revision == migrate.head()
        found.append(Check("database reachable", True, database.url.split("@")[-1]))
        found.append(Check("database schema current", at_head, "up to date" if at_head else
                           f"at {revision or 'nothing'}; run `filmroll db upgrade`"))
        if keyring is not None and at_head:
            async with database.read() as session:
                used = await key_ids_in_use(session)
            try:
                keyring.require(used)
                found.append(Check("stored tokens readable", True, f"{sum(used.values())} token(s)"))
            except errors.KeyMissingError as exc:
                found.append(Check("stored tokens readable", False, exc.message))
            found.append(await _activity_check(database, timedelta(days=current.meta.inactive_warning_days)))
            found.append(await _waiting_check(database))
    except errors.FilmrollError as exc:
        found.append(Check("database reachable", False, exc.message))
    except Exception as exc:
        found.append(Check("database reachable", False, f"{type(exc).__name__}: check FILMROLL_DATABASE_URL"))
    finally:
        await database.dispose()
    return found


async def _waiting_check(database: Database) -> Check:
    from filmroll.store import files

    async with database.read() as session:
        count, example = await files.waiting_on_settings(session)
    if not count:
        return Check("no post waits on a setting", True, "none")
    why = (example or "").split("]: ", 1)[-1]
    return Check("no post waits on a setting", False, f"{count} post(s) wait, e.g. {why}; change that setting and "
                 "the workers mirror them by themselves")


async def _storage_check(current: Settings) -> Check:
    """Writes, reads back and deletes a probe object where the pictures go: says what is wrong (no bucket, refused
    credentials, no permission) before the mirror meets it."""
    from filmroll.runtime import storage as open_storage
    from filmroll.storage import probe
    from filmroll.storage.local import LocalStorage

    try:
        storage = open_storage(current.storage, database_url=current.database_url)
    except errors.FilmrollError as exc:
        return Check("media storage writable", False, exc.message)
    if isinstance(storage, LocalStorage) and not storage.root.exists():  # doctor creates nothing
        parent = next(p for p in storage.root.absolute().parents if p.exists())
        writable = os.access(parent, os.W_OK | os.X_OK)
        return Check("media storage writable", writable, f"{storage.root} will be created by the first mirror pass"
                     if writable else f"{storage.root} cannot be created: {parent} is not writable for filmroll")
    try:
        await probe(storage)
        return Check("media storage writable", True, f"{storage.description}: wrote, read and deleted a probe")
    except errors.FilmrollError as exc:
        return Check("media storage writable", False, exc.message)
    finally:
        await storage.close()


async def _activity_check(database: Database, warn_after: timedelta) -> Check:
    from filmroll.service.activity import activity

    found = await activity(database)
    if found.quiet(warn_after):
        return Check("Meta app kept active", False, found.describe())
    if found.tokens == 0:
        return Check("Meta app kept active", True, "no tokens held yet")
    assert found.last is not None
    return Check("Meta app kept active", True, f"a call reached Instagram {_ago(found.now - found.last)}")


def _ago(elapsed: timedelta) -> str:
    if elapsed < timedelta(hours=1):
        return f"{max(int(elapsed.total_seconds() // 60), 0)} min ago"
    if elapsed < timedelta(days=2):
        return f"{int(elapsed.total_seconds() // 3600)} h ago"
    return f"{elapsed.days} days ago"


def doctor(offline: bool = typer.Option(False, "--offline", help="Skip the check that asks Instagram"),
           as_json: bool = typer.Option(False, "--json", help="The checks as JSON on stdout")) -> None:
    """Check configuration, keys and database, and say what to fix."""
    json_output(as_json)
    current = settings()

    async def body() -> list[Check]:
        found = (_variable_checks() + _redirect_checks(current) + _app_checks(current) + _facebook_checks(current)
                 + _callback_checks(current) + _file_checks(current))
        if not offline:
            found.append(await _authorize_check(current))
            if current.facebook.app_id:
                found.append(await _dialog_check(current))
        return found + await _store_checks(current) + [await _storage_check(current)]

    checks = eventloop.run(body())
    failed = [c for c in checks if not c.ok]
    if as_json:
        emit({"ok": not failed, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]})
        if failed:
            raise typer.Exit(int(ExitStatus.CONFIG))
        return
    table = common.table("", "check", "detail", show_lines=False)
    for check in checks:
        table.add_row("[green]ok[/green]" if check.ok else "[red]FIX[/red]", check.name, check.detail)
    console.print(table)
    if failed:
        console.print(f"{len(failed)} problem(s) to fix")
        raise typer.Exit(int(ExitStatus.CONFIG))
    console.print("all good")
