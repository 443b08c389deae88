"""``filmroll sandbox``: run the offline Instagram Platform in the foreground."""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Annotated

import typer
from rich.console import Console

from filmroll.cli import common


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _print_env(config: object, base: str, uris: tuple[str, ...]) -> None:
    """Everything filmroll needs to talk to this sandbox, as ``export`` lines (the same for `connect` and `serve`)."""
    import shlex

    from filmroll.sandbox.state import SandboxConfig

    assert isinstance(config, SandboxConfig)
    redirect = next((u for u in uris if u == "https://localhost:8765/callback"), uris[-1])
    values = {"FILMROLL_INSTAGRAM__APP_ID": config.resolved_app_id(),
              "FILMROLL_INSTAGRAM__APP_SECRET": config.resolved_app_secret(),
              "FILMROLL_INSTAGRAM__AUTHORIZE_URL": f"{base}/oauth/authorize",
              "FILMROLL_INSTAGRAM__TOKEN_URL": f"{base}/oauth/access_token",
              "FILMROLL_INSTAGRAM__GRAPH_URL": base,
              "FILMROLL_MIRROR__CDN_HOSTS": f'["{base}"]',
              "FILMROLL_INSTAGRAM__REDIRECT_URI": redirect,
              # Facebook Login: the Meta app's id and secret, on the hosts' own route tables
              "FILMROLL_FACEBOOK__APP_ID": config.resolved_meta_app_id(),
              "FILMROLL_FACEBOOK__APP_SECRET": config.resolved_meta_app_secret(),
              "FILMROLL_FACEBOOK__DIALOG_URL": f"{base}/www.facebook.com/v25.0/dialog/oauth",
              "FILMROLL_FACEBOOK__GRAPH_URL": f"{base}/graph.facebook.com"}
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")


def sandbox(
    host: Annotated[str, typer.Option(envvar="FILMROLL_SANDBOX__HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="FILMROLL_SANDBOX__PORT", min=0, max=65535)] = 8700,
    seed: Annotated[int, typer.Option(envvar="FILMROLL_SANDBOX__SEED", help="Same seed, same world.")] = 0,
    accounts: Annotated[int, typer.Option(envvar="FILMROLL_SANDBOX__ACCOUNTS", min=1, max=10_000_000,
                                          help="Accounts generated lazily from the seed.")] = 100_000,
    auto_consent: Annotated[bool, typer.Option("--auto-consent", envvar="FILMROLL_SANDBOX__AUTO_CONSENT",
                                               help="Skip the consent page: the authorize URL redirects straight "
                                                    "back with a code for account 0.")] = False,
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", envvar="FILMROLL_SANDBOX__REDIRECT_URIS",
        help="A redirect URI the sandbox app accepts (repeatable). Matched byte for byte.")] = None,
    app_id: Annotated[str | None, typer.Option(envvar="FILMROLL_SANDBOX__APP_ID")] = None,
    app_secret: Annotated[str | None, typer.Option(envvar="FILMROLL_SANDBOX__APP_SECRET")] = None,
    print_env: Annotated[bool, typer.Option("--print-env", help="Print the shell exports that point filmroll at "
                                            "this sandbox (`eval \"$(filmroll sandbox --print-env)\"`), and exit")
                         ] = False,
) -> None:
    """Run a faithful offline Instagram Platform: OAuth, tokens, Graph reads, CDN, webhooks."""
    from filmroll.sandbox.server import serve
    from filmroll.sandbox.state import DEFAULT_REDIRECT_URIS, SandboxConfig
    from filmroll.sandbox.world import World

    console = Console(stderr=False, highlight=False)
    uris = tuple(redirect_uri) if redirect_uri else DEFAULT_REDIRECT_URIS
    for uri in uris:
        if not uri.startswith("https://"):
            raise typer.BadParameter(f"{uri!r}: Instagram accepts only https:// redirect URIs, even for localhost",
                                     param_hint="--redirect-uri")
    config = SandboxConfig(seed=seed, accounts=accounts, redirect_uris=uris, app_id=app_id, app_secret=app_secret,
                           auto_consent=auto_consent)
    if print_env:
        if port == 0:
            raise typer.BadParameter("--print-env needs the port the sandbox listens on, not 0", param_hint="--port")
        _print_env(config, f"http://{host if ':' not in host else f'[{host}]'}:{port}", uris)
        return
    sock = common.bind(host, port)
    family = sock.family
    # Listening before the address is printed: a client that connects at once waits in the backlog until the server
    # accepts, instead of being refused by a socket that is bound but not yet listening.
    sock.listen(2048)
    port = sock.getsockname()[1]
    base = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{port}"

    def announce() -> None:
        table = common.table("", "", show_header=False, box=None, padding=(0, 2))
        table.add_row("Listening on", base)
        table.add_row("Instagram app ID", config.resolved_app_id())
        table.add_row("Instagram app secret", config.resolved_app_secret())
        table.add_row("Redirect URIs", "\n".join(uris))
        first = World(seed, accounts, 0, {}).account(0)
        assert first is not None
        table.add_row("Accounts", f"{accounts:,}; log in as {first.username} (or any other) with password 'password'")
        table.add_row("Consent", "automatic, as account 0" if auto_consent else "login + Allow/Cancel page")
        table.add_row("Control API", f"{base}/_sandbox")
        console.print("[bold]filmroll sandbox[/bold]: an offline Instagram Platform (nothing here talks to Meta)")
        console.print(table)
        console.print('Point filmroll at it (`eval "$(filmroll sandbox --print-env)"` exports all of it):')
        console.print(f"  FILMROLL_INSTAGRAM__AUTHORIZE_URL={base}/oauth/authorize")
        console.print(f"  FILMROLL_INSTAGRAM__TOKEN_URL={base}/oauth/access_token")
        console.print(f"  FILMROLL_INSTAGRAM__GRAPH_URL={base}")
        console.print(f"  FILMROLL_MIRROR__CDN_HOSTS='[\"{base}\"]'")
        console.print(f"  FILMROLL_FACEBOOK__DIALOG_URL={base}/www.facebook.com/v25.0/dialog/oauth")
        console.print(f"  FILMROLL_FACEBOOK__GRAPH_URL={base}/graph.facebook.com")
        if not _is_loopback(host):
            console.print("[yellow]warning:[/yellow] the control API has no authentication; "
                          "keep the sandbox on a loopback address.")
        sys.stdout.flush()  # a supervisor reading a pipe must see the address before the server blocks

    serve(config, host, port, sock, announce)
