"""What each ``importer ops`` command does, against Postgres and Redis directly.

Operators reach for these when things are broken, the API included, so nothing here goes
through the API. Each command reports every change it makes through ``echo`` (one line per
job, breaker or flag), and with ``dry_run`` reports what it would do and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from redis.exceptions import RedisError

from importer import queueing
from importer.connections import open_redis
from importer.db import admin
from importer.db.pool import create_pool, is_transient_db_error
from importer.errors import OpsError
from importer.logs import get_logger
from importer.models import Provider
from importer.protection.breaker import CircuitBreakers
from importer.protection.counters import Counters
from importer.protection.health import HealthReport, compute_report, queue_stats
from importer.protection.pause import close_intake, pause_queue, read_intake_closed, read_pause, resume_queue
from importer.reconcile import Reconciler
from importer.settings import Settings
from importer.sweeping import SweepStop
from importer.worker.keys import retry_key

log = get_logger(__name__)

Echo = Callable[[str], None]
_REDIS_ERRORS = (TimeoutError, RedisError, OSError)
OPERATOR = "ops-cli"


@contextlib.asynccontextmanager
async def open_redis_checked(settings: Settings) -> AsyncIterator[Any]:
    redis = open_redis(settings)
    try:
        try:
            await redis.ping()
        except _REDIS_ERRORS as exc:
            raise OpsError(f"cannot reach Redis: {exc!r}") from exc
        yield redis
    finally:
        with contextlib.suppress(*_REDIS_ERRORS):
            await redis.aclose()


@contextlib.asynccontextmanager
async def open_db_checked(settings: Settings) -> AsyncIterator[Any]:
    try:
        db = await create_pool(settings, min_size=1, max_size=2)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        raise OpsError(f"cannot reach PostgreSQL: {exc!r}") from exc
    try:
        yield db
    finally:
        await db.close()


# --- retry-failed ---------------------------------------------------------------------------------
async def retry_failed(
    settings: Settings,
    db: Any,
    redis: Any,
    *,
    since: datetime | None,
    company_id: UUID | None,
    limit: int,
    dry_run: bool,
    echo: Echo,
) -> list[UUID]:
    """FAILED → PENDING (checkpoint kept, error cleared) and re-queued with fresh arq tries."""
    async with db.acquire() as conn:
        rows = await admin.list_failed(conn, since=since, company_id=company_id, limit=limit)
        total = await admin.count_failed(conn, since=since, company_id=company_id)
    if not rows:
        echo("no FAILED jobs match")
        return []
    retried: list[UUID] = []
    for row in rows:
        job_id: UUID = row["id"]
        error = (row["error"] or "").replace("\n", " ")[:120]
        line = f"{job_id} company={row['company_id']} phase={row['phase']} error={error!r}"
        if dry_run:
            echo(f"would retry {line}")
            continue
        async with db.acquire() as conn:
            try:
                revived = await admin.reset_failed(conn, job_id)
            except asyncpg.UniqueViolationError:
                # Another job of the store became active between the check and the write.
                revived = False
            if not revived:
                echo(f"skipped {job_id}: no longer FAILED, or its store already has an active job")
                continue
        try:
            await redis.delete(retry_key(str(job_id)))  # fresh tries
            await queueing.requeue(redis, job_id, company_id=row["company_id"], priority=bool(row["vip"]))
            echo(f"retried {line}")
        except _REDIS_ERRORS as exc:
            # The row is PENDING now: the reconciler's orphan sweep will enqueue it.
            echo(f"retried {line} (enqueue failed: {exc!r}; the reconciler will enqueue it)")
        log.info("ops_job_retried", job_id=str(job_id), company_id=str(row["company_id"]))
        retried.append(job_id)
    verb = "would retry" if dry_run else "retried"
    count = len(rows) if dry_run else len(retried)
    more = f"; {total - len(rows)} more match (run again or raise --limit)" if total > len(rows) else ""
    echo(f"{verb} {count} of {total} matching FAILED job(s){more}")
    return retried


# --- drain ----------------------------------------------------------------------------------------
async def drain(
    settings: Settings, redis: Any, *, wait_limit: float, interval: float, dry_run: bool, echo: Echo
) -> bool:
    """Close intake, then wait (bounded) for waiting + active to reach zero; True when drained."""
    stats = await queue_stats(redis, settings.queue_name, scan_limit=settings.health_age_scan_limit)
    if dry_run:
        echo(
            f"would close intake and wait up to {wait_limit:g}s for {stats.waiting} waiting + "
            f"{stats.active} active job(s) to finish ({stats.deferred} deferred)"
        )
        return stats.waiting + stats.active == 0
    await close_intake(redis, reason="draining (importer ops drain)", by=OPERATOR)
    echo("intake closed: POST /v1/imports answers 503 'intake closed'")
    pause = await read_pause(redis)
    if pause is not None:
        echo(f"warning: the queue is paused ({pause.mode}: {pause.reason}); waiting jobs will not drain")
    started = time.monotonic()
    deadline = started + wait_limit
    while True:
        stats = await queue_stats(redis, settings.queue_name, scan_limit=settings.health_age_scan_limit)
        elapsed = time.monotonic() - started
        echo(f"[{elapsed:6.1f}s] waiting={stats.waiting} active={stats.active} deferred={stats.deferred}")
        if stats.waiting + stats.active == 0:
            echo("drained: no job waiting or running")
            if stats.deferred:
                echo(f"{stats.deferred} deferred job(s) remain queued; they run when due")
            echo("intake stays closed; reopen it with `importer ops resume`")
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            echo(f"timed out after {wait_limit:g}s with {stats.waiting} waiting and {stats.active} active")
            echo("intake stays closed; reopen it with `importer ops resume`")
            return False
        await asyncio.sleep(min(interval, remaining))


# --- requeue-orphans ------------------------------------------------------------------------------
async def requeue_orphans(settings: Settings, db: Any, redis: Any, *, dry_run: bool, echo: Echo) -> int:
    """One orphan sweep now, paging through every candidate like the reconciler's own sweeps.

    Without ``dry_run`` each orphan is marked PENDING (only if unchanged since it was read) and
    then enqueued; with it, nothing is written or enqueued and the same rows are listed.
    """
    result = await Reconciler(settings, db, redis).sweep_orphans(dry_run=dry_run)
    if result.skipped_locked:
        echo("another reconciler is sweeping right now; nothing done, try again in a moment")
        return 0
    verb = "would re-queue" if dry_run else "re-queued"
    for job_id in result.requeued:
        echo(f"{verb} {job_id}")
    for job_id in result.failed:
        echo(f"{'would fail' if dry_run else 'failed'} {job_id}: abandoned too many times")
    for job_id in result.changed:
        echo(f"left {job_id}: it changed since it was read (claimed, renewed or handed back)")
    for job_id in result.enqueue_failed:
        echo(f"marked {job_id} PENDING but could not enqueue it; the next sweep will")
    echo(
        f"{verb} {len(result.requeued)} orphan(s); {len(result.failed)} given up; "
        f"{result.scanned} candidate row(s) checked in {result.pages} page(s)"
    )
    if result.stopped is not None:
        echo(f"stopped early ({_STOP_REASONS[result.stopped]}); run again to continue")
    return len(result.requeued)


_STOP_REASONS = {
    SweepStop.ROWS: "row limit per sweep reached",
    SweepStop.TIME: "time limit per sweep reached",
    SweepStop.LOCKED: "another reconciler took over the sweep",
    SweepStop.REDIS: "Redis failed during an enqueue",
}


# --- breakers -------------------------------------------------------------------------------------
async def reset_breakers(
    settings: Settings, redis: Any, *, provider: str | None, dry_run: bool, echo: Echo
) -> dict[str, str]:
    names = [p.value for p in Provider]
    if provider is not None and provider not in names:
        raise OpsError(f"unknown provider {provider!r}; expected one of {', '.join(names)}")
    breakers = CircuitBreakers(redis, settings, Counters(redis))
    before: dict[str, str] = {}
    for name in [provider] if provider else names:
        snap = await breakers.snapshot(name)
        before[name] = str(snap["state"])
        if dry_run:
            failures = snap["consecutive_failures"]
            echo(f"{name}: {snap['state']} ({failures} consecutive failures); would reset to closed")
            continue
        was = await breakers.reset(name, reason=f"reset by an operator ({OPERATOR})")
        echo(f"{name}: {was.value} -> closed")
    return before


# --- pause / resume -------------------------------------------------------------------------------
async def pause(redis: Any, *, reason: str, dry_run: bool, echo: Echo) -> None:
    current = await read_pause(redis)
    if dry_run:
        state = "not paused" if current is None else f"already paused ({current.mode}: {current.reason})"
        echo(f"queue is {state}; would pause it (manual, never auto-resumed) with reason {reason!r}")
        return
    await pause_queue(redis, reason=reason, by=OPERATOR)
    was = "" if current is None else f" (replacing a {current.mode} pause)"
    echo(f"queue paused{was}: workers take no new jobs, running jobs finish; resume with `importer ops resume`")


async def resume(settings: Settings, redis: Any, *, dry_run: bool, echo: Echo) -> None:
    if dry_run:
        current = await read_pause(redis)
        intake = await read_intake_closed(redis)
        echo(
            f"queue is {'not paused' if current is None else f'paused ({current.mode}: {current.reason})'}, "
            f"intake is {'closed' if intake else 'open'}; would resume the queue and open intake"
        )
        return
    previous, intake_was_closed = await resume_queue(redis, by=OPERATOR, cooldown=settings.brake_cooldown)
    echo(
        ("queue resumed" if previous is not None else "queue was not paused")
        + ("; intake reopened" if intake_was_closed else "; intake was open")
    )


# --- health ---------------------------------------------------------------------------------------
async def health(settings: Settings, db: Any, redis: Any) -> HealthReport:
    return await compute_report(settings, redis, db, computed_by=OPERATOR)


def render_health(report: HealthReport, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.to_json(), indent=2, sort_keys=True)
    age = "none waiting" if report.oldest_waiting_age is None else f"{report.oldest_waiting_age:.1f}s"
    if report.oldest_age_is_lower_bound:
        age += " (at most: only running jobs within the scan limit)"
    lines = [
        f"level: {report.level.value}" + (f" ({'; '.join(report.reasons)})" if report.reasons else ""),
        f"waiting: {report.waiting}  active: {report.active}  deferred: {report.deferred}  "
        f"failed last hour: {'unknown' if report.failed_last_hour is None else report.failed_last_hour}",
        f"oldest waiting: {age}",
        f"workers alive: {report.workers_alive}",
        "paused: "
        + ("no" if report.paused is None else f"yes ({report.paused.get('mode')}: {report.paused.get('reason')})"),
        "intake: " + ("open" if report.intake_closed is None else "closed"),
    ]
    for name, breaker in sorted(report.breakers.items()):
        lines.append(f"breaker {name}: {breaker['state']} ({breaker['consecutive_failures']} consecutive failures)")
    if report.counters:
        lines.append("counters: " + ", ".join(f"{k}={v}" for k, v in report.counters.items()))
    return "\n".join(lines)
