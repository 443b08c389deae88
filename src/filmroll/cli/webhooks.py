"""``filmroll webhooks subscribe @user``: ask Instagram to send the account's webhooks to this app (the callback URL
and verify token are set once in the App Dashboard; `filmroll doctor` prints the URL)."""

from __future__ import annotations

import typer

from filmroll.cli.common import ExitStatus, console, fail, run, settings

app = typer.Typer(help="Instagram's webhooks for an account.", no_args_is_help=True)


@app.command("subscribe")
def subscribe(account: str = typer.Argument(..., help="id, @username or slug")) -> None:
    """Subscribe the account to the comments and mentions webhooks (POST /me/subscribed_apps)."""
    from filmroll.runtime import open_runtime
    from filmroll.service import webhooks as webhook_service
    from filmroll.service.webhooks import FIELDS

    async def body() -> tuple[str | None, bool]:
        async with open_runtime(settings()) as runtime:
            found, ok = await webhook_service.subscribe(runtime.database, runtime.vault, runtime.clients, account)
            return found.username, ok

    username, ok = run(body())
    if not ok:
        fail(f"Instagram did not confirm the subscription of @{username}", ExitStatus.INSTAGRAM)
    console.print(f"@{username} subscribed to {', '.join(FIELDS)}; deliveries go to the webhook URL set in the App "
                  "Dashboard")
