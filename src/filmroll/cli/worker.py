"""``filmroll worker``: keep every token alive and every account synced. Runs until SIGTERM, then drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

import typer

from filmroll.cli.common import console, run, settings


def worker(
    concurrency: int = typer.Option(32, min=1, max=1000, help="Calls to Instagram in flight at once"),
    lease_seconds: int = typer.Option(60, min=5, max=3600,
                                      help="How long a claim is held before others may take it over"),
    until_idle: bool = typer.Option(False, "--until-idle", help="Exit once nothing is due (for cron and tests)"),
    as_json: bool = typer.Option(False, "--json", help="Print the final statistics as JSON"),
    sync: bool = typer.Option(True, "--sync/--no-sync", help="Also sync profiles and media when due"),
    metrics_port: int | None = typer.Option(None, "--metrics-port", min=1, max=65535,
                                            help="Serve Prometheus metrics on this port (GET /metrics)"),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host",
                                     help="The address /metrics listens on (default: this machine only)"),
    database_gauges: bool = typer.Option(False, "--database-gauges",
                                         help="Export the database's gauges too (from one process only)"),
) -> None:
    """Keep tokens alive (refresh, daily probe, alerts) and media synced, with leases so any number of workers share
    one database."""
    from filmroll.runtime import open_runtime

    current = settings()

    async def body() -> dict[str, Any]:
        async with open_runtime(current, upgrade=True) as runtime:
            # Crash tests name steps where this process kills itself: read at the edge, never in library code.
            engine = runtime.worker(concurrency=concurrency, lease_seconds=lease_seconds, sync=sync,
                                    fault_points=os.environ.get("FILMROLL_FAULT_POINTS", ""),
                                    idle_poll=0.5 if until_idle else 2.0)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            exporter = None
            if metrics_port is not None:
                from filmroll.service.metrics import Metrics, serve_metrics

                metrics = Metrics(runtime.database, jobs=lambda: engine.stats.jobs, database_gauges=database_gauges,
                                  max_attempts=runtime.mirror_policy.max_attempts)
                exporter = await serve_metrics(metrics, metrics_host, metrics_port)
            try:
                stats = await engine.run(stop, until_idle=until_idle)
            finally:
                if exporter is not None:
                    await exporter.cleanup()
            return {"owner": engine.owner, "claimed": stats.claimed, "outcomes": dict(stats.outcomes),
                    "crashed": stats.crashed, "abandoned": stats.abandoned, "database_outages": stats.outages,
                    "leased_elsewhere": stats.leased_elsewhere,
                    "leased_until": stats.leased_until.isoformat() if stats.leased_until else None}

    result = run(body())
    if as_json:
        typer.echo(json.dumps(result))
        return
    outcomes = result["outcomes"]
    if not result["claimed"]:
        console.print("nothing was due: every token is fresh and every account synced")
    else:
        done = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(outcomes.items()))
        console.print(f"done: {result['claimed']} job(s) ({done})")
    if result["crashed"] or result["abandoned"] or result["database_outages"]:
        console.print(f"also: {result['crashed']} failed unexpectedly (see the log), {result['abandoned']} given up "
                      f"when their leases could not be renewed, {result['database_outages']} database outage(s)")
    if result["leased_elsewhere"]:
        # Not idle: another worker (perhaps one that crashed) still holds work; it is retried once its lease runs out.
        console.print(f"{result['leased_elsewhere']} job(s) are still leased by another worker, until "
                      f"{result['leased_until'][11:19]} UTC; they are retried once those leases run out")
