"""Creating and following import jobs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request, status
from redis.exceptions import RedisError
from sse_starlette.sse import EventSourceResponse

from importer import queueing
from importer.api.auth import CompanyDep, ContextDep
from importer.api.context import ApiContext
from importer.api.schemas import ErrorBody, ImportAccepted, ImportCreate, ImportView
from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.errors import ApiError
from importer.logs import get_logger
from importer.models import Company, Job, JobStatus
from importer.protection.admission import Admission, decide_admission
from importer.protection.counters import INTAKE_DEFERRED_BASIC, INTAKE_REJECTED_CLOSED, INTAKE_REJECTED_OVERLOAD
from importer.protection.health import Level

log = get_logger(__name__)
router = APIRouter(prefix="/v1/imports", tags=["imports"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ImportAccepted, responses=_ERRORS)
async def create_import(body: ImportCreate, company: CompanyDep, ctx: ContextDep, request: Request) -> ImportAccepted:
    """Accept an import. The job row is written first: once this answers 202, the job exists
    and will run, even if Redis loses it (the reconciler re-enqueues it from the row).

    Backpressure comes before anything is written: at overload, or while intake is closed, the
    answer is 503 with Retry-After and no job row; at critical a BASIC job is deferred."""
    admission = await _admission(ctx, company)
    if not admission.admit:
        if ctx.counters is not None:
            name = INTAKE_REJECTED_CLOSED if admission.reason == "intake_closed" else INTAKE_REJECTED_OVERLOAD
            await ctx.counters.bump(name)
        log.warning("import_rejected", reason=admission.reason, tier=company.tier.value, vip=company.vip)
        raise ApiError(503, admission.message, headers={"Retry-After": str(admission.retry_after or 60)})
    job_id = uuid4()
    correlation_id = request.scope.get("state", {}).get("correlation_id")
    async with ctx.db.acquire() as conn:
        job = await jobs.create(
            conn,
            job_id=job_id,
            company_id=company.id,
            provider=body.provider.value,
            store_id=body.store_id,
            include_images=body.include_images,
            correlation_id=correlation_id,
        )
    # From here on the job exists: whatever goes wrong with the queue, the answer is 202 and the
    # reconciler enqueues the row later. A 5xx now would tell the client "retry", and a retry
    # would create a second job. Any exception, not only Redis's: a client library's surprise
    # during a failover must not be turned into that 5xx.
    try:
        await queueing.enqueue(ctx.redis, job.id, defer_by=admission.defer_by, priority=admission.priority)
        if admission.defer_by and ctx.counters is not None:
            await ctx.counters.bump(INTAKE_DEFERRED_BASIC)
    except (TimeoutError, RedisError, OSError) as exc:
        log.warning("enqueue_deferred_to_reconciler", job_id=str(job.id), error=repr(exc))
    except Exception as exc:
        log.exception("enqueue_deferred_to_reconciler", job_id=str(job.id), error=repr(exc), unexpected=True)
    log.info(
        "job_created",
        job_id=str(job.id),
        provider=job.provider.value,
        store_id=job.store_id,
        admission=admission.reason,
        deferred_by=admission.defer_by,
        priority=admission.priority,
    )
    return ImportAccepted(id=job.id, status=job.status)


async def _admission(ctx: ApiContext, company: Company) -> Admission:
    """Decide from the live intake flag and the (cached) health level; unknown health admits."""
    level: Level | None = None
    intake_closed = False
    if ctx.health is not None:
        try:
            _, intake = await ctx.health.live_flags()
            intake_closed = intake is not None
            level = (await ctx.health.get()).level
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("admission_health_unavailable", error=repr(exc), detail="admitting; the row is the truth")
    s = ctx.settings
    return decide_admission(
        level,
        tier=company.tier,
        vip=company.vip,
        intake_closed=intake_closed,
        basic_defer=s.basic_defer_seconds,
        overload_retry_after=s.overload_retry_after,
    )


async def _load(ctx: ApiContext, job_id: UUID, company_id: UUID) -> Job:
    async with ctx.db.acquire() as conn:
        job = await jobs.get(conn, job_id, company_id=company_id)
    if job is None:
        raise ApiError(404, f"import {job_id} not found")
    return job


@router.get("/{job_id}", response_model=ImportView, responses=_ERRORS)
async def get_import(job_id: UUID, company: CompanyDep, ctx: ContextDep) -> ImportView:
    return ImportView.of(await _load(ctx, job_id, company.id))


@router.get(
    "/{job_id}/events",
    responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def import_events(job_id: UUID, company: CompanyDep, ctx: ContextDep) -> EventSourceResponse:
    """Stream the job's phase and progress events; the last event carries its terminal status."""
    job = await _load(ctx, job_id, company.id)
    return EventSourceResponse(_stream(ctx, job), ping=15)


def _sse(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    return {"event": kind, "data": json.dumps(payload, default=str)}


async def _stream(ctx: ApiContext, job: Job) -> AsyncIterator[dict[str, str]]:
    """Pub/sub for freshness, Postgres for truth: status events are read back from the row."""
    settings = ctx.settings
    with ctx.hub.subscribe(str(job.id)) as events:
        current = await _reload(ctx, job) or job  # after subscribing, so nothing falls in between
        yield _sse("snapshot", ImportView.of(current).model_dump(mode="json"))
        last_status = current.status
        if last_status.terminal:
            yield _sse("status", _status_payload(current))
            return
        deadline = time.monotonic() + settings.sse_max_duration
        while time.monotonic() < deadline:
            try:
                event: dict[str, Any] | None = await asyncio.wait_for(events.get(), timeout=settings.sse_poll_interval)
            except TimeoutError:
                event = None
            if event is not None and event.get("type") != "status":
                yield _sse(str(event.get("type", "progress")), event)
                continue
            row = await _reload(ctx, job)
            if row is None:
                continue
            if row.status != last_status or row.status.terminal:
                last_status = row.status
                yield _sse("status", _status_payload(row))
            if row.status.terminal:
                return
        yield _sse("timeout", {"job_id": str(job.id), "detail": "stream time limit reached; reconnect"})


async def _reload(ctx: ApiContext, job: Job) -> Job | None:
    try:
        async with ctx.db.acquire() as conn:
            return await jobs.get(conn, job.id, company_id=job.company_id)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        log.warning("sse_reload_failed", job_id=str(job.id), error=repr(exc))
        return None


def _status_payload(job: Job) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "status": job.status.value,
        "terminal": job.status.terminal,
        "error": job.error,
        "counts": job.counts.as_dict(),
        "attempts": job.attempts,
    }


__all__ = ["JobStatus", "router"]
