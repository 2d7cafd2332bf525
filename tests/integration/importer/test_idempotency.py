"""Running a job twice, or two workers racing on one job, must create nothing twice."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.store_state import assert_matches_expected, read_state
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def _requeue_finished_job(stack, job_id: str) -> None:
    """What an operator's retry does to a finished job: back to PENDING, back on the queue."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE product_import_jobs SET status = 'PENDING', phase = 'queued', page_cursor = NULL,"
            " finished_at = NULL WHERE id = $1",
            job_id,
        )
    finally:
        await conn.close()
    r = aioredis.from_url(stack.redis_url)
    try:
        await r.delete(f"arq:job:{job_id}", f"arq:result:{job_id}")
        from arq.connections import ArqRedis

        arq = ArqRedis(connection_pool=r.connection_pool)
        assert await arq.enqueue_job("import_catalog", job_id, _job_id=job_id) is not None
    finally:
        await r.aclose()


async def test_same_job_run_twice_and_a_second_import_duplicate_nothing(stack, api: ImporterApi, provider):
    stack.start_worker()
    tenant = await api.create_company("twice")
    store = await provider.create_store("roastify", products=300, images_per_product=2, seed=21)
    job_id = await api.submit(tenant, "roastify", store)
    assert (await api.wait_terminal(tenant, job_id, timeout=120))["status"] == "COMPLETED"

    await _requeue_finished_job(stack, job_id)  # the very same job id, from the first page again
    rerun = await api.wait_terminal(tenant, job_id, timeout=120)
    assert rerun["status"] == "COMPLETED" and rerun["attempts"] == 2

    second = await api.submit(tenant, "roastify", store)  # a new import of the same catalog
    assert (await api.wait_terminal(tenant, second, timeout=120))["status"] == "COMPLETED"

    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "roastify", store)
    assert_matches_expected(state, await provider.expected(store))
    assert len(state.external_ids) == 300 and len(state.image_rows) == 600
    assert len(state.originals) == 600 and len(state.thumbnails) == 600


async def test_two_workers_racing_on_one_job(stack, api: ImporterApi, provider: FakeProvider):
    """Worker A runs the job; its lease key is deleted (as if it expired) so worker B takes the
    same job while A is still alive. The fencing token lets only one run record progress."""
    env = {"IMPORTER_LEASE_SECONDS": "6", "IMPORTER_WORKER_POLL_DELAY": "0.1"}
    a = stack.start_worker(env=env, worker_id="racer-a")
    tenant = await api.create_company("race")
    store = await provider.create_store("roastify", products=800, images_per_product=1, seed=31, page_latency_ms=400)
    job_id = await api.submit(tenant, "roastify", store)
    db = await asyncpg.connect(stack.database_url)
    r = aioredis.from_url(stack.redis_url)
    try:
        await wait_for(
            lambda: db.fetchval("SELECT pages_fetched >= 2 FROM product_import_jobs WHERE id = $1", job_id),
            timeout=60,
            what="worker A to fetch two pages",
        )
        b = stack.start_worker(env=env, worker_id="racer-b")
        await wait_for(lambda: r.exists("importer:workers:racer-b"), timeout=60, what="worker B to register")

        async def b_took_it() -> bool:
            owner = await db.fetchval("SELECT worker_id FROM product_import_jobs WHERE id = $1", job_id)
            if owner == "racer-b":
                return True
            await r.delete(f"arq:in-progress:{job_id}")  # A's lease "expires" (A keeps running)
            return False

        # One deletion per second: B polls every 0.1 s, so it wins the freed job well before A's
        # lease keeper (every 2 s) takes the key back.
        await wait_for(b_took_it, timeout=60, interval=1.0, what="worker B to claim the job")
        job = await api.wait_terminal(tenant, job_id, timeout=180)
    finally:
        await db.close()
        await r.aclose()
    assert job["status"] == "COMPLETED", job
    a.stop()
    b.stop()
    lost = [line for line in a.log_path.read_text().splitlines() if "lease_lost" in line]
    assert lost, "worker A should have noticed it lost the job"
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "roastify", store)
    assert_matches_expected(state, await provider.expected(store))


async def test_concurrent_identical_enqueues_make_one_queue_entry(stack, api: ImporterApi):
    tenant = await api.create_company("dupe-enqueue")
    job_id = await api.submit(tenant, "roastify", "st_nothing")
    r = aioredis.from_url(stack.redis_url)
    try:
        from arq.connections import ArqRedis

        arq = ArqRedis(connection_pool=r.connection_pool)
        results = await asyncio.gather(*(arq.enqueue_job("import_catalog", job_id, _job_id=job_id) for _ in range(10)))
        assert all(x is None for x in results)  # the API's enqueue already holds the id
        assert await r.zscore("arq:queue", job_id) is not None
    finally:
        await r.aclose()
