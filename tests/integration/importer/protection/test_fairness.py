"""Fairness between tenants: per-company limits, fair starts, shedding and the tenant brake.

Every job gets its own store: one active job per (company, provider, store) is the rule, and a
second submit for a store would answer the first job instead of creating one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.integration.importer.protection.helpers import Lab, env, submit
from tests.support.importer_api import ImporterApi, Tenant
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SMALL = env(health_degraded_waiting=3, health_critical_waiting=6, health_overload_waiting=9, overload_retry_after=17)


async def stores(lab: Lab, n: int) -> list[str]:
    return [await lab.provider.create_store("roastify", products=1, images_per_product=0) for _ in range(n)]


async def accepted(api: ImporterApi, tenant: Tenant, store: str) -> str:
    r = await submit(api, tenant, store)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def health_where(lab: Lab, what: str, check: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await lab.queue_health()
        return body if check(body) else None

    return await wait_for(probe, timeout=15, interval=0.1, what=what)


async def counters(lab: Lab) -> dict[str, int]:
    with lab.redis() as r:
        return {k.decode(): int(v) for k, v in r.hgetall("importer:counters").items()}


async def test_a_company_at_its_limit_gets_429_with_retry_after_and_nothing_is_written(lab: Lab) -> None:
    api = lab.start_api(env(company_limit_pro=3, company_limit_basic=1, company_limit_retry_after=7))
    pro = await api.create_company("pro", tier="PRO")
    basic = await api.create_company("basic", tier="BASIC")
    ids = [await accepted(api, pro, s) for s in await stores(lab, 3)]
    assert len(set(ids)) == 3

    extra = await stores(lab, 2)
    rows_before = await lab.fetchval("SELECT count(*) FROM product_import_jobs")
    refused = await submit(api, pro, extra[0])
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "7"
    body = refused.json()
    assert body["code"] == "company_limit" and "limit" in body["error"] and "PRO" in body["error"]
    assert await lab.fetchval("SELECT count(*) FROM product_import_jobs") == rows_before

    # Another company is not affected; its own (lower) tier limit applies to it.
    await accepted(api, basic, extra[0])
    assert (await submit(api, basic, extra[1])).status_code == 429

    # A job that ends frees its place: the limit counts active + waiting jobs only.
    await lab.fetch("UPDATE product_import_jobs SET status = 'CANCELLED' WHERE id = $1::uuid", ids[0])
    await accepted(api, pro, extra[1])
    seen = await counters(lab)
    assert seen["intake_rejected_company_limit"] == 2
    assert seen["intake_rejected_company_limit:PRO"] == 1 and seen["intake_rejected_company_limit:BASIC"] == 1


async def test_a_small_tenant_starts_among_the_first_behind_a_big_backlog_and_vip_stays_first(lab: Lab) -> None:
    api = lab.start_api()
    big = await api.create_company("big", tier="ENTERPRISE")
    small = await api.create_company("small", tier="BASIC")
    vip = await api.create_company("vip", tier="BASIC", vip=True)
    backlog_stores = await stores(lab, 40)
    small_store, vip_store = await stores(lab, 2)
    await api.http.post("/v1/ops/queue/pause", headers=api.operator_headers)
    backlog = [await accepted(api, big, s) for s in backlog_stores]
    small_job = await accepted(api, small, small_store)
    vip_job = await accepted(api, vip, vip_store)

    await asyncio.to_thread(lab.start_worker, env(worker_concurrency=1))
    await api.http.post("/v1/ops/queue/resume", headers=api.operator_headers)
    assert (await api.wait_terminal(small, small_job, timeout=60))["status"] == "COMPLETED"
    assert (await api.wait_terminal(vip, vip_job, timeout=60))["status"] == "COMPLETED"

    rows = await lab.fetch(
        "SELECT id::text AS id FROM product_import_jobs WHERE started_at IS NOT NULL ORDER BY started_at, id"
    )
    order = [r["id"] for r in rows]
    assert order[0] == vip_job, "VIP jobs start before every other waiting job"
    # The small tenant's one job is the first or second start after the VIP one (the ring breaks
    # the tie between two tenants that never started a job by id), never after the big backlog.
    assert small_job in order[1:3], f"small tenant's job started at position {order.index(small_job)}"
    assert len(backlog) == 40
    assert (await counters(lab)).get("fair_starts", 0) >= 2


async def test_the_noisy_tenant_is_shed_at_critical_and_overload_while_others_are_admitted(lab: Lab) -> None:
    api = lab.start_api(SMALL)  # no workers: everything submitted waits
    noisy = await api.create_company("noisy", tier="ENTERPRISE", vip=True)
    other = await api.create_company("other", tier="PRO")
    third = await api.create_company("third", tier="PRO")
    pool = iter(await stores(lab, 20))

    for _ in range(6):
        await accepted(api, noisy, next(pool))
    body = await health_where(
        lab, "critical with a noisy tenant", lambda b: b["level"] == "critical" and b["tenants"]["noisy"] == [noisy.id]
    )
    assert body["tenants"]["top_waiting"][0] == {"company_id": noisy.id, "waiting": 6, "share": 1.0}
    # Without the operator token the report has the figures but not who the tenants are.
    public = await lab.api.http.get("/health/queue") if lab.api else None
    assert public is not None and public.status_code == 200
    assert noisy.id not in public.text and public.json()["tenants"]["noisy_count"] == 1

    rows_before = await lab.fetchval("SELECT count(*) FROM product_import_jobs")
    shed = await submit(api, noisy, next(pool))
    assert shed.status_code == 429 and shed.headers["retry-after"] == "17"
    assert shed.json()["code"] == "tenant_shed"
    assert await lab.fetchval("SELECT count(*) FROM product_import_jobs") == rows_before
    for _ in range(3):  # critical: the others keep their normal admission
        await accepted(api, other, next(pool))

    # 9 waiting: overload, and the noisy tenant holds 6 of them, so it alone is the cause.
    await health_where(
        lab, "overload with a noisy tenant", lambda b: b["level"] == "overload" and b["tenants"]["noisy"] == [noisy.id]
    )
    assert (await submit(api, noisy, next(pool))).status_code == 429
    for _ in range(4):  # 6 of 13 is under half: no single cause any more
        await accepted(api, third, next(pool))

    await health_where(lab, "overload without a single cause", lambda b: b["tenants"]["noisy"] == [])
    for tenant in (noisy, other, third):
        refused = await submit(api, tenant, next(pool))
        assert refused.status_code == 503, refused.text
    seen = await counters(lab)
    assert seen["intake_rejected_tenant_shed"] == 2 and seen["intake_rejected_tenant_shed:ENTERPRISE"] == 2
    assert seen["intake_admitted_beside_noisy_tenant"] == 4
    assert seen["intake_rejected_overload"] == 3


async def test_the_tenant_brake_pauses_only_the_noisy_tenant_and_resumes_it_by_itself(lab: Lab) -> None:
    # Long enough for a worker process to start and run the quiet tenant's job while paused.
    brake = {**SMALL, **env(brake_resume_after=15, brake_cooldown=60)}
    api = lab.start_api(brake)
    reconciler = lab.start_reconciler(brake)
    noisy = await api.create_company("noisy", tier="PRO")
    quiet = await api.create_company("quiet", tier="PRO")
    pool = iter(await stores(lab, 12))
    flood = [await accepted(api, noisy, next(pool)) for _ in range(9)]

    def tenant_pause() -> dict[str, Any] | None:
        with lab.redis() as r:
            raw = r.hget("importer:tenant:paused", noisy.id)
        return None if raw is None else dict(json.loads(raw))

    paused = await wait_for(lambda: asyncio.sleep(0, result=tenant_pause()), timeout=15, what="the tenant pause")
    assert paused["mode"] == "auto" and paused["backlog_at_pause"] == 9
    with lab.redis() as r:
        assert r.get("importer:queue:paused") is None, "one tenant's overload must not pause the queue"
    quiet_job = await accepted(api, quiet, next(pool))  # admitted beside the noisy tenant

    await asyncio.to_thread(lab.start_worker, brake)
    assert (await api.wait_terminal(quiet, quiet_job, timeout=30))["status"] == "COMPLETED"
    noisy_started = await lab.fetchval(
        "SELECT count(*) FROM product_import_jobs WHERE company_id = $1::uuid AND started_at IS NOT NULL", noisy.id
    )
    still_paused = tenant_pause() is not None  # read after the count: the count was taken while paused
    assert still_paused, "the worker was too slow to observe the tenant pause; raise brake_resume_after"
    assert noisy_started == 0
    body = await lab.queue_health()
    assert noisy.id in body["paused_tenants"] and body["paused"] is None

    # The noisy tenant's backlog did not grow while paused (it was shed): it resumes by itself.
    await wait_for(lambda: asyncio.sleep(0, result=tenant_pause() is None), timeout=40, what="the tenant resume")
    finished = await asyncio.gather(*(api.wait_terminal(noisy, j, timeout=60) for j in flood))
    assert {f["status"] for f in finished} == {"COMPLETED"}
    with lab.redis() as r:
        assert r.exists(f"importer:tenant:cooldown:{noisy.id}")
        assert r.get("importer:queue:paused") is None

    log = [json.loads(line) for line in reconciler.log_path.read_text().splitlines() if line.startswith("{")]
    paused_line = next(x for x in log if x["event"] == "tenant_auto_paused")
    assert paused_line["alert"] is True and paused_line["company_id"] == noisy.id
    assert any(x["event"] == "tenant_auto_resumed" for x in log)
    assert not any(x["event"] == "queue_auto_paused" for x in log)


async def test_a_job_requeued_by_the_orphan_sweep_goes_back_into_its_tenants_queue(lab: Lab) -> None:
    api = lab.start_api()  # no workers: the job stays queued
    tenant = await api.create_company("orphaned")
    (store,) = await stores(lab, 1)
    job = await accepted(api, tenant, store)
    tenant_queue = f"importer:tenantq:{tenant.id}"
    with lab.redis() as r:
        assert r.zscore(tenant_queue, job) is not None and r.zscore("importer:tenant:ring", tenant.id) is not None
        r.delete("arq:queue", tenant_queue, "importer:tenant:ring", f"arq:job:{job}")  # Redis forgot it

    out = await lab.aops("requeue-orphans", overrides=env(orphan_min_age=0))
    assert out.returncode == 0, out.stdout + out.stderr
    with lab.redis() as r:
        assert r.zscore("arq:queue", job) is not None
        assert r.zscore(tenant_queue, job) is not None, "re-queued jobs keep their fair start"
        assert r.zscore("importer:tenant:ring", tenant.id) is not None
