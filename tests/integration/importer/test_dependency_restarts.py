"""Redis and Postgres restarting under running jobs: workers ride through, every job completes."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

FAST = {"IMPORTER_LEASE_SECONDS": "4", "IMPORTER_WORKER_POLL_DELAY": "0.1", "IMPORTER_RETRY_BACKOFF_BASE": "0.5"}


async def _in_progress(stack) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM product_import_jobs WHERE status = 'IN_PROGRESS'"))
    finally:
        await conn.close()


async def _submit_slow_jobs(api: ImporterApi, provider: FakeProvider, name: str, n: int) -> tuple[object, list[str]]:
    tenant = await api.create_company(name)
    jobs = []
    for i in range(n):
        store = await provider.create_store(
            "roastify", products=600, images_per_product=1, seed=60 + i, page_latency_ms=300
        )
        jobs.append(await api.submit(tenant, "roastify", store))
    return tenant, jobs


async def test_redis_restart_while_jobs_run(stack, api: ImporterApi, provider: FakeProvider):
    workers = [stack.start_worker(env=FAST, worker_id=f"redis-rider-{i}") for i in range(2)]
    tenant, jobs = await _submit_slow_jobs(api, provider, "redis-restart", 4)
    await wait_for(lambda: _in_progress(stack), timeout=60, what="jobs to start")
    await asyncio.to_thread(stack.restart_redis, down_for=2.0)
    results = [await api.wait_terminal(tenant, j, timeout=240) for j in jobs]
    assert [r["status"] for r in results] == ["COMPLETED"] * len(jobs), results
    for w in workers:
        assert w.is_alive(), f"worker died on the Redis restart:\n{w.log_tail()}"
    assert any("redis_unavailable" in w.log_path.read_text() for w in workers)


async def test_postgres_restart_while_jobs_run(stack, api: ImporterApi, provider: FakeProvider):
    workers = [stack.start_worker(env=FAST, worker_id=f"pg-rider-{i}") for i in range(2)]
    tenant, jobs = await _submit_slow_jobs(api, provider, "pg-restart", 4)
    await wait_for(lambda: _in_progress(stack), timeout=60, what="jobs to start")
    await asyncio.to_thread(stack.restart_postgres, down_for=2.0)
    results = [await api.wait_terminal(tenant, j, timeout=240) for j in jobs]
    assert [r["status"] for r in results] == ["COMPLETED"] * len(jobs), results
    for w in workers:
        assert w.is_alive(), f"worker died on the Postgres restart:\n{w.log_tail()}"
