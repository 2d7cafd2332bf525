"""The reconciler heals the queue from the job rows and fails jobs stalled past the limit."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.importer_api import FakeProvider, ImporterApi

pytestmark = pytest.mark.integration


async def test_pending_row_missing_from_redis_is_requeued_and_completes(
    stack, api: ImporterApi, provider: FakeProvider
):
    tenant = await api.create_company("orphanage")
    store = await provider.create_store("roastify", products=30, images_per_product=1)
    job_id = await api.submit(tenant, "roastify", store)
    r = aioredis.from_url(stack.redis_url)
    db = await asyncpg.connect(stack.database_url)
    try:
        # What a failover that lost the enqueue looks like: the row exists, Redis never heard of it.
        await r.zrem("arq:queue", job_id)
        await r.delete(f"arq:job:{job_id}")
        await db.execute(
            "UPDATE product_import_jobs SET created_at = now() - interval '2 minutes',"
            " updated_at = now() - interval '2 minutes' WHERE id = $1",
            job_id,
        )
        result = stack.run_importer(["reconciler", "--once"])
        assert result.returncode == 0, result.stderr
        assert "orphan_requeued" in result.stderr and job_id in result.stderr
        assert await r.zscore("arq:queue", job_id) is not None
    finally:
        await r.aclose()
        await db.close()
    stack.start_worker()
    assert (await api.wait_terminal(tenant, job_id, timeout=60))["status"] == "COMPLETED"


async def test_fresh_pending_rows_and_queued_rows_are_left_alone(stack, api: ImporterApi):
    tenant = await api.create_company("patience")
    job_id = await api.submit(tenant, "roastify", "st_whatever")  # queued, young
    result = stack.run_importer(["reconciler", "--once"])
    assert result.returncode == 0
    assert job_id not in result.stderr


async def test_job_stalled_in_progress_past_the_limit_is_failed_with_an_alert(stack, api: ImporterApi):
    tenant = await api.create_company("stalled")
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(stack.database_url)
    try:
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                                heartbeat_at, created_at, worker_id, attempts)
               VALUES ($1, $2, 'roastify', 's', 'IN_PROGRESS', 'products', now() - interval '3 hours',
                       now(), now() - interval '3 hours', 'ghost', 1)""",
            job_id,
            tenant.id,
        )
        result = stack.run_importer(["reconciler", "--once"])
        assert result.returncode == 0, result.stderr
        row = await db.fetchrow("SELECT status, error, finished_at FROM product_import_jobs WHERE id = $1", job_id)
    finally:
        await db.close()
    assert row["status"] == "FAILED" and row["error"].startswith("timeout:") and row["finished_at"] is not None
    alert = [line for line in result.stderr.splitlines() if "job_stalled" in line and job_id in line]
    assert alert and '"alert": true' in alert[0]


async def test_abandoned_in_progress_job_is_requeued(stack, api: ImporterApi, provider: FakeProvider):
    """A worker died and a failover lost its queue entry: quiet IN_PROGRESS row, unknown to Redis."""
    tenant = await api.create_company("abandoned")
    store = await provider.create_store("roastify", products=20, images_per_product=0)
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(stack.database_url)
    try:
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                                heartbeat_at, created_at, worker_id, attempts, run_token)
               VALUES ($1, $2, 'roastify', $3, 'IN_PROGRESS', 'products', now() - interval '5 minutes',
                       now() - interval '4 minutes', now() - interval '5 minutes', 'dead', 1, gen_random_uuid())""",
            job_id,
            tenant.id,
            store,
        )
        result = stack.run_importer(["reconciler", "--once"])
        assert "orphan_requeued" in result.stderr and job_id in result.stderr
        assert await db.fetchval("SELECT status FROM product_import_jobs WHERE id = $1", job_id) == "PENDING"
    finally:
        await db.close()
    stack.start_worker()
    assert (await api.wait_terminal(tenant, job_id, timeout=60))["status"] == "COMPLETED"
