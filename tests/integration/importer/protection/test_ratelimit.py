"""Rate limits shared through Redis: the limiter itself, then workers against a provider that
enforces its own window (the invariant: zero 429s at the provider, every job completes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from importer.errors import JobDeferred
from importer.protection.counters import Counters
from importer.protection.ratelimit import CallContext, RateLimiter, close_limits_storage, open_limits_storage
from importer.settings import Settings
from lab.stack import Stack
from tests.integration.importer.protection.helpers import Lab, env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def limiter_for(session_stack: Stack) -> AsyncIterator:
    from redis.asyncio import Redis

    redis = Redis.from_url(session_stack.redis_url)
    await redis.flushdb()
    storages = []

    def make(**overrides: object) -> RateLimiter:
        settings = Settings(redis_url=session_stack.redis_url).model_copy(update=overrides)
        storage = open_limits_storage(settings)
        storages.append(storage)
        return RateLimiter(settings, storage, Counters(redis))

    try:
        yield make
    finally:
        for storage in storages:
            await close_limits_storage(storage)
        await redis.aclose()


async def test_waits_for_a_token_within_the_bound_and_defers_beyond_it(limiter_for) -> None:
    limiter = limiter_for(
        roastify_rate_limit_per_min=3, rate_limit_window_seconds=1, rate_limit_window_skew=0, rate_limit_max_wait=2.0
    )
    call = CallContext("roastify", "st_a", "company-1")
    for _ in range(3):
        assert await limiter.acquire(call) < 0.1
    waited = await limiter.acquire(call)  # the window frees within a second: worth waiting for
    assert 0.3 < waited <= 2.0

    impatient = limiter_for(
        roastify_rate_limit_per_min=3, rate_limit_window_seconds=1, rate_limit_window_skew=0, rate_limit_max_wait=0
    )
    for _ in range(3):
        try:
            await impatient.acquire(CallContext("roastify", "st_b", "company-1"))
        except JobDeferred:
            pytest.fail("the first three requests must get tokens")
    with pytest.raises(JobDeferred) as deferred:
        await impatient.acquire(CallContext("roastify", "st_b", "company-1"))
    assert 0 < deferred.value.retry_after <= 1.0
    assert "account rate limit" in deferred.value.reason


async def test_the_company_limit_spans_its_accounts(limiter_for) -> None:
    limiter = limiter_for(
        roastify_rate_limit_per_min=100, company_rate_limit_per_min=2, rate_limit_max_wait=0, rate_limit_window_skew=0
    )
    await limiter.acquire(CallContext("roastify", "st_1", "acme"))
    await limiter.acquire(CallContext("roastify", "st_2", "acme"))
    with pytest.raises(JobDeferred) as deferred:
        await limiter.acquire(CallContext("roastify", "st_3", "acme"))
    assert "company rate limit" in deferred.value.reason
    await limiter.acquire(CallContext("roastify", "st_3", "other-co"))  # another company is not affected


async def test_job_starts_are_counted_for_the_whole_queue(limiter_for) -> None:
    limiter = limiter_for(queue_start_limit_per_min=2)
    assert await limiter.take_job_start() is None
    assert await limiter.take_job_start() is None
    wait = await limiter.take_job_start()
    assert wait is not None and 0 < wait <= 60


async def test_workers_hammering_one_account_cause_no_429_and_every_job_completes(lab: Lab) -> None:
    """10 requests/min at the provider, 16 page requests from 3 worker processes: one window is
    not enough, so jobs must be deferred past the provider's minute and still all complete."""
    limits = env(roastify_rate_limit_per_min=10, provider_page_size=10, rate_limit_max_wait=2)
    api = lab.start_api(limits)
    workers = await asyncio.gather(
        *(asyncio.to_thread(lab.start_worker, {**limits, **env(worker_concurrency=2)}) for _ in range(3))
    )
    assert len(workers) == 3
    store = await lab.provider.create_store("roastify", products=20, images_per_product=0, rate_limit_per_min=10)
    # One job per tenant: a company has at most one active job per store (a second submit answers
    # the first), so eight companies hammer the one provider account.
    tenants = [await api.create_company(f"hammer-{i}") for i in range(8)]
    started = time.time()
    jobs = [(t, await api.submit(t, "roastify", store, include_images=False)) for t in tenants]

    finished = await asyncio.gather(*(api.wait_terminal(t, j, timeout=150) for t, j in jobs))
    assert [f["status"] for f in finished] == ["COMPLETED"] * 8, finished
    assert all(f["counts"]["products_imported"] == 20 for f in finished)

    stats = (await lab.provider.stats(store))["stores"][store]
    assert stats["rate_limited"] == 0, stats
    assert "429" not in stats["responses"], stats
    assert stats["responses"] == {"200": 16}, stats
    requests = (await lab.provider.http.get("/admin/requests", params={"since": started, "store_id": store})).json()
    stamps = sorted(r["ts"] for r in requests)
    assert stamps[-1] - stamps[0] > 60, "the test must span more than one provider window to mean anything"

    # Deferred, never failed, and no arq try spent on a deferral.
    rows = await lab.fetch("SELECT queue_try, status FROM product_import_jobs")
    assert {(r["queue_try"], r["status"]) for r in rows} == {(1, "COMPLETED")}
    with lab.redis() as r:
        counters = {k.decode(): int(v) for k, v in r.hgetall("importer:counters").items()}
    assert counters.get("ratelimit_deferrals", 0) >= 1 and counters.get("jobs_deferred", 0) >= 1, counters


async def test_job_starts_beyond_the_queue_limit_stay_queued_without_spending_a_try(lab: Lab) -> None:
    api = lab.start_api()
    lab.start_worker(env(queue_start_limit_per_min=3, worker_concurrency=5))
    tenant = await api.create_company("many-small")
    stores = [await lab.provider.create_store("roastify", products=2, images_per_product=0) for _ in range(6)]
    jobs = [await api.submit(tenant, "roastify", store, include_images=False) for store in stores]

    async def three_done() -> int | None:
        done = await lab.fetchval("SELECT count(*) FROM product_import_jobs WHERE status = 'COMPLETED'")
        return done if done >= 3 else None

    await wait_for(three_done, timeout=30, what="the first three jobs")
    with lab.redis() as r:
        assert await wait_for(
            lambda: asyncio.sleep(0, result=int(r.hget("importer:counters", "queue_start_throttles") or 0)),
            timeout=10,
            what="a start throttle",
        )
        await asyncio.sleep(2)  # well inside the minute: nothing more may start
        rows = await lab.fetch("SELECT id::text, status, started_at FROM product_import_jobs")
        waiting = [row["id"] for row in rows if row["status"] == "PENDING"]
        assert len(waiting) == 3 and all(row["started_at"] is None for row in rows if row["status"] == "PENDING")
        for job_id in waiting:
            assert r.zscore("arq:queue", job_id) is not None, "a throttled job must stay queued"
            assert r.get(f"arq:retry:{job_id}") is None, "a throttled start must not spend a try"
    assert len(jobs) == 6
