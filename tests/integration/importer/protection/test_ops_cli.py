"""Every ``importer ops`` command on the real database and Redis, ``--dry-run`` changing nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from importer.protection.breaker import CircuitBreakers, Outcome
from importer.protection.counters import Counters
from importer.settings import Settings
from tests.integration.importer.protection.helpers import Lab, env, submit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def job_row(lab: Lab, job_id: str) -> dict[str, Any]:
    rows = await lab.fetch("SELECT * FROM product_import_jobs WHERE id = $1::uuid", job_id)
    return dict(rows[0])


async def fail_mid_catalog(lab: Lab, api: Any, tenant: Any, store: str) -> str:
    """Run a 3-page job and break the store after page 1: FAILED with a checkpoint."""
    job_id = (await submit(api, tenant, store)).json()["id"]

    async def first_page_done() -> bool:
        return (await job_row(lab, job_id))["pages_fetched"] >= 1

    await wait_for(first_page_done, timeout=30, interval=0.02, what="page 1 of the job")
    await lab.provider.set_faults(store_id=store, error_rate=1.0, error_status=404)
    failed = await api.wait_terminal(tenant, job_id, timeout=30)
    assert failed["status"] == "FAILED" and "404" in failed["error"], failed
    return job_id


async def test_retry_failed_keeps_the_checkpoint_and_filters_by_company(lab: Lab) -> None:
    pages = env(provider_page_size=10)
    api = lab.start_api(pages)
    worker = await asyncio.to_thread(lab.start_worker, pages)
    a = await api.create_company("a")
    b = await api.create_company("b")
    store_a = await lab.provider.create_store("roastify", products=30, images_per_product=0, page_latency_ms=400)
    store_b = await lab.provider.create_store("roastify", products=30, images_per_product=0, page_latency_ms=400)
    job_a, job_b = await asyncio.gather(fail_mid_catalog(lab, api, a, store_a), fail_mid_catalog(lab, api, b, store_b))
    await asyncio.to_thread(lab.stop_worker, worker)
    await lab.provider.clear_faults()
    before = await job_row(lab, job_a)
    assert before["page_cursor"] is not None and before["products_imported"] >= 10

    dry = await lab.aops("retry-failed", "--since", "10m", "--company", a.id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would retry {job_a}" in dry.stdout and job_b not in dry.stdout
    assert "would retry 1 of 1 matching FAILED job(s)" in dry.stdout
    assert await job_row(lab, job_a) == before
    with lab.redis() as r:
        assert r.zscore("arq:queue", job_a) is None

    done = await lab.aops("retry-failed", "--since", "10m", "--company", a.id)
    assert done.returncode == 0, done.stderr
    assert f"retried {job_a}" in done.stdout and "retried 1 of 1" in done.stdout
    after = await job_row(lab, job_a)
    assert (after["status"], after["error"], after["finished_at"]) == ("PENDING", None, None)
    assert (after["page_cursor"], after["phase"], after["products_imported"]) == (
        before["page_cursor"],
        before["phase"],
        before["products_imported"],
    ), "the checkpoint is kept"
    with lab.redis() as r:
        assert r.zscore("arq:queue", job_a) is not None and r.get(f"arq:retry:{job_a}") is None
    assert (await job_row(lab, job_b))["status"] == "FAILED"

    await asyncio.to_thread(lab.start_worker, pages)
    finished = await api.wait_terminal(a, job_a, timeout=60)
    assert finished["status"] == "COMPLETED" and finished["counts"]["products_imported"] == 30
    page_requests = (await lab.provider.stats(store_a))["stores"][store_a]["page_requests"]
    assert max(page_requests.values()) == 1, f"no page was fetched twice: {page_requests}"

    nothing = await lab.aops("retry-failed", "--company", a.id)
    assert nothing.returncode == 0 and "no FAILED jobs match" in nothing.stdout
    bad = await lab.aops("retry-failed", "--since", "yesterday")
    assert bad.returncode != 0 and "30m" in bad.stderr


async def test_drain_closes_intake_and_waits_for_the_queue_to_empty(lab: Lab) -> None:
    api = lab.start_api()
    tenant = await api.create_company("draining")
    store = await lab.provider.create_store("roastify", products=5, images_per_product=0, page_latency_ms=300)
    # One store per job: a second submit for a store with an active job answers that job.
    stores = [
        await lab.provider.create_store("roastify", products=5, images_per_product=0, page_latency_ms=300)
        for _ in range(6)
    ]
    jobs = [(await submit(api, tenant, s)).json()["id"] for s in stores[:4]]

    dry = await lab.aops("drain", "--dry-run")
    assert dry.returncode == 0 and "would close intake" in dry.stdout and "4 waiting" in dry.stdout, dry.stdout
    assert (await submit(api, tenant, stores[4])).status_code == 202
    jobs.append((await submit(api, tenant, stores[5])).json()["id"])

    await asyncio.to_thread(lab.start_worker, env(worker_concurrency=2))
    drain = asyncio.create_task(lab.aops("drain", "--timeout", "60", "--interval", "0.3"))

    async def refused() -> Any:
        r = await submit(api, tenant, store)
        return r if r.status_code == 503 else None

    r = await wait_for(refused, timeout=20, interval=0.1, what="intake to close")
    assert "intake closed" in r.json()["error"] and r.headers["retry-after"]
    out = await drain
    assert out.returncode == 0, out.stdout + out.stderr
    assert "intake closed" in out.stdout and "drained" in out.stdout and "importer ops resume" in out.stdout
    assert out.stdout.count("waiting=") >= 2, "drain shows its progress"
    for job_id in jobs:
        assert (await api.get(tenant, job_id))["status"] == "COMPLETED"
    assert (await submit(api, tenant, store)).status_code == 503, "intake stays closed after the drain"
    resumed = await lab.aops("resume")
    assert "intake reopened" in resumed.stdout
    assert (await submit(api, tenant, store)).status_code == 202


async def test_drain_gives_up_at_its_timeout(lab: Lab) -> None:
    api = lab.start_api()
    tenant = await api.create_company("stuck")
    store = await lab.provider.create_store("roastify", products=1, images_per_product=0)
    await submit(api, tenant, store)  # no worker: it never drains
    out = await lab.aops("drain", "--timeout", "1", "--interval", "0.3")
    assert out.returncode == 1 and "timed out" in out.stdout


async def test_requeue_orphans_dry_run_then_for_real(lab: Lab) -> None:
    api = lab.start_api()
    tenant = await api.create_company("orphaned")
    store = await lab.provider.create_store("roastify", products=1, images_per_product=0)
    job_id = (await submit(api, tenant, store)).json()["id"]
    with lab.redis() as r:  # Redis forgets the job, as after a failover that lost the write
        r.zrem("arq:queue", job_id)
        r.delete(f"arq:job:{job_id}")
    no_min_age = env(orphan_min_age=0)

    dry = await lab.aops("requeue-orphans", "--dry-run", overrides=no_min_age)
    assert dry.returncode == 0 and f"would re-queue {job_id}" in dry.stdout, dry.stdout + dry.stderr
    with lab.redis() as r:
        assert r.zscore("arq:queue", job_id) is None
    done = await lab.aops("requeue-orphans", overrides=no_min_age)
    assert done.returncode == 0 and f"re-queued {job_id}" in done.stdout
    with lab.redis() as r:
        assert r.zscore("arq:queue", job_id) is not None


async def test_reset_breakers_dry_run_then_for_real(lab: Lab) -> None:
    redis = Redis.from_url(lab.stack.redis_url)
    try:
        breakers = CircuitBreakers(redis, Settings(), Counters(redis))
        for _ in range(5):
            await breakers.settle(await breakers.admit("roastify"), Outcome.FAILURE, "503")
        assert (await breakers.snapshot("roastify"))["state"] == "open"

        dry = await lab.aops("reset-breakers", "--provider", "roastify", "--dry-run")
        assert dry.returncode == 0 and "roastify: open" in dry.stdout and "would reset" in dry.stdout
        assert (await breakers.snapshot("roastify"))["state"] == "open"

        done = await lab.aops("reset-breakers")
        assert done.returncode == 0, done.stderr
        assert "roastify: open -> closed" in done.stdout and "shopify: closed -> closed" in done.stdout
        assert (await breakers.snapshot("roastify"))["state"] == "closed"
        assert (await breakers.history("roastify", limit=1))[0]["reason"].startswith("reset by an operator")

        bad = await lab.aops("reset-breakers", "--provider", "nope")
        assert bad.returncode == 2 and "unknown provider" in bad.stderr
    finally:
        await redis.aclose()


async def test_health_prints_the_report(lab: Lab) -> None:
    api = lab.start_api()
    tenant = await api.create_company("health")
    store = await lab.provider.create_store("roastify", products=1, images_per_product=0)
    await submit(api, tenant, store)
    text = await lab.aops("health")
    assert text.returncode == 0 and "level: healthy" in text.stdout and "waiting: 1" in text.stdout
    report = json.loads((await lab.aops("health", "--json")).stdout)
    assert report["counts"]["waiting"] == 1 and report["level"] == "healthy"
    assert report["breakers"]["roastify"]["state"] == "closed"


async def test_retry_failed_skips_a_job_whose_store_already_has_an_active_one(lab: Lab) -> None:
    """One active job per (company, provider, store): reviving a FAILED job beside the store's
    running one would break that rule; the command says so and goes on, it never crashes."""
    api = lab.start_api(env())
    tenant = await api.create_company("resubmitter")
    store = await lab.provider.create_store("roastify", products=10, images_per_product=0)
    failed_id = "00000000-0000-4000-8000-0000000000f1"
    await lab.fetch(
        """
        INSERT INTO product_import_jobs (id, company_id, provider, store_id, status, error, finished_at)
        VALUES ($1::uuid, $2::uuid, 'roastify', $3, 'FAILED', 'internal error: boom', now())
        """,
        failed_id,
        tenant.id,
        store,
    )
    active = (await submit(api, tenant, store)).json()["id"]  # no worker: it stays PENDING

    done = await lab.aops("retry-failed", "--since", "10m", "--company", tenant.id)
    assert done.returncode == 0, done.stderr
    assert f"skipped {failed_id}" in done.stdout and "active job" in done.stdout, done.stdout
    assert (await job_row(lab, failed_id))["status"] == "FAILED"
    assert (await job_row(lab, active))["status"] == "PENDING"
