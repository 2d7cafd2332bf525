"""A provider that fails every request: the breaker opens after 5 failures, only probes reach
the provider while it is open, jobs are deferred (not failed), and all complete on recovery."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

from tests.integration.importer.protection.helpers import Lab, env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

WORKERS, CONCURRENCY = 2, 2


def history(lab: Lab) -> list[dict]:
    with lab.redis() as r:
        return [json.loads(x) for x in reversed(r.lrange("importer:breaker:roastify:history", 0, -1))]


async def test_open_breaker_lets_only_probes_through_and_jobs_complete_after_recovery(lab: Lab) -> None:
    overrides = env(provider_page_size=10, worker_concurrency=CONCURRENCY)
    api = lab.start_api(overrides)
    await asyncio.gather(*(asyncio.to_thread(lab.start_worker, overrides) for _ in range(WORKERS)))
    tenant = await api.create_company("outage")
    store = await lab.provider.create_store("roastify", products=20, images_per_product=0)
    await lab.provider.set_faults(error_rate=1.0, error_status=500)
    started = time.time()
    jobs = [await api.submit(tenant, "roastify", store, include_images=False) for _ in range(4)]

    async def reopened_twice() -> list[dict] | None:
        h = history(lab)
        return h if sum(1 for x in h if x["state"] == "open") >= 3 else None

    await wait_for(reopened_twice, timeout=60, interval=0.2, what="the breaker to open and fail two probes")
    with lab.redis() as r:
        deferred = int(r.hget("importer:counters", "jobs_deferred") or 0)
    assert deferred >= 1
    statuses = {row["status"] for row in await lab.fetch("SELECT status FROM product_import_jobs")}
    assert "FAILED" not in statuses

    await lab.provider.clear_faults()
    finished = await asyncio.gather(*(api.wait_terminal(tenant, j, timeout=90) for j in jobs))
    assert [f["status"] for f in finished] == ["COMPLETED"] * 4, finished

    h = history(lab)
    assert h[-1]["state"] == "closed" and h[-1]["reason"] == "probe succeeded"
    requests = (await lab.provider.http.get("/admin/requests", params={"since": started, "store_id": store})).json()
    api_requests = sorted((r for r in requests if r["kind"] == "api"), key=lambda r: r["ts"])
    first_open = next(x["at"] for x in h if x["state"] == "open")
    closed_at = h[-1]["at"]

    before = [r for r in api_requests if r["ts"] < first_open]
    assert 5 <= len(before) <= 5 + WORKERS * CONCURRENCY - 1, before
    assert all(r["status"] == 500 for r in before)

    # Between the first opening and the final close, a request is either the one probe of a
    # half-open period, or was already on the wire when the breaker opened.
    periods = [(a["at"], b["at"]) for a, b in itertools.pairwise(h) if a["state"] == "half_open"]
    during = [r for r in api_requests if first_open <= r["ts"] < closed_at]
    in_flight_at_open = [r for r in during if not any(s <= r["ts"] <= e for s, e in periods)]
    assert len(in_flight_at_open) <= WORKERS * CONCURRENCY - 1, in_flight_at_open
    for s, e in periods:
        probes = [r for r in during if s <= r["ts"] <= e]
        assert len(probes) <= 1, (s, e, probes)
    assert len(periods) >= 3

    rows = await lab.fetch("SELECT status, error FROM product_import_jobs")
    assert {r["status"] for r in rows} == {"COMPLETED"}
