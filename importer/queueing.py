"""Putting import jobs on the arq queue: the only place that knows how.

The arq job id is the job row's id, so enqueueing twice is harmless; re-enqueueing an id arq
has seen before needs its leftover job/result keys removed first (docs/architecture.md §7).

Every enqueue that knows the job's company also puts the id in that company's queue for the
fair scheduler (``protection.tenant_queue``); an id without one is still started, by arq's own
poll (the fallback), only without fairness.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from importer.protection.priority import mark_priority
from importer.protection.tenant_queue import mark_tenant
from importer.worker.keys import JOB_FUNCTION, job_key, result_key


async def enqueue(
    redis: Any,
    job_id: UUID,
    *,
    company_id: UUID | None = None,
    defer_by: float | None = None,
    priority: bool = False,
) -> bool:
    """True when this call queued the job, False when arq already had it.

    ``priority`` (VIP) also puts the id in the priority set that workers poll first;
    ``company_id`` puts it in the company's queue for fair starts between tenants.
    """
    job = await redis.enqueue_job(JOB_FUNCTION, str(job_id), _job_id=str(job_id), _defer_by=defer_by)
    due_ms = int((time.time() + (defer_by or 0.0)) * 1000)
    if company_id is not None:
        await mark_tenant(redis, str(job_id), str(company_id), due_ms=due_ms)
    if priority:
        await mark_priority(redis, str(job_id), due_ms=due_ms)
    return job is not None


async def requeue(
    redis: Any,
    job_id: UUID,
    *,
    company_id: UUID | None = None,
    defer_by: float | None = None,
    priority: bool = False,
) -> bool:
    """Queue a job again even if arq ran it before (orphans, ops retries)."""
    await redis.delete(job_key(str(job_id)), result_key(str(job_id)))
    return await enqueue(redis, job_id, company_id=company_id, defer_by=defer_by, priority=priority)
