"""``importer``: the service's processes and its operator commands."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from importer.logs import configure_logging, get_logger
from importer.settings import get_settings

app = typer.Typer(
    help="Product importer: API, workers, reconciler and operations. Settings come from IMPORTER_* variables.",
    no_args_is_help=True,
    add_completion=False,
)
log = get_logger("importer.cli")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run concurrently and repeatedly)."""
    from importer.db.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level, service="migrate")
    applied = asyncio.run(run_migrations(settings.database_url))
    log.info("migrations_applied", versions=applied, count=len(applied))
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    processes: Annotated[
        int | None, typer.Option(help="API processes sharing the port (default IMPORTER_API_PROCESSES, 1).")
    ] = None,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated proxy addresses whose X-Forwarded-For is trusted (the client address is "
            "what failed-authentication limits count per); '*' trusts every peer."
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level, service="api")
    count = processes or settings.api_processes
    options = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
    }
    if count > 1:
        uvicorn.run("importer.api.asgi:app_factory", factory=True, workers=count, **options)  # type: ignore[arg-type]
    else:
        from importer.api.app import create_app

        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]


@app.command()
def worker(
    worker_id: Annotated[str | None, typer.Option(help="Name in logs and in Redis; default host-pid.")] = None,
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
) -> None:
    """Run one worker process (concurrency from IMPORTER_WORKER_CONCURRENCY)."""
    from importer.worker.worker import ImportWorker

    settings = get_settings()
    configure_logging(settings.log_level, service="worker")
    ImportWorker(settings, worker_id=worker_id, burst=burst).run()


@app.command()
def reconciler(
    once: Annotated[bool, typer.Option(help="Run each sweep once and exit.")] = False,
) -> None:
    """Re-enqueue orphaned jobs and fail stalled ones, on their intervals; monitor queue health
    and drive the emergency brake."""
    from importer.connections import open_redis
    from importer.db.pool import create_pool
    from importer.protection.monitor import HealthMonitor
    from importer.reconcile import Reconciler

    settings = get_settings()
    configure_logging(settings.log_level, service="reconciler")

    async def _main() -> None:
        db = await create_pool(settings, min_size=1, max_size=4)
        redis = open_redis(settings)
        rec = Reconciler(settings, db, redis, monitor=HealthMonitor(settings, db, redis))
        try:
            if once:
                await rec._guarded("orphans", rec.sweep_orphans)
                await rec._guarded("stalls", rec.sweep_stalled)
                await rec._guarded_health()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            log.info(
                "reconciler_started",
                orphan_interval=settings.orphan_sweep_interval,
                stall_interval=settings.stall_sweep_interval,
            )
            await rec.run_forever(stop=stop)
            log.info("reconciler_stopped")
        finally:
            await redis.aclose()
            await db.close()

    asyncio.run(_main())


def _register_ops() -> None:
    from importer.ops.cli import ops_app

    app.add_typer(ops_app, name="ops")


_register_ops()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
