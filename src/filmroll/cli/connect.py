"""``filmroll connect``: connect an account from a terminal.

Three ways: a local HTTPS callback (Instagram insists on https:// even for localhost, so a self-signed certificate
is made on the fly; the browser warns once), ``--paste`` (copy the address the browser was sent to), or
``--token`` (import a long-lived token generated in Meta's App Dashboard). Each run binds its ``state`` to a random
nonce only this process knows, so a redirect from another run or another person cannot complete it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import secrets
import ssl
import sys
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from filmroll import errors
from filmroll.cli.common import (
    LOCAL_HOSTS,
    ExitStatus,
    console,
    emit,
    err_console,
    fail,
    json_output,
    read_secret,
    run,
    settings,
)
from filmroll.secret import Secret
from filmroll.vocabulary import Provider

if TYPE_CHECKING:
    from aiohttp import web
    from rich.console import Console

    from filmroll.runtime import Runtime
    from filmroll.service.connect import Connection, Connector

PAGE = ("<!doctype html><html><head><meta charset='utf-8'><meta name='referrer' content='no-referrer'>"
        "<title>filmroll</title></head><body style='font-family:sans-serif;margin:3em'><h1>{title}</h1>"
        "<p>{text}</p></body></html>")


def _page(status: int, title: str, text: str) -> web.Response:
    from aiohttp import web

    return web.Response(status=status, text=PAGE.format(title=html.escape(title), text=html.escape(text)),
                        content_type="text/html", headers={"Referrer-Policy": "no-referrer",
                                                           "Cache-Control": "no-store"})


def _sign_in(provider: Provider) -> str:
    return ("log in to Facebook, choose the Pages and press Continue" if provider == Provider.FACEBOOK
            else "log in to Instagram and press Allow")


async def _via_local_callback(connector: Connector, runtime: Runtime, nonce: str, url: str, *, open_browser: bool,
                              timeout: float, say: Console, provider: Provider) -> Connection:
    from aiohttp import web

    from filmroll.tlscert import self_signed

    redirect_uri = runtime.clients[provider].redirect_uri
    redirect = urlsplit(redirect_uri)
    if redirect.scheme != "https" or redirect.hostname not in LOCAL_HOSTS or not redirect.port:
        raise errors.ConfigError(
            f"the redirect URI {redirect_uri} is not an https://localhost:<port>/… address on this "
            "machine, so filmroll cannot receive the redirect here: use `filmroll connect --paste`")
    finished: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()

    async def handle(request: web.Request) -> web.Response:
        if finished.done():
            return _page(410, "Already done", "This connection has finished; you can close this tab.")
        query = request.query_string
        if not query:
            return _page(400, "Nothing to do", "This address expects the sign-in's redirect.")
        try:
            connection = await connector.complete(query, flow="cli", session_id=nonce, actor="cli")
        except errors.FilmrollError as exc:
            finished.set_exception(exc)
            return _page(400, "Not connected", exc.message)
        finished.set_result(connection)
        names = ", ".join(f"@{c.username}" for c in connection.accounts)
        return _page(200, f"Connected as {names}", "You can close this tab and return to the terminal.")

    app = web.Application()
    app.router.add_get(redirect.path or "/", handle)
    with tempfile.TemporaryDirectory() as directory:
        cert, key = self_signed(Path(directory), ("localhost", "127.0.0.1"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)  # the query string carries the code: never log it
    await runner.setup()
    host = "127.0.0.1" if redirect.hostname in ("localhost", "127.0.0.1") else "::1"
    try:
        await web.TCPSite(runner, host, redirect.port, ssl_context=context).start()
    except OSError as exc:
        await runner.cleanup()
        raise errors.ConfigError(f"cannot listen on {host}:{redirect.port} for the redirect ({exc.strerror}); "
                                 "free the port or use `filmroll connect --paste`") from None
    say.print(f"Open this address, {_sign_in(provider)}:")
    say.print(url, soft_wrap=True)
    say.print(f"Waiting for the redirect on {redirect_uri} "
              "(your browser will warn about the self-signed certificate once; that is expected).")
    sys.stdout.flush()
    if open_browser:
        webbrowser.open(url)
    try:
        return await asyncio.wait_for(finished, timeout)
    except TimeoutError:
        raise errors.CallbackError(f"no redirect arrived within {timeout:.0f} seconds; nothing was connected",
                                   code="timeout") from None
    finally:
        await runner.cleanup()


async def _read_line() -> str:
    """A line from stdin on a daemon thread: Ctrl-C ends the command at once (a blocked read in the loop's executor
    would hold the process open until Enter)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not future.done():
            future.set_result(line)

    def read() -> None:
        line = sys.stdin.readline()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (the command was interrupted)
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="filmroll-paste", daemon=True).start()
    return await future


async def _via_paste(connector: Connector, nonce: str, url: str, say: Console, provider: Provider) -> Connection:
    say.print(f"Open this address, {_sign_in(provider)}:")
    say.print(url, soft_wrap=True)
    say.print("Your browser then lands on a page that may not load. Copy the whole address from the address "
              "bar and paste it here:")
    sys.stdout.flush()
    line = await _read_line()
    if not line.strip():
        raise errors.CallbackError("nothing was pasted; nothing was connected", code="missing_code")
    return await connector.complete(line.strip(), flow="cli", session_id=nonce, actor="cli")


def connect(
    provider: Provider = typer.Option(Provider.INSTAGRAM_LOGIN, "--provider", case_sensitive=False,
                                      help="instagram_login (Instagram Login: the account's own posts) or facebook "
                                      "(Facebook Login: every Instagram account linked to your Pages; hashtags and "
                                      "other profiles are read through these)"),
    paste: bool = typer.Option(False, "--paste", help="Paste the redirected address instead of a local callback"),
    token: bool = typer.Option(False, "--token", help="Import a long-lived token from Meta's App Dashboard "
                                                      "(read from stdin, or asked for without echo)"),
    open_browser: bool | None = typer.Option(None, "--open/--no-open", help="Open the authorize page in a browser "
                                             "(default: when the output is a terminal)"),
    force_reauth: bool = typer.Option(False, "--force-reauth", help="Make Instagram ask for the password again"),
    timeout: float = typer.Option(600, min=1, max=24 * 3600, help="Seconds to wait for the redirect"),
    as_json: bool = typer.Option(False, "--json", help="The answer (failures too) as JSON on stdout; the "
                                 "instructions go to stderr"),
) -> None:
    """Connect an Instagram professional account (with Facebook Login: every one linked to your Pages) and store
    its long-lived token, encrypted."""
    json_output(as_json)
    say = err_console if as_json else console
    if paste and token:
        fail("choose one of --paste and --token")
    if token and provider != Provider.INSTAGRAM_LOGIN:
        fail("--token imports an Instagram Login token from the App Dashboard; connect with Facebook Login through "
             "its dialog (without --token)")
    current = settings()
    if open_browser is None:
        open_browser = sys.stdout.isatty()
    redirect_uri, setting = (current.facebook_redirect_uri(), "FILMROLL_FACEBOOK__REDIRECT_URI") \
        if provider == Provider.FACEBOOK else (current.instagram.redirect_uri, "FILMROLL_INSTAGRAM__REDIRECT_URI")
    if not token and urlsplit(redirect_uri).scheme != "https":
        fail(f"the redirect URI {redirect_uri} is not https://, and Meta sends owners only to https:// addresses, "
             f"even on localhost: set {setting}=https://localhost:8765/callback and add exactly that in the App "
             "Dashboard", ExitStatus.CONFIG)
    imported = read_secret("Long-lived token") if token else None

    from filmroll.runtime import open_runtime

    async def body() -> Connection:
        from filmroll.service.connect import Connection

        async with open_runtime(current) as runtime:
            connector = runtime.connector()
            if imported is not None:
                if not imported:
                    raise errors.ConfigError("no token given")
                return Connection((await connector.import_token(Secret(imported), actor="cli"),))
            nonce = secrets.token_urlsafe(32)
            url = await connector.begin(flow="cli", session_id=nonce, force_reauth=force_reauth, provider=provider)
            if paste:
                return await _via_paste(connector, nonce, url, say, provider)
            return await _via_local_callback(connector, runtime, nonce, url, open_browser=open_browser,
                                             timeout=timeout, say=say, provider=provider)

    connection = run(body())
    listed = [{"account": f"@{c.username}", "ig_user_id": c.ig_user_id, "created": c.created,
               "token_expires_at": c.expires_at, "data_access_expires_at": c.data_access_expires_at,
               "permissions": list(c.permissions or [])} for c in connection.accounts]
    if as_json:  # the first account's fields at the top, as before a sign-in could connect several
        emit({"ok": True, "provider": provider.value, **listed[0], "accounts": listed})
        return
    for connected in connection.accounts:
        verb = "connected" if connected.created else "reconnected"
        ends = f"token valid until {connected.expires_at:%Y-%m-%d %H:%M} UTC"
        if connected.data_access_expires_at is not None:
            ends += f", data access until {connected.data_access_expires_at:%Y-%m-%d %H:%M} UTC"
        console.print(f"{verb} @{connected.username} (Instagram id {connected.ig_user_id}); {ends}.")
    several = len(connection.accounts) > 1
    console.print(f"A running worker (`filmroll worker`, or `filmroll serve`) keeps {'them' if several else 'it'} "
                  "connected and syncs; `filmroll sync "
                  + ("ACCOUNT` fetches an account's" if several else f"@{connection.first.username}` fetches its")
                  + " posts now.")
    if not connection.first.permissions and token:
        err_console.print("note: an imported token's permissions are unknown until Instagram refuses a call.")
