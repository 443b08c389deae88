"""``filmroll sync ACCOUNT``: sync one account now, in the foreground, or set how often the workers sync it."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from filmroll.cli.common import ExitStatus, console, emit, fail, json_output, run, settings
from filmroll.vocabulary import Outcome

# What each outcome of a sync run from the command line means for the person who ran it.
_FAILED = {
    Outcome.SYNC_RETRY: ("Instagram did not answer as expected", ExitStatus.INSTAGRAM),
    Outcome.SYNC_THROTTLED: ("Instagram is throttling this account", ExitStatus.THROTTLED),
    Outcome.NEEDS_REAUTH: ("its token no longer works", ExitStatus.NEEDS_REAUTH),
    Outcome.STALE_LEASE: ("a worker took the account over before the sync finished", ExitStatus.BUSY),
}


def sync(
    account: str = typer.Argument(..., help="id, @username or slug"),
    full: bool = typer.Option(False, "--full", help="Walk every post (finds deletions and older edits), not just "
                                                    "what changed"),
    interval_minutes: int | None = typer.Option(None, "--interval-minutes", min=1, max=7 * 24 * 60,
                                                help="Instead of syncing now: sync this account every N minutes "
                                                     "from now on"),
    default_interval: bool = typer.Option(False, "--default-interval",
                                          help="Instead of syncing now: follow FILMROLL_SYNC__INTERVAL_MINUTES "
                                               "again"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable answer (failures too), on stdout"),
) -> None:
    """Sync one account's profile and posts now (the workers keep syncing it on schedule), or set its interval."""
    from filmroll.runtime import open_runtime
    from filmroll.service import accounts as account_service
    from filmroll.worker import worker_id

    if interval_minutes is not None and default_interval:
        fail("give --interval-minutes or --default-interval, not both", ExitStatus.CONFIG)
    if full and (interval_minutes is not None or default_interval):
        fail("--full syncs now; --interval-minutes and --default-interval only set the schedule: give one",
             ExitStatus.CONFIG)
    json_output(as_json)
    current = settings()

    if interval_minutes is not None or default_interval:
        async def schedule() -> account_service.AccountView:
            async with open_runtime(current) as runtime:
                return await account_service.set_sync_interval(
                    runtime.database, account, interval_minutes, default=runtime.sync_policy.interval, actor="cli")

        view = run(schedule())
        every = f"every {interval_minutes} min" if interval_minutes else \
            f"every {current.sync.interval_minutes} min (the default)"
        if as_json:
            emit({"ok": True, "account": f"@{view.username}", "id": view.id,
                  "sync_interval_minutes": interval_minutes or current.sync.interval_minutes,
                  "sync_interval_is_default": interval_minutes is None, "next_sync_at": view.next_sync_at})
            return
        console.print(f"@{view.username} is synced {every}; next sync {_when(view.next_sync_at)}")
        return

    async def now() -> account_service.SyncReport:
        async with open_runtime(current) as runtime:
            return await account_service.sync_now(runtime.syncer(f"cli:{worker_id()}"), account, full=full)

    report = run(now())
    view = report.account
    if report.outcome in _FAILED:
        what, status = _FAILED[report.outcome]
        detail = view.status_reason if report.outcome == Outcome.NEEDS_REAUTH else view.sync_error
        fail(f"@{view.username} was not synced: {what}" + (f" ({detail})" if detail else "") +
             (f"; the workers try again {_when(view.next_sync_at)}"
              if status in (ExitStatus.INSTAGRAM, ExitStatus.THROTTLED) else ""),
             status, account=f"@{view.username}", id=view.id, outcome=str(report.outcome),
             next_sync_at=view.next_sync_at)
    change = view.posts - report.posts_before
    if as_json:
        emit({"ok": True, "account": f"@{view.username}", "id": view.id, "outcome": str(report.outcome),
              "full": report.outcome == Outcome.SYNCED_FULL, "posts": view.posts, "posts_added": change,
              "media_count": view.media_count, "last_synced_at": view.last_synced_at,
              "next_sync_at": view.next_sync_at})
        return
    console.print(f"@{view.username} synced{' in full' if report.outcome == Outcome.SYNCED_FULL else ''}: "
                  f"{view.posts} posts stored ({change:+d}), Instagram reports "
                  f"{view.media_count if view.media_count is not None else 'no count'}; next sync "
                  f"{_when(view.next_sync_at)}")


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "not scheduled"
    seconds = (moment - datetime.now(UTC)).total_seconds()
    if seconds <= 0:
        return "now"
    return f"in {seconds / 60:.0f} min ({moment:%Y-%m-%d %H:%M} UTC)"
