"""``filmroll accounts``, ``token``, ``disconnect``, ``delete``, ``export``: connected accounts, their tokens, and
what an owner who leaves is owed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from filmroll import errors
from filmroll.cli import common
from filmroll.cli.common import ExitStatus, console, emit, fail, json_output, run, settings
from filmroll.vocabulary import AccountStatus, Outcome

if TYPE_CHECKING:
    from filmroll.service.accounts import AccountView, RefreshReport
    from filmroll.service.export import ExportReport

def _lazy() -> tuple[Any, Any]:
    """The database stack, imported only by the commands that use it (keeps `filmroll --help` quick)."""
    from filmroll.runtime import open_runtime
    from filmroll.service import accounts as account_service

    return open_runtime, account_service


token_app = typer.Typer(help="One account's token: refresh it now, or hand it to a script.", no_args_is_help=True)


def _expires_in(view: AccountView) -> str:
    if view.token_expires_at is None:
        return "-"
    days = (view.token_expires_at - datetime.now(UTC)).total_seconds() / 86_400
    return f"{days:.1f} days" if days > 0 else "expired"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json(view: AccountView, default_interval_minutes: int) -> dict[str, object]:
    return {
        "id": view.id, "username": view.username, "ig_user_id": view.ig_user_id, "custom_id": view.custom_id,
        "status": view.status,
        "status_reason": view.status_reason, "slug": view.slug,
        "token_expires_at": view.token_expires_at.isoformat() if view.token_expires_at else None,
        "token_expires_in_seconds": int((view.token_expires_at - datetime.now(UTC)).total_seconds())
        if view.token_expires_at else None,
        "refreshed_at": _iso(view.refreshed_at), "next_refresh_at": _iso(view.next_refresh_at),
        "permissions": list(view.permissions), "refresh_failures": view.refresh_failures,
        "refresh_error": view.refresh_error, "name": view.name, "posts": view.posts,
        "media_count": view.media_count, "followers_count": view.followers_count, "follows_count": view.follows_count,
        "sync_interval_minutes": view.sync_interval_minutes or default_interval_minutes,
        "sync_interval_is_default": view.sync_interval_minutes is None,
        "last_synced_at": _iso(view.last_synced_at), "next_sync_at": _iso(view.next_sync_at),
        "stale_since": _iso(view.stale_since), "sync_failures": view.sync_failures, "sync_error": view.sync_error,
        "provider": view.provider, "data_access_expires_at": _iso(view.data_access_expires_at),
    }


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    minutes = (datetime.now(UTC) - moment).total_seconds() / 60
    return f"{minutes:.0f} min ago" if minutes < 120 else f"{moment:%Y-%m-%d %H:%M} UTC"


def accounts(as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
             status: str | None = typer.Option(None, "--status", help="Only accounts in this status (active, "
                                               "needs_reauth, revoked, disconnected)"),
             custom_id: str | None = typer.Option(None, "--custom-id", help="Only the accounts a connect link with "
                                                  "this custom id connected")) -> None:
    """List connected accounts: status, token expiry and last refresh, posts stored and last sync."""
    open_runtime, account_service = _lazy()
    current = settings()

    async def body() -> list[AccountView]:
        if status is not None and status not in {s.value for s in AccountStatus}:
            raise errors.InputError(f"--status is active, needs_reauth, revoked or disconnected, not {status[:20]!r}")
        async with open_runtime(current) as runtime:
            return await account_service.listing(runtime.database, status=status, custom_id=custom_id)

    views = run(body())
    if as_json:
        typer.echo(json.dumps([_json(v, current.sync.interval_minutes) for v in views], indent=2))
        return
    if not views:
        console.print("no account is connected yet; run `filmroll connect`")
        return
    table = common.table("id", "account", "status", "followers", "follows", "token expires in", "refreshed", "posts",
                         "last sync")
    for view in views:
        status = view.status + (f" ({view.status_reason})" if view.status_reason else "")
        refreshed = f"{view.refreshed_at:%Y-%m-%d %H:%M} UTC" if view.refreshed_at else "never"
        posts = f"{view.posts} / {view.media_count}" if view.media_count is not None else str(view.posts)
        synced = _ago(view.last_synced_at) + (f"\nfailing since {_ago(view.stale_since)}: {view.sync_error}"
                                              if view.stale_since else "")
        table.add_row(str(view.id), f"@{view.username}", status, _count(view.followers_count),
                      _count(view.follows_count), _expires_in(view), refreshed, posts, synced)
    console.print(table)


# What each outcome of a refresh asked for on the command line means for the person who asked.
_REFRESH_FAILED = {
    Outcome.RETRY: ("Instagram did not answer as expected", ExitStatus.INSTAGRAM),
    Outcome.THROTTLED: ("Instagram is throttling this account", ExitStatus.THROTTLED),
    Outcome.NEEDS_REAUTH: ("its token no longer works", ExitStatus.NEEDS_REAUTH),
    Outcome.STALE_LEASE: ("a worker took the token over before the refresh finished", ExitStatus.BUSY),
    Outcome.TOO_EARLY: ("Instagram says the token is too young to refresh", ExitStatus.TOO_EARLY),
}


def _fail_on(report: RefreshReport, failures: dict[Outcome, tuple[str, ExitStatus]], said: str, *,
             other_detail: str | None = None) -> None:
    """Stop with the outcome's message and exit code when it is one of ``failures`` (the reason, for needs_reauth)."""
    if report.outcome not in failures:
        return
    view = report.account
    what, status = failures[report.outcome]
    detail = view.status_reason if report.outcome == Outcome.NEEDS_REAUTH else other_detail
    fail(f"@{view.username}{said}: {what}" + (f" ({detail})" if detail else ""), status,
         account=f"@{view.username}", id=view.id, outcome=str(report.outcome))


@token_app.command("refresh")
def refresh(account: str = typer.Argument(..., help="id, @username or slug"),
            as_json: bool = typer.Option(False, "--json", help="Machine-readable answer (failures too), on stdout"),
            ) -> None:
    """Refresh the account's token now (Instagram allows it once the token is 24 hours old: exit 11 before). Refused,
    exit 7, while a worker is refreshing or probing it."""
    json_output(as_json)
    open_runtime, account_service = _lazy()

    async def body() -> RefreshReport:
        from filmroll.worker import worker_id

        async with open_runtime(settings()) as runtime:
            return await account_service.refresh_now(runtime.refresher(f"cli:{worker_id()}"), account)

    report = run(body())
    view = report.account
    _fail_on(report, _REFRESH_FAILED, "'s token was not refreshed", other_detail=view.refresh_error)
    if as_json:
        emit({"ok": True, "account": f"@{view.username}", "id": view.id, "outcome": str(report.outcome),
              "refreshed_by": "a worker, meanwhile" if report.outcome == Outcome.LOST_RACE else "this command",
              "token_expires_at": view.token_expires_at, "refreshed_at": view.refreshed_at})
        return
    if report.outcome == Outcome.LOST_RACE:
        console.print(f"@{view.username}: a worker refreshed the token meanwhile; valid for {_expires_in(view)}")
        return
    console.print(f"@{view.username}: token refreshed, valid for {_expires_in(view)}")


_PROBE_FAILED = {
    Outcome.RETRY: ("Instagram did not answer as expected", ExitStatus.INSTAGRAM),
    Outcome.THROTTLED: ("Instagram is throttling this account", ExitStatus.THROTTLED),
    Outcome.NEEDS_REAUTH: ("its token no longer works", ExitStatus.NEEDS_REAUTH),
    Outcome.STALE_LEASE: ("a worker took the token over before the check finished", ExitStatus.BUSY),
}


def probe(account: str = typer.Argument(..., help="id, @username or slug"),
          as_json: bool = typer.Option(False, "--json", help="Machine-readable answer (failures too), on stdout"),
          ) -> None:
    """Check now that the account's token works (one call to Instagram, as the workers' daily probe). A dead
    token makes the account needs_reauth, exit 5."""
    json_output(as_json)
    open_runtime, account_service = _lazy()

    async def body() -> RefreshReport:
        from filmroll.worker import worker_id

        async with open_runtime(settings()) as runtime:
            return await account_service.probe_now(runtime.prober(f"cli:{worker_id()}"), account)

    report = run(body())
    view = report.account
    _fail_on(report, _PROBE_FAILED, "'s token check failed")
    if as_json:
        emit({"ok": True, "account": f"@{view.username}", "id": view.id, "outcome": str(report.outcome),
              "token_expires_at": view.token_expires_at})
        return
    console.print(f"@{view.username}: the token works (Instagram answered); valid for {_expires_in(view)}")


@token_app.command("show")
def show(account: str = typer.Argument(..., help="id, @username or slug"),
         reveal: bool = typer.Option(False, "--reveal", help="Print the token itself (for a script)"),
         as_json: bool = typer.Option(False, "--json", help="Machine-readable facts (never the token)")) -> None:
    """Show a token's facts; with --reveal, print the token itself on stdout and nothing else."""
    if reveal and as_json:
        fail("--reveal prints the token alone; --json prints its facts: choose one", ExitStatus.INVALID)
    open_runtime, account_service = _lazy()

    async def body() -> tuple[AccountView, str | None]:
        async with open_runtime(settings()) as runtime:
            plain = None
            if reveal:
                _, secret = await account_service.reveal(runtime.database, runtime.vault, account, actor="cli")
                plain = secret.reveal()
            return await account_service.describe(runtime.database, account), plain

    view, plain = run(body())
    if plain is not None:
        typer.echo(plain)  # the explicit way to hand a token to a script: stdout only, nothing else
        return
    if as_json:
        typer.echo(json.dumps(_json(view, settings().sync.interval_minutes), indent=2))
        return
    console.print(f"@{view.username} ({view.status}); token expires in {_expires_in(view)}; permissions: "
                  f"{', '.join(view.permissions) or 'unknown'}. Use --reveal to print it.")


def disconnect(account: str = typer.Argument(..., help="id, @username or slug")) -> None:
    """Delete the account's token and stop syncing it (its history stays)."""
    open_runtime, account_service = _lazy()

    async def body() -> AccountView:
        async with open_runtime(settings()) as runtime:
            return await account_service.disconnect(runtime.database, account, actor="cli")

    view = run(body())
    console.print(f"@{view.username} disconnected; its token is deleted")


def reconnect_link(account: str = typer.Argument(..., help="id, @username or slug")) -> None:
    """Make a single-use reconnect link to send the account's owner yourself (the webhook sends one by itself).

    Whoever opens it can sign in to Instagram again without an admin login, but only as this account.
    """
    open_runtime, account_service = _lazy()

    async def body() -> tuple[AccountView, str, datetime]:
        from datetime import timedelta

        from filmroll.service.alerts import mint_link

        current = settings()
        async with open_runtime(current) as runtime:
            view = await account_service.describe(runtime.database, account)
            secret, link = await mint_link(runtime.database, view.id,
                                           timedelta(days=current.alerts.reconnect_link_days))
            return view, f"{current.public_origin()}/reconnect?link={secret}", link.expires_at

    view, url, expires_at = run(body())
    console.print(f"Reconnect link for @{view.username}, single use, valid until {expires_at:%Y-%m-%d %H:%M} UTC:")
    print(url)  # plain, so a script can take it; it is a credential: send it to the owner only


def delete(account: str = typer.Argument(..., help="id, @username or slug"),
           yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation (scripts)")) -> None:
    """Delete everything stored of an account: its token, posts, pictures (local or S3, and published ones), insights,
    its place in feeds, the webhook deliveries naming it, and the personal data in its events; the same deletion
    Meta's data-deletion callback starts."""
    open_runtime, account_service = _lazy()
    current = settings()

    async def find() -> AccountView:
        async with open_runtime(current) as runtime:
            return await account_service.describe(runtime.database, account)

    view = run(find())
    if not yes and not typer.confirm(f"Delete @{view.username} and everything filmroll stored of it? This cannot be "
                                     "undone", default=False):
        fail("nothing was deleted", ExitStatus.ERROR)

    async def body() -> tuple[str, bool]:
        import asyncio

        from filmroll.runtime import deletion_job
        from filmroll.service.deletion import Deleter, request_deletion
        from filmroll.store import deletions
        from filmroll.worker import Worker, worker_id

        async with open_runtime(current) as runtime:
            row = await request_deletion(runtime.database, account_id=view.id)
            owner = worker_id()
            # Through the worker's own leased job, so a running worker and this command never delete twice.
            deleter = Deleter(runtime.database, runtime.storage, owner=owner, published=runtime.published)
            worker = Worker(runtime.database, [deletion_job(deleter)], owner=owner, idle_poll=0.2)
            await worker.run(asyncio.Event(), until_idle=True)
            async with runtime.database.read() as session:
                done = await deletions.get(session, row.code)
            return row.code, done is not None and done.status == deletions.COMPLETED

    code, deleted = run(body())
    if not deleted:
        fail(f"@{view.username}'s deletion is recorded (confirmation code {code}) but did not finish now; a running "
             "worker finishes it", ExitStatus.BUSY)
    console.print(f"@{view.username} and everything stored of it are deleted (confirmation code {code})")


def export(account: str = typer.Argument(..., help="id, @username or slug"),
           to: Path | None = typer.Option(None, "--to", help="The zip to write (default: USERNAME-filmroll.zip here)")
           ) -> None:
    """Write everything stored of an account into one zip: profile, posts, insights history and the original
    pictures and videos, in the layout its README.txt describes (no token)."""
    open_runtime, account_service = _lazy()

    async def body() -> ExportReport:
        from filmroll.service.export import export as write_export

        async with open_runtime(settings()) as runtime:
            found = await account_service.describe(runtime.database, account)
            target = to or Path(f"{found.username or found.id}-filmroll.zip")
            return await write_export(runtime.database, runtime.storage, account, target)

    report = run(body())
    gaps = f"; {report.missing} file(s) no longer in the storage" if report.missing else ""
    console.print(f"@{report.username}: {report.posts} posts and {report.files} files written to {report.path} "
                  f"({report.bytes / 1e6:.1f} MB){gaps}")
