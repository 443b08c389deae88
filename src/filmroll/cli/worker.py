"""``filmroll worker``: keep every token alive (refresh on Instagram's rules). Runs until SIGTERM, then drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import typer

from filmroll.cli.common import console, run, settings


def worker(
    concurrency: int = typer.Option(32, min=1, max=1000, help="Calls to Instagram in flight at once"),
    lease_seconds: int = typer.Option(60, min=5, help="How long a claim is held before others may take it over"),
    until_idle: bool = typer.Option(False, "--until-idle", help="Exit once nothing is due (for cron and tests)"),
    as_json: bool = typer.Option(False, "--json", help="Print the final statistics as JSON"),
    sync: bool = typer.Option(True, "--sync/--no-sync", help="Also sync profiles and media when due"),
) -> None:
    """Refresh tokens when due and probe each one daily, with leases so any number of workers share one database."""
    from datetime import timedelta

    from filmroll.faults import FaultPoints
    from filmroll.runtime import open_runtime
    from filmroll.service.probe import Prober
    from filmroll.service.refresh import Refresher
    from filmroll.service.sync import Syncer
    from filmroll.worker import Worker, probe_job, refresh_job, sync_job, worker_id

    current = settings()
    # Crash tests name steps where this process kills itself; read here, at the edge, never in library code.
    faults = FaultPoints(os.environ.get("FILMROLL_FAULT_POINTS", ""))

    async def body() -> dict[str, object]:
        async with open_runtime(current) as runtime:
            owner = worker_id()
            refresher = Refresher(runtime.database, runtime.vault, runtime.instagram, owner=owner, faults=faults)
            prober = Prober(runtime.database, runtime.vault, runtime.instagram, owner=owner)
            syncer = Syncer(runtime.database, runtime.vault, runtime.instagram, owner=owner)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            jobs = [refresh_job(refresher), probe_job(prober)] + ([sync_job(syncer)] if sync else [])
            engine = Worker(runtime.database, jobs, owner=owner,
                            concurrency=concurrency,
                            lease=timedelta(seconds=lease_seconds), idle_poll=0.5 if until_idle else 2.0)
            stats = await engine.run(stop, until_idle=until_idle)
            return {"owner": owner, "claimed": stats.claimed, "outcomes": dict(stats.outcomes),
                    "crashed": stats.crashed}

    result = run(body())
    if as_json:
        typer.echo(json.dumps(result))
    else:
        console.print(f"worker {result['owner']} stopped: {result['claimed']} claimed, {result['outcomes']}")
