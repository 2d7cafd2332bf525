"""Queue health levels follow the queue, and POST /v1/imports sheds load by them."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.integration.importer.protection.helpers import Lab, env, submit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SMALL = env(health_degraded_waiting=3, health_critical_waiting=6, health_overload_waiting=9, overload_retry_after=17)


async def wait_level(lab: Lab, level: str, **counts: int) -> dict:
    """Health is cached (0.3 s here): wait until the report shows ``level`` (and ``counts``)."""

    async def probe() -> dict | None:
        body = await lab.queue_health()
        matches = body["level"] == level and all(body["counts"][k] == v for k, v in counts.items())
        return body if matches else None

    return await wait_for(probe, timeout=10, interval=0.1, what=f"health level {level} with {counts}")


async def new_stores(lab: Lab, n: int) -> list[str]:
    """One store per job: a second submit for a store with an active job answers that job."""
    return [await lab.provider.create_store("roastify", products=1, images_per_product=0) for _ in range(n)]


async def test_levels_move_with_depth_critical_defers_basic_and_overload_refuses(lab: Lab) -> None:
    api = lab.start_api(SMALL)  # no workers: everything submitted waits
    # The load is spread over three ENTERPRISE tenants: none holds half the waiting jobs, so none
    # is "the cause" that would be shed on its own (test_fairness covers that case).
    big = [await api.create_company(f"big-{i}", tier="ENTERPRISE") for i in range(3)]
    enterprise = big[0]
    basic = await api.create_company("small", tier="BASIC")
    stores = iter(await new_stores(lab, 12))
    assert (await wait_level(lab, "healthy"))["counts"]["waiting"] == 0

    for tenant in big:
        assert (await submit(api, tenant, next(stores))).status_code == 202
    body = await wait_level(lab, "degraded", waiting=3)
    assert body["oldest_waiting_age"] is not None

    for tenant in big:
        assert (await submit(api, tenant, next(stores))).status_code == 202
    await wait_level(lab, "critical", waiting=6)

    deferred = await submit(api, basic, next(stores))
    at_once = await submit(api, big[1], next(stores))
    assert deferred.status_code == 202 and at_once.status_code == 202
    now_ms = time.time() * 1000
    with lab.redis() as r:
        basic_score = r.zscore("arq:queue", deferred.json()["id"])
        enterprise_score = r.zscore("arq:queue", at_once.json()["id"])
    assert basic_score is not None and basic_score > now_ms + 250_000, "BASIC is deferred ~5 min at critical"
    assert enterprise_score is not None and enterprise_score <= now_ms, "ENTERPRISE runs at once"
    await wait_level(lab, "critical", waiting=7, deferred=1)

    for tenant in (enterprise, big[2]):
        assert (await submit(api, tenant, next(stores))).status_code == 202
    await wait_level(lab, "overload", waiting=9)

    rows_before = await lab.fetchval("SELECT count(*) FROM product_import_jobs")
    for tenant in (enterprise, basic):
        refused = await submit(api, tenant, next(stores))
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "17"
        assert "overloaded" in refused.json()["error"]
    assert await lab.fetchval("SELECT count(*) FROM product_import_jobs") == rows_before

    body = await lab.queue_health()
    assert body["counts"] == {"waiting": 9, "active": 0, "deferred": 1, "failed_last_hour": 0}
    assert body["workers_alive"] == 0 and body["paused"] is None
    assert set(body["breakers"]) == {"roastify", "shopify"}
    with lab.redis() as r:
        counters = {k.decode(): int(v) for k, v in r.hgetall("importer:counters").items()}
    assert counters["intake_rejected_overload"] == 2 and counters["intake_deferred_basic"] == 1


async def test_emergency_brake_pauses_at_overload_alerts_and_resumes_by_itself(lab: Lab) -> None:
    brake = {**SMALL, **env(brake_resume_after=20, brake_cooldown=60)}
    api = lab.start_api(brake)
    reconciler = lab.start_reconciler(brake)
    # Three tenants flood together: no single cause, so the queue-wide brake is the one that acts
    # (one tenant alone would be paused by the tenant brake instead; see test_fairness).
    tenants = [await api.create_company(f"flood-{i}", tier="PRO") for i in range(3)]
    tenant = tenants[0]
    stores = iter(await new_stores(lab, 10))
    submitted = [(t, (await submit(api, t, next(stores))).json()["id"]) for t in tenants for _ in range(3)]

    def pause_flag() -> dict | None:
        with lab.redis() as r:
            raw = r.get("importer:queue:paused")
        return None if raw is None else json.loads(raw)

    paused = await wait_for(lambda: asyncio.sleep(0, result=pause_flag()), timeout=15, what="the automatic pause")
    assert paused["mode"] == "auto" and paused["backlog_at_pause"] == 9
    await wait_level(lab, "overload", waiting=9)
    assert (await submit(api, tenant, next(stores))).status_code == 503  # load is shed while paused

    worker = await asyncio.to_thread(lab.start_worker, brake)
    await asyncio.sleep(1.0)  # the worker polls every 0.1 s: while paused it must take nothing
    started = await lab.fetchval("SELECT count(*) FROM product_import_jobs WHERE started_at IS NOT NULL")
    still_paused = pause_flag() is not None  # read after the count: the count was taken while paused
    assert still_paused, "the worker started too slowly to observe the pause; raise brake_resume_after"
    assert started == 0

    # Backlog did not grow while paused (the API shed load): the brake lifts itself.
    await wait_for(lambda: asyncio.sleep(0, result=pause_flag() is None), timeout=40, what="the automatic resume")
    finished = await asyncio.gather(*(api.wait_terminal(t, j, timeout=60) for t, j in submitted))
    assert {f["status"] for f in finished} == {"COMPLETED"}
    with lab.redis() as r:
        assert r.exists("importer:brake:cooldown"), "hysteresis: no new automatic pause right after a resume"

    log = [json.loads(line) for line in reconciler.log_path.read_text().splitlines() if line.startswith("{")]
    events = [x["event"] for x in log]
    assert "queue_auto_paused" in events and "queue_auto_resumed" in events
    assert next(x for x in log if x["event"] == "queue_auto_paused")["alert"] is True

    # A manual pause is never lifted by the brake.
    r = await api.http.post("/v1/ops/queue/pause", json={"reason": "maintenance"}, headers=api.operator_headers)
    assert r.status_code == 200 and r.json()["pause"]["mode"] == "manual"
    await asyncio.sleep(21)  # longer than brake_resume_after, with health ticks every 0.3 s
    assert pause_flag()["mode"] == "manual"
    r = await api.http.post("/v1/ops/queue/resume", headers=api.operator_headers)
    assert r.status_code == 200 and r.json()["was_paused"]["reason"] == "maintenance"
    assert pause_flag() is None
    assert worker.is_alive()
