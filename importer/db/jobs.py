"""Reads and writes of ``product_import_jobs``: the state of record of every import.

Writes made by a running job carry its fencing token (``run_token``): if another run has
claimed the job since (our lease expired while we were still alive), the write matches no row
and the caller learns it lost the job instead of overwriting the newer run's progress.
"""

from __future__ import annotations

import json
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
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Job | None:
    """Insert a PENDING job; None when a unique index refused it (no exception, no aborted
    transaction): the company already used ``idempotency_key``, or already has an active job
    for this provider and store. The caller reads the winner with ``find_existing``."""
    row = await conn.fetchrow(
        """
        INSERT INTO product_import_jobs
               (id, company_id, provider, store_id, include_images, correlation_id, idempotency_key, request_hash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT DO NOTHING
        RETURNING *
        """,
        job_id,
        company_id,
        provider,
        store_id,
        include_images,
        correlation_id,
        idempotency_key,
        request_hash,
    )
    return Job.from_record(row) if row else None


async def find_existing(
    conn: Any, *, company_id: UUID, provider: str, store_id: str, idempotency_key: str | None
) -> tuple[Job | None, Job | None]:
    """(the job created with this idempotency key, the active job for this store), either None.

    One round trip; both lookups are served by the unique indexes of migration 0002.
    """
    rows = await conn.fetch(
        """
        SELECT *, (idempotency_key IS NOT DISTINCT FROM $4 AND $4 IS NOT NULL) AS by_key
          FROM product_import_jobs
         WHERE company_id = $1
           AND ((idempotency_key = $4)
                OR (provider = $2 AND store_id = $3 AND status = ANY($5::text[])))
        """,
        company_id,
        provider,
        store_id,
        idempotency_key,
        list(_ACTIVE),
    )
    by_key = next((Job.from_record(r) for r in rows if r["by_key"]), None)
    same_store = (r for r in rows if r["provider"] == provider and r["store_id"] == store_id)
    active = next((Job.from_record(r) for r in same_store if r["status"] in _ACTIVE), None)
    return by_key, active


async def get(conn: Any, job_id: UUID, *, company_id: UUID | None = None) -> Job | None:
    if company_id is None:
        row = await conn.fetchrow("SELECT * FROM product_import_jobs WHERE id = $1", job_id)
    else:
        row = await conn.fetchrow(
            "SELECT * FROM product_import_jobs WHERE id = $1 AND company_id = $2", job_id, company_id
        )
    return Job.from_record(row) if row else None


async def claim(conn: Any, job_id: UUID, *, run_token: UUID, worker_id: str, queue_try: int = 0) -> Job | None:
    """Make this run the job's owner; None when the job is already terminal (nothing to do).

    Each claim starts a new run: ``run_started_at`` and ``heartbeat_at`` are now, so time the
    job spent waiting between runs (retries, deferrals, hand-backs) never counts against the
    stall limit. ``started_at`` keeps the first start, for reporting only.
    """
    row = await conn.fetchrow(
        """
        UPDATE product_import_jobs
           SET status = 'IN_PROGRESS',
               run_token = $2,
               worker_id = $3,
               attempts = attempts + 1,
               queue_try = $5,
               started_at = coalesce(started_at, now()),
               run_started_at = now(),
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
    """The running run's sign of life, judged by the stall sweep; False once the run lost the job."""
    status = await conn.execute(
        "UPDATE product_import_jobs SET heartbeat_at = now()"
        " WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'",
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
    """COMPLETED, with the outcome the row's own record of the job implies.

    The outcome is derived in SQL from what every run of the job wrote in its committed
    transactions (rejection counts, verification issues), not from one run's memory: a job
    resumed after a crash still knows what an earlier run rejected. UNVERIFIED wins over
    WITH_REJECTIONS.
    """
    row = await conn.fetchrow(
        """
        UPDATE product_import_jobs
           SET status = 'COMPLETED', phase = 'done', error = NULL, finished_at = now(), updated_at = now(),
               run_token = NULL,
               outcome = CASE
                   WHEN jsonb_array_length(verification_issues) > 0 THEN 'UNVERIFIED'
                   WHEN products_rejected > 0 OR rejection_counts <> '{}'::jsonb THEN 'WITH_REJECTIONS'
                   ELSE 'CLEAN' END
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        RETURNING *
        """,
        job_id,
        run_token,
    )
    return Job.from_record(row) if row else None


async def add_rejections(
    conn: Any, job_id: UUID, run_token: UUID, *, products_rejected: int, counts: dict[str, int]
) -> bool:
    """Add rejected records to the job's counts (code -> count merged into the jsonb map).

    Must run in the transaction that writes the records' page or image batch: a page whose
    transaction committed is never replayed (its cursor moved), one that did not commit adds
    nothing, so a resumed job never counts a record twice.
    """
    if not products_rejected and not counts:
        return True
    status = await conn.execute(
        """
        UPDATE product_import_jobs j
           SET products_rejected = j.products_rejected + $3,
               rejection_counts = coalesce(
                   (SELECT jsonb_object_agg(k, n)
                      FROM (SELECT key AS k, sum(value::bigint) AS n
                              FROM (SELECT * FROM jsonb_each_text(j.rejection_counts)
                                    UNION ALL SELECT * FROM jsonb_each_text($4::text::jsonb)) AS both_maps
                             GROUP BY key) AS merged),
                   '{}'::jsonb),
               heartbeat_at = now(), updated_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        products_rejected,
        json.dumps(counts),
    )
    return bool(status.endswith(" 1"))


async def add_verification_issues(conn: Any, job_id: UUID, run_token: UUID, issues: list[dict[str, Any]]) -> bool:
    """Append issues whose code the job has not reported yet (one entry per code: bounded)."""
    if not issues:
        return True
    status = await conn.execute(
        """
        UPDATE product_import_jobs j
           SET verification_issues = j.verification_issues || coalesce(
                   (SELECT jsonb_agg(i) FROM jsonb_array_elements($3::text::jsonb) AS i
                     WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(j.verification_issues) AS o
                                        WHERE o->>'code' = i->>'code')),
                   '[]'::jsonb),
               updated_at = now()
         WHERE id = $1 AND run_token = $2 AND status = 'IN_PROGRESS'
        """,
        job_id,
        run_token,
        json.dumps(issues),
    )
    return bool(status.endswith(" 1"))


async def end_products(conn: Any, job_id: UUID, run_token: UUID, issues: list[dict[str, Any]]) -> bool:
    """Stop fetching pages (a cursor cycle, a runaway catalog): record why, go on to images."""
    if not await add_verification_issues(conn, job_id, run_token, issues):
        return False
    return await set_phase(conn, job_id, run_token, Phase.IMAGES)


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
