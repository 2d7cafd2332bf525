"""Reads and writes of ``product_import_jobs``: the state of record of every import.

Writes made by a running job carry its fencing token (``run_token``): if another run has
claimed the job since (our lease expired while we were still alive), the write matches no row
and the caller learns it lost the job instead of overwriting the newer run's progress.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from importer.models import Job, JobCounts, JobStatus, Phase

_ACTIVE = (JobStatus.PENDING.value, JobStatus.IN_PROGRESS.value)


async def create(
    conn: Any,
    *,
    job_id: UUID,
    company_id: UUID,
    provider: str,
    store_id: str,
    include_images: bool,
    correlation_id: str | None,
) -> Job:
    row = await conn.fetchrow(
        """
        INSERT INTO product_import_jobs (id, company_id, provider, store_id, include_images, correlation_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING *
        """,
        job_id,
        company_id,
        provider,
        store_id,
        include_images,
        correlation_id,
    )
    return Job.from_record(row)


async def get(conn: Any, job_id: UUID, *, company_id: UUID | None = None) -> Job | None:
    if company_id is None:
        row = await conn.fetchrow("SELECT * FROM product_import_jobs WHERE id = $1", job_id)
    else:
        row = await conn.fetchrow(
            "SELECT * FROM product_import_jobs WHERE id = $1 AND company_id = $2", job_id, company_id
        )
    return Job.from_record(row) if row else None


async def claim(conn: Any, job_id: UUID, *, run_token: UUID, worker_id: str, queue_try: int = 0) -> Job | None:
    """Make this run the job's owner; None when the job is already terminal (nothing to do)."""
    row = await conn.fetchrow(
        """
        UPDATE product_import_jobs
           SET status = 'IN_PROGRESS',
               run_token = $2,
               worker_id = $3,
               attempts = attempts + 1,
               queue_try = $5,
               started_at = coalesce(started_at, now()),
               heartbeat_at = now(),
               phase = CASE WHEN phase = 'queued' THEN 'products' ELSE phase END,
               updated_at = now()
         WHERE id = $1 AND status = ANY($4::text[])
        RETURNING *
        """,
        job_id,
        run_token,
        worker_id,
        list(_ACTIVE),
        queue_try,
    )
    return Job.from_record(row) if row else None


async def heartbeat(conn: Any, job_id: UUID, run_token: UUID) -> bool:
    status = await conn.execute(
        "UPDATE product_import_jobs SET heartbeat_at = now() WHERE id = $1 AND run_token = $2",
        job_id,
        run_token,
    )
    return bool(status.endswith(" 1"))


async def checkpoint_page(
    conn: Any,
    job_id: UUID,
    run_token: UUID,
    *,
    next_cursor: str | None,
    products_added: int,
    last_page: bool,
) -> bool:
    """Record a committed page; must run in the same transaction as the page's upserts."""
    status = await conn.execute(
        """
        UPDATE product_import_jobs
           SET page_cursor = $3,
               pages_fetched = pages_fetched + 1,
               products_imported = products_imported + $4,
               phase = CASE WHEN $5 THEN 'images' ELSE 'products' END,
               heartbeat_at = now(),
               updated_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        next_cursor,
        products_added,
        last_page,
    )
    return bool(status.endswith(" 1"))


async def set_phase(conn: Any, job_id: UUID, run_token: UUID, phase: Phase) -> bool:
    status = await conn.execute(
        """
        UPDATE product_import_jobs SET phase = $3, updated_at = now(), heartbeat_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        phase.value,
    )
    return bool(status.endswith(" 1"))


async def record_image_counts(conn: Any, job_id: UUID, run_token: UUID, counts: JobCounts) -> bool:
    status = await conn.execute(
        """
        UPDATE product_import_jobs
           SET images_total = $3, images_stored = $4, images_rejected = $5, thumbnails_created = $6,
               heartbeat_at = now(), updated_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        counts.images_total,
        counts.images_stored,
        counts.images_rejected,
        counts.thumbnails_created,
    )
    return bool(status.endswith(" 1"))


async def complete(conn: Any, job_id: UUID, run_token: UUID) -> Job | None:
    row = await conn.fetchrow(
        """
        UPDATE product_import_jobs
           SET status = 'COMPLETED', phase = 'done', error = NULL, finished_at = now(), updated_at = now(),
               run_token = NULL
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        RETURNING *
        """,
        job_id,
        run_token,
    )
    return Job.from_record(row) if row else None


async def fail(conn: Any, job_id: UUID, error: str, *, run_token: UUID | None = None) -> Job | None:
    """Mark FAILED. With a token only the owning run may do it; without, any active job."""
    row = await conn.fetchrow(
        """
        UPDATE product_import_jobs
           SET status = 'FAILED', error = $2, finished_at = now(), updated_at = now(), run_token = NULL
         WHERE id = $1 AND status = ANY($4::text[]) AND ($3::uuid IS NULL OR run_token = $3)
        RETURNING *
        """,
        job_id,
        error[:2000],
        run_token,
        list(_ACTIVE),
    )
    return Job.from_record(row) if row else None


async def release(conn: Any, job_id: UUID, run_token: UUID, *, reason: str | None) -> bool:
    """Hand the job back to the queue (shutdown or transient error): PENDING, no owner."""
    status = await conn.execute(
        """
        UPDATE product_import_jobs
           SET status = 'PENDING', run_token = NULL, worker_id = NULL, error = $3, updated_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        reason[:2000] if reason else None,
    )
    return bool(status.endswith(" 1"))


async def list_orphan_candidates(conn: Any, *, min_age_s: float, limit: int) -> list[Any]:
    """Active jobs quiet for longer than ``min_age_s``: PENDING by age, IN_PROGRESS by heartbeat."""
    rows: list[Any] = await conn.fetch(
        """
        SELECT id, status, company_id, created_at, heartbeat_at, attempts, queue_try FROM product_import_jobs
         WHERE (status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
                AND updated_at < now() - make_interval(secs => $1))
            OR (status = 'IN_PROGRESS' AND coalesce(heartbeat_at, started_at) < now() - make_interval(secs => $1))
         ORDER BY created_at
         LIMIT $2
        """,
        min_age_s,
        limit,
    )
    return rows


async def fail_stalled(conn: Any, *, older_than_s: float, limit: int) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        """
        UPDATE product_import_jobs
           SET status = 'FAILED', finished_at = now(), updated_at = now(), run_token = NULL,
               error = $3
         WHERE id IN (
               SELECT id FROM product_import_jobs
                WHERE status = 'IN_PROGRESS' AND started_at < now() - make_interval(secs => $1)
                ORDER BY started_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
        RETURNING id, company_id, started_at, worker_id, attempts
        """,
        older_than_s,
        limit,
        f"timeout: job stalled in IN_PROGRESS for more than {older_than_s:g} s",
    )
    return rows


async def mark_requeued(conn: Any, job_id: UUID) -> bool:
    """PENDING again with no owner: a zombie run still holding the old token is fenced out."""
    status = await conn.execute(
        """
        UPDATE product_import_jobs
           SET status = 'PENDING', run_token = NULL, worker_id = NULL, updated_at = now(),
               error = coalesce(error, 'requeued by the reconciler')
         WHERE id = $1 AND status = ANY($2::text[])
        """,
        job_id,
        list(_ACTIVE),
    )
    return bool(status.endswith(" 1"))
