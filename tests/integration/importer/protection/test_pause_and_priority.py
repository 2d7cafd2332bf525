"""Pause/resume by API and CLI, and VIP jobs ahead of the line."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.importer.protection.helpers import Lab, env, submit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def started_count(lab: Lab) -> int:
    return int(await lab.fetchval("SELECT count(*) FROM product_import_jobs WHERE started_at IS NOT NULL"))


async def test_pause_and_resume_by_api_and_by_cli(lab: Lab) -> None:
    api = lab.start_api()
    await asyncio.to_thread(lab.start_worker)
    tenant = await api.create_company("pausing")
    store = await lab.provider.create_store("roastify", products=3, images_per_product=0)

    r = await api.http.post("/v1/ops/queue/pause", headers=api.operator_headers)
    assert r.status_code == 200 and r.json()["paused"] is True
    assert (await api.http.post("/v1/ops/queue/pause")).status_code == 401  # operator token required
    first = (await submit(api, tenant, store)).json()["id"]
    await asyncio.sleep(1.0)  # ten polls of the worker
    assert await started_count(lab) == 0
    assert (await lab.queue_health())["paused"]["mode"] == "manual"
    r = await api.http.post("/v1/ops/queue/resume", headers=api.operator_headers)
    assert r.status_code == 200 and r.json()["was_paused"] is not None
    assert (await api.wait_terminal(tenant, first, timeout=30))["status"] == "COMPLETED"

    dry = await lab.aops("pause", "--reason", "deploy", "--dry-run")
    assert dry.returncode == 0 and "would pause" in dry.stdout, dry.stderr
    assert (await lab.queue_health())["paused"] is None
    done = await lab.aops("pause", "--reason", "deploy")
    assert done.returncode == 0 and "queue paused" in done.stdout, done.stderr
    second = (await submit(api, tenant, store)).json()["id"]
    await asyncio.sleep(1.0)
    assert await started_count(lab) == 1
    assert (await lab.queue_health())["paused"]["reason"] == "deploy"
    dry = await lab.aops("resume", "--dry-run")
    assert dry.returncode == 0 and "would resume" in dry.stdout and "paused (manual: deploy)" in dry.stdout
    assert (await lab.queue_health())["paused"] is not None
    done = await lab.aops("resume")
    assert done.returncode == 0 and "queue resumed" in done.stdout, done.stderr
    assert (await api.wait_terminal(tenant, second, timeout=30))["status"] == "COMPLETED"


async def test_a_vip_job_submitted_behind_200_waiting_jobs_starts_before_them(lab: Lab) -> None:
    api = lab.start_api()
    regular = await api.create_company("regular", tier="ENTERPRISE")
    vip = await api.create_company("vip", tier="BASIC", vip=True)
    # One store per job: a second submit for a store with an active job answers that job.
    stores = [await lab.provider.create_store("roastify", products=1, images_per_product=0) for _ in range(201)]
    await api.http.post("/v1/ops/queue/pause", headers=api.operator_headers)
    waiting = [(await submit(api, regular, store)).json()["id"] for store in stores[:200]]
    vip_job = (await submit(api, vip, stores[200])).json()["id"]
    assert len(set(waiting)) == 200

    await asyncio.to_thread(lab.start_worker, env(worker_concurrency=1))
    await api.http.post("/v1/ops/queue/resume", headers=api.operator_headers)
    job = await api.wait_terminal(vip, vip_job, timeout=30)
    assert job["status"] == "COMPLETED"

    rows = await lab.fetch("SELECT id::text, started_at FROM product_import_jobs WHERE started_at IS NOT NULL")
    starts = {row["id"]: row["started_at"] for row in rows}
    others = [at for job_id, at in starts.items() if job_id != vip_job]
    assert all(starts[vip_job] < at for at in others), "the VIP job must be the first to start"

    with lab.redis() as r:

        async def tidied() -> bool:
            return r.zscore("importer:queue:priority", vip_job) is None

        await wait_for(tidied, timeout=10, what="the finished VIP job to leave the priority set")
