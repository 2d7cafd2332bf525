"""Creating and following import jobs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, NoReturn
from uuid import UUID, uuid4

import anyio
from fastapi import APIRouter, Header, Request, status
from redis.exceptions import RedisError
from sse_starlette.sse import EventSourceResponse

from importer import queueing
from importer.api.auth import CompanyDep, ContextDep
from importer.api.context import ApiContext
from importer.api.job_errors import public_job_error
from importer.api.problems import AUTHENTICATED, WITH_BODY, responses
from importer.api.schemas import ImportAccepted, ImportCreate, ImportView, issue_views
from importer.api.strict_json import StrictJsonRoute
from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.errors import ApiError
from importer.logs import get_logger
from importer.models import Company, Job, JobStatus
from importer.protection.admission import Admission, CompanyLoad, decide_admission
from importer.protection.counters import (
    INTAKE_ADMITTED_BESIDE_NOISY,
    INTAKE_DEFERRED_BASIC,
    INTAKE_REJECTED_CLOSED,
    INTAKE_REJECTED_COMPANY_LIMIT,
    INTAKE_REJECTED_OVERLOAD,
    INTAKE_REJECTED_TENANT_SHED,
)
from importer.protection.fairness import company_limit, count_active
from importer.protection.health import Level

log = get_logger(__name__)
router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=StrictJsonRoute)

# A lost race against a job that finished between our insert and our read is retried this many
# times; each retry is one insert and one read, so the bound is a few milliseconds of work.
_CREATE_ATTEMPTS = 3

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7E]+$",
        description="Makes the request safe to retry: the same key with the same body answers the job "
        "the first request created; with a different body, 409. 1-255 printable ASCII characters, "
        "scoped to the company, kept as long as the job.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportAccepted,
    responses=responses(*AUTHENTICATED, *WITH_BODY, 409),
)
async def create_import(
    body: ImportCreate,
    company: CompanyDep,
    ctx: ContextDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ImportAccepted:
    """Accept an import. The job row is written first: once this answers 202, the job exists
    and will run, even if Redis loses it (the reconciler re-enqueues it from the row).

    Idempotent: a retry with the same ``Idempotency-Key`` and body answers the job the first
    request created (202, ``existing: true``); a submit while the company already has an active
    (PENDING or IN_PROGRESS) job for the same provider and store answers that job the same way.
    Both come before admission: a retry is never refused for load its first try already added.

    Backpressure comes before anything is written: at overload, or while intake is closed, the
    answer is 503 with Retry-After and no job row; a company at its tier's limit of active +
    waiting jobs, or the one tenant causing a critical/overloaded queue, gets 429 with
    Retry-After and no job row; at critical a BASIC job is deferred."""
    request_hash = _request_hash(body)
    existing = await _existing(ctx, company, body, idempotency_key, request_hash)
    if existing is not None:
        return existing
    admission = await _admission(ctx, company)
    if not admission.admit:
        await _refuse(ctx, company, admission)
    job_id = uuid4()
    correlation_id = request.scope.get("state", {}).get("correlation_id")
    job: Job | None = None
    for _ in range(_CREATE_ATTEMPTS):
        async with ctx.db.acquire() as conn:
            job = await jobs.create(
                conn,
                job_id=job_id,
                company_id=company.id,
                provider=body.provider.value,
                store_id=body.store_id,
                include_images=body.include_images,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
        if job is not None:
            break
        # A unique index refused the row: a concurrent request won the race. Answer its job.
        existing = await _existing(ctx, company, body, idempotency_key, request_hash)
        if existing is not None:
            return existing
    if job is None:
        raise ApiError(
            503,
            "concurrent submissions for this store kept racing; retry",
            code="submission_conflict",
            headers={"Retry-After": "1"},
        )
    # From here on the job exists: whatever goes wrong with the queue, the answer is 202 and the
    # reconciler enqueues the row later. A 5xx now would tell the client "retry", and a retry
    # would create a second job. Any exception, not only Redis's: a client library's surprise
    # during a failover must not be turned into that 5xx.
    try:
        await queueing.enqueue(
            ctx.redis, job.id, company_id=company.id, defer_by=admission.defer_by, priority=admission.priority
        )
        if admission.defer_by and ctx.counters is not None:
            await ctx.counters.bump(INTAKE_DEFERRED_BASIC)
        if admission.reason == "admitted_beside_noisy_tenant" and ctx.counters is not None:
            await ctx.counters.bump(INTAKE_ADMITTED_BESIDE_NOISY, detail=company.tier.value)
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
        tier=company.tier.value,
        deferred_by=admission.defer_by,
        priority=admission.priority,
    )
    return ImportAccepted(id=job.id, status=job.status)


def _request_hash(body: ImportCreate) -> str:
    """SHA-256 of the canonical body: defaults filled in, keys sorted, no whitespace, so
    ``{"store_id": "s", "provider": "roastify"}`` and the same with ``include_images: true`` match."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _existing(
    ctx: ApiContext, company: Company, body: ImportCreate, idempotency_key: str | None, request_hash: str
) -> ImportAccepted | None:
    """The answer for a request that must not create a job, or None when it may create one."""
    async with ctx.db.acquire() as conn:
        by_key, active = await jobs.find_existing(
            conn,
            company_id=company.id,
            provider=body.provider.value,
            store_id=body.store_id,
            idempotency_key=idempotency_key,
        )
    if by_key is not None:
        if by_key.request_hash != request_hash:
            log.info("idempotency_key_reused", job_id=str(by_key.id))
            raise ApiError(
                409,
                "this Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            )
        log.info("job_replayed", job_id=str(by_key.id), reason="idempotency_key")
        return ImportAccepted(id=by_key.id, status=by_key.status, existing=True)
    if active is not None:
        log.info("job_replayed", job_id=str(active.id), reason="active_job_for_store")
        return ImportAccepted(id=active.id, status=active.status, existing=True)
    return None


async def _admission(ctx: ApiContext, company: Company) -> Admission:
    """Decide from the live intake flag, the (cached) health level with its noisy tenants, and
    the company's own active + waiting jobs (one capped, indexed count); unknown health admits.

    A count Postgres cannot answer raises, and the API answers 503: the job row could not be
    written either."""
    level: Level | None = None
    intake_closed = False
    noisy: list[str] = []
    if ctx.health is not None:
        try:
            _, intake = await ctx.health.live_flags()
            intake_closed = intake is not None
            report = await ctx.health.get()
            level, noisy = report.level, report.noisy_tenants
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("admission_health_unavailable", error=repr(exc), detail="admitting; the row is the truth")
    s = ctx.settings
    limit = company_limit(s, company.tier)
    active: int | None = None
    if not intake_closed:
        async with ctx.db.acquire() as conn:
            active = await count_active(conn, company.id, cap=limit)
    me = str(company.id)
    return decide_admission(
        level,
        tier=company.tier,
        vip=company.vip,
        intake_closed=intake_closed,
        basic_defer=s.basic_defer_seconds,
        overload_retry_after=s.overload_retry_after,
        load=CompanyLoad(
            active=active,
            limit=limit,
            limit_retry_after=s.company_limit_retry_after,
            noisy=me in noisy,
            noisy_elsewhere=any(c != me for c in noisy),
        ),
    )


_REFUSAL_COUNTERS = {
    "intake_closed": INTAKE_REJECTED_CLOSED,
    "overload": INTAKE_REJECTED_OVERLOAD,
    "company_limit": INTAKE_REJECTED_COMPANY_LIMIT,
    "tenant_shed": INTAKE_REJECTED_TENANT_SHED,
}


async def _refuse(ctx: ApiContext, company: Company, admission: Admission) -> NoReturn:
    """Count (also per tier), log with the company and its tier, and answer the refusal."""
    if ctx.counters is not None:
        name = _REFUSAL_COUNTERS.get(admission.reason, INTAKE_REJECTED_OVERLOAD)
        await ctx.counters.bump(name, detail=company.tier.value)
    log.warning(
        "import_rejected",
        reason=admission.reason,
        status=admission.status,
        company_id=str(company.id),
        tier=company.tier.value,
        vip=company.vip,
        retry_after=admission.retry_after,
    )
    raise ApiError(
        admission.status,
        admission.message,
        headers={"Retry-After": str(admission.retry_after or 60)},
        code=admission.code,
    )


async def _load(ctx: ApiContext, job_id: UUID, company_id: UUID) -> Job:
    async with ctx.db.acquire() as conn:
        job = await jobs.get(conn, job_id, company_id=company_id)
    if job is None:
        raise ApiError(404, f"import {job_id} not found")
    return job


@router.get("/{job_id}", response_model=ImportView, responses=responses(*AUTHENTICATED, 404, 422))
async def get_import(job_id: UUID, company: CompanyDep, ctx: ContextDep) -> ImportView:
    return ImportView.of(await _load(ctx, job_id, company.id))


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        **responses(*AUTHENTICATED, 404, 422),
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "Server-Sent Events"},
    },
)
async def import_events(job_id: UUID, company: CompanyDep, ctx: ContextDep) -> EventSourceResponse:
    """Stream the job's phase and progress events; the last event carries its terminal status.

    A company may hold ``sse_max_streams_per_company`` open streams across all API processes;
    one more is answered 429 with Retry-After."""
    job = await _load(ctx, job_id, company.id)
    slot: str | None = None
    if ctx.streams is not None:
        slot = await ctx.streams.acquire(company.id)
        if slot is None:
            log.warning("sse_stream_refused", limit=ctx.streams.limit)
            raise ApiError(
                429,
                f"too many open event streams for this company (at most {ctx.streams.limit}); "
                "close one or poll GET /v1/imports/{id}",
                code="too_many_streams",
                headers={"Retry-After": str(math.ceil(ctx.settings.sse_poll_interval))},
            )
    return EventSourceResponse(_stream(ctx, job, slot), ping=15)


def _sse(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    return {"event": kind, "data": json.dumps(payload, default=str)}


async def _stream(ctx: ApiContext, job: Job, slot: str | None = None) -> AsyncIterator[dict[str, str]]:
    """Pub/sub for freshness, Postgres for truth: status events are read back from the row.

    The stream's slot (the per-company cap) is refreshed while it runs and given back when it
    ends, however it ends; a slot that cannot be given back expires by itself."""
    try:
        async for message in _events(ctx, job, slot):
            yield message
    finally:
        if slot is not None and ctx.streams is not None:
            # Shielded and bounded: the client's disconnect cancels this generator, and a
            # cancelled scope would cancel the release too.
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                await ctx.streams.release(job.company_id, slot)


async def _events(ctx: ApiContext, job: Job, slot: str | None) -> AsyncIterator[dict[str, str]]:
    settings = ctx.settings
    refreshed = time.monotonic()
    with ctx.hub.subscribe(str(job.id)) as events:
        current = await _reload(ctx, job) or job  # after subscribing, so nothing falls in between
        yield _sse("snapshot", ImportView.of(current).model_dump(mode="json"))
        last_status = current.status
        if last_status.terminal:
            yield _sse("status", _status_payload(current))
            return
        deadline = time.monotonic() + settings.sse_max_duration
        while time.monotonic() < deadline:
            if (
                slot is not None
                and ctx.streams is not None
                and time.monotonic() - refreshed >= ctx.streams.refresh_seconds
            ):
                refreshed = time.monotonic()
                await ctx.streams.refresh(job.company_id, slot)
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
        # Tenant-facing form only (code + generic message); the row's text is for operators.
        "error": public.message if (public := public_job_error(job.error)) else None,
        "error_code": public.code if public else None,
        "counts": {**job.counts.as_dict(), "products_rejected": job.products_rejected},
        "attempts": job.attempts,
        "outcome": job.outcome.value if job.outcome else None,
        "products_rejected": job.products_rejected,
        "rejections": dict(job.rejection_counts),
        "verification_issues": issue_views(job),
    }


__all__ = ["JobStatus", "router"]
