"""Operator queries on ``product_import_jobs`` (``importer ops …``), kept apart from the job
runner's own reads and writes in ``jobs.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID


async def list_failed(conn: Any, *, since: datetime | None, company_id: UUID | None, limit: int) -> list[Any]:
    """FAILED jobs (oldest failure first) with their company's VIP flag, for ``retry-failed``."""
    rows: list[Any] = await conn.fetch(
        """
        SELECT j.id, j.company_id, j.error, j.finished_at, j.phase, j.page_cursor, c.vip
          FROM product_import_jobs j JOIN companies c ON c.id = j.company_id
         WHERE j.status = 'FAILED'
           AND ($1::timestamptz IS NULL OR j.finished_at >= $1)
           AND ($2::uuid IS NULL OR j.company_id = $2)
         ORDER BY j.finished_at, j.id
         LIMIT $3
        """,
        since,
        company_id,
        limit,
    )
    return rows


async def count_failed(conn: Any, *, since: datetime | None, company_id: UUID | None) -> int:
    value = await conn.fetchval(
        """
        SELECT count(*) FROM product_import_jobs
         WHERE status = 'FAILED'
           AND ($1::timestamptz IS NULL OR finished_at >= $1)
           AND ($2::uuid IS NULL OR company_id = $2)
        """,
        since,
        company_id,
    )
    return int(value or 0)


async def reset_failed(conn: Any, job_id: UUID) -> bool:
    """FAILED → PENDING, error cleared, checkpoint (phase, page cursor, counts) kept.

    No run is going on, so the run's clock goes too (``run_started_at``, ``heartbeat_at``: the
    next claim sets them; the stall sweep never judges a revived job by its old run) and its
    try count (``queue_try``: the orphan sweep gives up on a job by it). ``started_at`` stays:
    it is when the job first started, for reporting.
    """
    status = await conn.execute(
        """
        UPDATE product_import_jobs
           SET status = 'PENDING', error = NULL, finished_at = NULL, run_token = NULL, worker_id = NULL,
               run_started_at = NULL, heartbeat_at = NULL, queue_try = 0, outcome = NULL,
               updated_at = now()
         WHERE id = $1 AND status = 'FAILED'
           -- One active job per (company, provider, store): a store that already has one (the
           -- client resubmitted, or two of its jobs failed in one outage) keeps that one.
           AND NOT EXISTS (
               SELECT 1 FROM product_import_jobs a, product_import_jobs f
                WHERE f.id = $1 AND a.company_id = f.company_id AND a.provider = f.provider
                  AND a.store_id = f.store_id AND a.status IN ('PENDING', 'IN_PROGRESS'))
        """,
        job_id,
    )
    return bool(status.endswith(" 1"))
