"""``importer ops …``: the operator's commands (typer sub-app registered in importer/cli.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer

from importer.errors import OpsError
from importer.logs import configure_logging
from importer.ops import commands
from importer.ops.durations import parse_since
from importer.settings import Settings, get_settings

T = TypeVar("T")

ops_app = typer.Typer(
    help="Operations: retry failed jobs, drain, re-queue orphans, reset breakers, pause/resume, health. "
    "Talks to Postgres and Redis directly, so it works while the API is down.",
    no_args_is_help=True,
    add_completion=False,
)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]


def _run(body: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = get_settings()
    configure_logging(settings.log_level, service="ops")
    try:
        return asyncio.run(body(settings))
    except OpsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _echo(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()


@ops_app.command("retry-failed")
def retry_failed(
    since: Annotated[
        str | None, typer.Option(help="Only jobs failed since: a duration back from now (30m, 2h, 7d) or an ISO time.")
    ] = None,
    company: Annotated[str | None, typer.Option(help="Only this company's jobs (id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many jobs per run.")] = 1000,
    dry_run: DryRun = False,
) -> None:
    """FAILED jobs → PENDING (checkpoint kept, error cleared), re-queued with fresh tries."""
    try:
        since_at = parse_since(since) if since else None
        company_id = UUID(company) if company else None
    except (OpsError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None

    async def body(settings: Settings) -> None:
        async with commands.open_db_checked(settings) as db, commands.open_redis_checked(settings) as redis:
            await commands.retry_failed(
                settings,
                db,
                redis,
                since=since_at,
                company_id=company_id,
                limit=limit,
                dry_run=dry_run,
                echo=_echo,
            )

    _run(body)


@ops_app.command()
def drain(
    timeout: Annotated[float, typer.Option(min=0, help="Give up waiting after this many seconds.")] = 600.0,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between progress lines.")] = 2.0,
    dry_run: DryRun = False,
) -> None:
    """Close intake (the API answers 503 'intake closed') and wait for waiting + active to reach 0."""

    async def body(settings: Settings) -> bool:
        async with commands.open_redis_checked(settings) as redis:
            return await commands.drain(
                settings, redis, wait_limit=timeout, interval=interval, dry_run=dry_run, echo=_echo
            )

    if not _run(body) and not dry_run:
        raise typer.Exit(1)


@ops_app.command("requeue-orphans")
def requeue_orphans(dry_run: DryRun = False) -> None:
    """Run one orphan sweep now: active job rows that Redis has forgotten are queued again."""

    async def body(settings: Settings) -> None:
        async with commands.open_db_checked(settings) as db, commands.open_redis_checked(settings) as redis:
            await commands.requeue_orphans(settings, db, redis, dry_run=dry_run, echo=_echo)

    _run(body)


@ops_app.command("reset-breakers")
def reset_breakers(
    provider: Annotated[str | None, typer.Option(help="Only this provider's breaker (roastify, shopify).")] = None,
    dry_run: DryRun = False,
) -> None:
    """Close circuit breakers now (all providers, or one)."""

    async def body(settings: Settings) -> None:
        async with commands.open_redis_checked(settings) as redis:
            await commands.reset_breakers(settings, redis, provider=provider, dry_run=dry_run, echo=_echo)

    _run(body)


@ops_app.command()
def pause(
    reason: Annotated[str, typer.Option(help="Why; shown in the health report.")] = "paused by an operator",
    dry_run: DryRun = False,
) -> None:
    """Workers stop taking new jobs (running ones finish). Never resumed automatically."""

    async def body(settings: Settings) -> None:
        async with commands.open_redis_checked(settings) as redis:
            await commands.pause(redis, reason=reason, dry_run=dry_run, echo=_echo)

    _run(body)


@ops_app.command()
def resume(dry_run: DryRun = False) -> None:
    """Lift any pause (manual or automatic) and reopen intake."""

    async def body(settings: Settings) -> None:
        async with commands.open_redis_checked(settings) as redis:
            await commands.resume(settings, redis, dry_run=dry_run, echo=_echo)

    _run(body)


@ops_app.command()
def health(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Print the queue health report, computed now."""

    async def body(settings: Settings) -> None:
        async with commands.open_db_checked(settings) as db, commands.open_redis_checked(settings) as redis:
            report = await commands.health(settings, db, redis)
        _echo(commands.render_health(report, as_json=as_json))

    _run(body)
