"""A worker killed mid-job: its job runs again elsewhere, from its checkpoint, nothing lost."""

from __future__ import annotations

import signal
import time

import asyncpg
import pytest

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.store_state import assert_matches_expected, read_state
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LEASE = 3.0
FAST = {
    "IMPORTER_LEASE_SECONDS": str(LEASE),
    "IMPORTER_WORKER_POLL_DELAY": "0.1",
    "IMPORTER_SHUTDOWN_GRACE_SECONDS": "5",
}


async def _row(db: asyncpg.Connection, job_id: str) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM product_import_jobs WHERE id = $1", job_id)


async def test_sigkilled_worker_job_resumes_on_another_worker_from_its_checkpoint(
    stack, api: ImporterApi, provider: FakeProvider
):
    victim = stack.start_worker(env=FAST, worker_id="victim")
    tenant = await api.create_company("sigkill")
    # Long enough (about 9 s of pages) that the victim is still mid-job after the survivor
    # process has started, however slowly a loaded machine starts it.
    pages = 30
    store = await provider.create_store(
        "roastify", products=pages * 100, images_per_product=0, seed=41, page_latency_ms=300
    )
    job_id = await api.submit(tenant, "roastify", store)
    db = await asyncpg.connect(stack.database_url)
    try:
        await wait_for(
            lambda: db.fetchval("SELECT pages_fetched >= 4 FROM product_import_jobs WHERE id = $1", job_id),
            timeout=60,
            what="the victim to fetch four pages",
        )
        survivor = stack.start_worker(env=FAST, worker_id="survivor")
        killed_at = time.monotonic()
        victim.kill(signal.SIGKILL)

        async def survivor_runs_it() -> bool:
            row = await _row(db, job_id)
            return row["worker_id"] == "survivor"

        await wait_for(survivor_runs_it, timeout=LEASE + 10, interval=0.1, what="the survivor to take the job")
        taken_after = time.monotonic() - killed_at
        job = await api.wait_terminal(tenant, job_id, timeout=120)
        final = await _row(db, job_id)
    finally:
        await db.close()
    assert job["status"] == "COMPLETED", job
    assert job["counts"]["products_imported"] == pages * 100
    assert final["attempts"] == 2
    # Resumed, not restarted: pages the victim committed are not fetched again (at most the one
    # in flight when it died is fetched twice).
    stats = await provider.stats(store)
    fetched = sum(stats["stores"][store]["page_requests"].values())
    assert fetched <= pages + 1, stats["stores"][store]["page_requests"]
    print(f"abandoned job taken over {taken_after:.1f}s after the SIGKILL (lease {LEASE}s)")
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "roastify", store)
    assert_matches_expected(state, await provider.expected(store))
    survivor.stop()


async def test_sigterm_hands_the_job_back_without_burning_a_try(stack, api: ImporterApi, provider: FakeProvider):
    leaving = stack.start_worker(env=FAST, worker_id="leaving")
    tenant = await api.create_company("sigterm")
    store = await provider.create_store("roastify", products=1000, images_per_product=0, seed=42, page_latency_ms=300)
    job_id = await api.submit(tenant, "roastify", store)
    db = await asyncpg.connect(stack.database_url)
    try:
        await wait_for(
            lambda: db.fetchval("SELECT pages_fetched >= 2 FROM product_import_jobs WHERE id = $1", job_id),
            timeout=60,
            what="the first worker to fetch two pages",
        )
        stopped_at = time.monotonic()
        leaving.kill(signal.SIGTERM)
        code = leaving.wait(timeout=float(FAST["IMPORTER_SHUTDOWN_GRACE_SECONDS"]) + 10)
        shutdown = time.monotonic() - stopped_at
        assert code == 0, leaving.log_tail()
        handed_back = await _row(db, job_id)
        assert handed_back["status"] == "PENDING"
        assert 2 <= handed_back["pages_fetched"] < 10

        stack.start_worker(env=FAST, worker_id="taker")
        job = await api.wait_terminal(tenant, job_id, timeout=120)
        final = await _row(db, job_id)
    finally:
        await db.close()
    assert job["status"] == "COMPLETED"
    assert final["queue_try"] == 1, "the hand-back burned an arq try"
    assert final["attempts"] == 2
    lines = leaving.log_path.read_text()
    assert "job_handed_back" in lines and "worker_stopped" in lines
    print(f"SIGTERM to exit: {shutdown:.2f}s")
