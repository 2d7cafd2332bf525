"""The reconciler heals the queue from the job rows and fails jobs stalled past the limit."""

from __future__ import annotations

import json
import time
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

# Leave quiet rows to the stall sweep: the orphan sweep only looks at rows quiet for a day.
LEAVE_ORPHANS = {"IMPORTER_ORPHAN_MIN_AGE": "86400"}
# Short enough that a job first started hours ago is past it, long enough (ten heartbeats of a
# 3 s lease) that a live run's heartbeat never is.
SHORT_STALL_LIMIT = {"IMPORTER_STALL_LIMIT": "10"}
FAST = {"IMPORTER_LEASE_SECONDS": "3", "IMPORTER_WORKER_POLL_DELAY": "0.1"}
FAR_FUTURE_MS = int((time.time() + 86400) * 1000)


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


async def test_job_whose_run_shows_no_sign_of_life_past_the_limit_is_failed_with_an_alert(stack, api: ImporterApi):
    """Stalled = its heartbeat is older than the limit and Redis neither queues nor runs it."""
    tenant = await api.create_company("stalled")
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(stack.database_url)
    try:
        # First started a minute ago, so only the heartbeat can condemn it (the seed's sweep,
        # judging by started_at, would not).
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                                run_started_at, heartbeat_at, created_at, worker_id, attempts,
                                                run_token)
               VALUES ($1, $2, 'roastify', 's', 'IN_PROGRESS', 'products', now() - interval '1 minute',
                       now() - interval '1 minute', now() - interval '3 hours', now() - interval '1 minute',
                       'ghost', 1, gen_random_uuid())""",
            job_id,
            tenant.id,
        )
        # An orphan sweep would re-queue it first (quiet for over a minute, unknown to Redis);
        # a minimum age of a day leaves it to the stall sweep, the backstop under test here.
        result = stack.run_importer(["reconciler", "--once"], env_overrides=LEAVE_ORPHANS)
        assert result.returncode == 0, result.stderr
        row = await db.fetchrow("SELECT status, error, finished_at FROM product_import_jobs WHERE id = $1", job_id)
    finally:
        await db.close()
    assert row["status"] == "FAILED" and row["error"].startswith("timeout:") and row["finished_at"] is not None
    alert = [line for line in result.stderr.splitlines() if "job_stalled" in line and job_id in line]
    assert alert and '"alert": true' in alert[0]


async def test_job_first_started_long_ago_with_a_fresh_heartbeat_is_not_stalled(stack, api: ImporterApi):
    """Retried, deferred and handed back for hours, but its current run is alive: not stalled."""
    tenant = await api.create_company("long-lived")
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(stack.database_url)
    try:
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                                run_started_at, heartbeat_at, created_at, worker_id, attempts,
                                                run_token)
               VALUES ($1, $2, 'roastify', 's', 'IN_PROGRESS', 'products', now() - interval '3 hours',
                       now() - interval '10 seconds', now(), now() - interval '3 hours', 'alive', 7,
                       gen_random_uuid())""",
            job_id,
            tenant.id,
        )
        result = stack.run_importer(["reconciler", "--once"])
        assert result.returncode == 0, result.stderr
        row = await db.fetchrow("SELECT status, error FROM product_import_jobs WHERE id = $1", job_id)
        await db.execute("UPDATE product_import_jobs SET status = 'CANCELLED', run_token = NULL WHERE id = $1", job_id)
    finally:
        await db.close()
    assert (row["status"], row["error"]) == ("IN_PROGRESS", None)
    assert "job_stalled" not in result.stderr


async def test_quiet_job_that_redis_still_queues_is_spared_by_the_stall_sweep(stack, api: ImporterApi):
    """IN_PROGRESS in Postgres (its hand-back could not be written) but waiting in the queue for a
    retry: between runs, so not stalled, however long the database was unreachable."""
    tenant = await api.create_company("waiting-retry")
    job_id = str(uuid.uuid4())
    r = aioredis.from_url(stack.redis_url)
    db = await asyncpg.connect(stack.database_url)
    try:
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, phase, started_at,
                                                run_started_at, heartbeat_at, created_at, worker_id, attempts,
                                                run_token)
               VALUES ($1, $2, 'roastify', 's', 'IN_PROGRESS', 'products', now() - interval '3 hours',
                       now() - interval '3 hours', now() - interval '3 hours', now() - interval '3 hours',
                       'partitioned', 1, gen_random_uuid())""",
            job_id,
            tenant.id,
        )
        await r.zadd("arq:queue", {job_id: FAR_FUTURE_MS})  # a deferred retry, not due yet
        result = stack.run_importer(["reconciler", "--once"])
        assert result.returncode == 0, result.stderr
        row = await db.fetchrow("SELECT status FROM product_import_jobs WHERE id = $1", job_id)
        await db.execute("UPDATE product_import_jobs SET status = 'CANCELLED', run_token = NULL WHERE id = $1", job_id)
    finally:
        await r.zrem("arq:queue", job_id)
        await r.aclose()
        await db.close()
    assert row["status"] == "IN_PROGRESS"
    assert "job_stalled" not in result.stderr
    assert any("stall_spared" in line and job_id in line for line in result.stderr.splitlines())


async def test_long_image_phase_keeps_its_heartbeat_and_is_not_stalled(stack, api: ImporterApi, provider: FakeProvider):
    """The lease keeper renews heartbeat_at in Postgres while a slow image phase runs."""
    worker = stack.start_worker(env={**FAST, "IMPORTER_IMAGE_CONCURRENCY": "1"}, worker_id="slow-images")
    tenant = await api.create_company("slow-images")
    store = await provider.create_store("roastify", products=4, images_per_product=1, seed=77)
    await provider.set_faults(store_id=store, latency_ms=5000, apply_to_images=True)
    job_id = await api.submit(tenant, "roastify", store)
    db = await asyncpg.connect(stack.database_url)
    try:
        await wait_for(
            lambda: db.fetchval(
                "SELECT status = 'IN_PROGRESS' AND phase = 'images' FROM product_import_jobs WHERE id = $1", job_id
            ),
            timeout=60,
            what="the job to reach its image phase",
        )
        # The job first started hours ago (as after many retries); the sweep must not care.
        await db.execute("UPDATE product_import_jobs SET started_at = now() - interval '3 hours' WHERE id = $1", job_id)
        result = stack.run_importer(["reconciler", "--once"], env_overrides=SHORT_STALL_LIMIT)
        assert result.returncode == 0, result.stderr
        during = await db.fetchrow("SELECT status, phase, error FROM product_import_jobs WHERE id = $1", job_id)
        assert during["status"] != "FAILED", f"a live run was failed by the sweep: {during['error']}"
        assert (during["status"], during["phase"]) == ("IN_PROGRESS", "images"), (
            "the sweep must run during the image phase for this test to mean anything"
        )
        assert "job_stalled" not in result.stderr
        job = await api.wait_terminal(tenant, job_id, timeout=120)
    finally:
        await provider.clear_faults()
        await db.close()
    assert job["status"] == "COMPLETED", job
    assert "lease_lost" not in worker.log_path.read_text()


async def test_retry_failed_starts_a_new_run_that_is_not_judged_by_the_old_one(
    stack, api: ImporterApi, provider: FakeProvider
):
    tenant = await api.create_company("revived")
    store = await provider.create_store("roastify", products=3000, images_per_product=0, seed=78, page_latency_ms=500)
    job_id = str(uuid.uuid4())
    db = await asyncpg.connect(stack.database_url)
    try:
        # Failed hours ago, after its worker kept dying: old run clock, all tries spent.
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, include_images, status, phase,
                                                started_at, run_started_at, heartbeat_at, created_at, finished_at,
                                                worker_id, attempts, queue_try, error)
               VALUES ($1, $2, 'roastify', $3, false, 'FAILED', 'products', now() - interval '3 hours',
                       now() - interval '3 hours', now() - interval '3 hours', now() - interval '3 hours',
                       now() - interval '2 hours', 'gone', 10, 10, 'timeout: job stalled')""",
            job_id,
            tenant.id,
            store,
        )
        retried = stack.run_importer(["ops", "retry-failed", "--company", tenant.id])
        assert retried.returncode == 0, retried.stderr
        revived = await db.fetchrow("SELECT * FROM product_import_jobs WHERE id = $1", job_id)
        assert revived["status"] == "PENDING" and revived["error"] is None and revived["finished_at"] is None
        assert (revived["run_started_at"], revived["heartbeat_at"], revived["queue_try"]) == (None, None, 0)
        assert revived["started_at"] is not None, "started_at keeps the first start, for reporting"

        stack.start_worker(env=FAST, worker_id="reviver")
        await wait_for(
            lambda: db.fetchval(
                "SELECT status = 'IN_PROGRESS' AND pages_fetched >= 1 FROM product_import_jobs WHERE id = $1", job_id
            ),
            timeout=60,
            what="the revived job to run",
        )
        result = stack.run_importer(["reconciler", "--once"], env_overrides=SHORT_STALL_LIMIT)
        assert result.returncode == 0, result.stderr
        assert await db.fetchval("SELECT status FROM product_import_jobs WHERE id = $1", job_id) == "IN_PROGRESS", (
            "the sweep must run while the revived job runs for this test to mean anything"
        )
        assert "job_stalled" not in result.stderr
        job = await api.wait_terminal(tenant, job_id, timeout=120)
    finally:
        await db.close()
    assert job["status"] == "COMPLETED", job
    assert job["counts"]["products_imported"] == 3000


async def test_orphan_behind_more_than_a_page_of_rows_redis_knows_is_found(stack, api: ImporterApi):
    """The sweep pages through every candidate, not just the oldest ``reconcile_batch_limit``."""
    tenant = await api.create_company("deep-backlog")
    known = [str(uuid.uuid4()) for _ in range(12)]
    orphan = str(uuid.uuid4())
    r = aioredis.from_url(stack.redis_url)
    db = await asyncpg.connect(stack.database_url)
    small_pages = {"IMPORTER_RECONCILE_BATCH_LIMIT": "5"}
    try:
        for i, job_id in enumerate(known):  # old, waiting, and known to Redis (deferred far ahead)
            await db.execute(
                """INSERT INTO product_import_jobs (id, company_id, provider, store_id, created_at, updated_at)
                   VALUES ($1, $2, 'roastify', $3, now() - interval '1 day' + make_interval(mins => $4),
                           now() - interval '1 day')""",
                job_id,
                tenant.id,
                f"known-{i}",
                i,
            )
            await r.zadd("arq:queue", {job_id: FAR_FUTURE_MS})
        await db.execute(
            """INSERT INTO product_import_jobs (id, company_id, provider, store_id, created_at, updated_at)
               VALUES ($1, $2, 'roastify', 'lost', now() - interval '1 hour', now() - interval '1 hour')""",
            orphan,
            tenant.id,
        )
        before = await db.fetchrow("SELECT status, updated_at FROM product_import_jobs WHERE id = $1", orphan)

        bounded = stack.run_importer(
            ["ops", "requeue-orphans", "--dry-run"],
            env_overrides={**small_pages, "IMPORTER_RECONCILE_MAX_ROWS_PER_SWEEP": "10"},
        )
        assert bounded.returncode == 0, bounded.stderr
        assert orphan not in bounded.stdout and "stopped early (row limit per sweep reached)" in bounded.stdout
        assert "10 candidate row(s) checked in 2 page(s)" in bounded.stdout, bounded.stdout

        dry = stack.run_importer(["ops", "requeue-orphans", "--dry-run"], env_overrides=small_pages)
        assert dry.returncode == 0, dry.stderr
        assert f"would re-queue {orphan}" in dry.stdout and not any(k in dry.stdout for k in known), dry.stdout
        assert await db.fetchrow("SELECT status, updated_at FROM product_import_jobs WHERE id = $1", orphan) == before
        assert await r.zscore("arq:queue", orphan) is None, "--dry-run enqueues nothing"

        result = stack.run_importer(["reconciler", "--once"], env_overrides=small_pages)
        assert result.returncode == 0, result.stderr
        requeued = [line for line in result.stderr.splitlines() if "orphan_requeued" in line]
        assert any(orphan in line for line in requeued), result.stderr
        assert not any(k in line for k in known for line in requeued)
        assert await r.zscore("arq:queue", orphan) is not None
        assert await db.fetchval("SELECT status FROM product_import_jobs WHERE id = $1", orphan) == "PENDING"
        sweep = [line for line in result.stderr.splitlines() if '"reconcile_sweep"' in line and '"orphans"' in line]
        assert sweep and json.loads(sweep[0][sweep[0].index("{") :])["pages"] >= 3, sweep
    finally:
        # Nothing left for later tests' workers and sweeps.
        await db.execute(
            "UPDATE product_import_jobs SET status = 'CANCELLED' WHERE id = ANY($1::uuid[])", [*known, orphan]
        )
        await r.zrem("arq:queue", *known, orphan)
        await r.delete(f"arq:job:{orphan}")
        await r.aclose()
        await db.close()


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
