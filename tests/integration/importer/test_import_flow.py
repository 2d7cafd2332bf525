"""An import end to end against real services: what goes in must come out, exactly once."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.store_state import assert_matches_expected, read_state

pytestmark = pytest.mark.integration


async def test_thousand_products_with_two_images_each_import_exactly(stack, api: ImporterApi, provider: FakeProvider):
    worker = stack.start_worker()
    tenant = await api.create_company("big-catalog")
    store = await provider.create_store("roastify", products=1000, images_per_product=2, seed=11)
    started = time.monotonic()
    job_id = await api.submit(tenant, "roastify", store)
    job = await api.wait_terminal(tenant, job_id, timeout=300)
    elapsed = time.monotonic() - started

    assert job["status"] == "COMPLETED", job
    assert job["counts"]["products_imported"] == 1000
    assert job["counts"]["images_stored"] == 2000
    assert job["counts"]["thumbnails_created"] == 2000
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "roastify", store)
    assert_matches_expected(state, await provider.expected(store))
    assert len(state.originals) == 2000 and len(state.thumbnails) == 2000
    print(f"1000 products + 2000 images in {elapsed:.1f}s end to end ({2000 / elapsed:.0f} images/s)")
    worker.stop()


async def test_shopify_dialect_imports_exactly(stack, api: ImporterApi, provider: FakeProvider):
    stack.start_worker()
    tenant = await api.create_company("shopify-shop")
    store = await provider.create_store("shopify", products=230, images_per_product=1, seed=5)
    job = await api.wait_terminal(tenant, await api.submit(tenant, "shopify", store), timeout=180)
    assert job["status"] == "COMPLETED", job
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "shopify", store)
    assert_matches_expected(state, await provider.expected(store))


async def test_events_stream_phases_and_ends_with_the_terminal_state(stack, api: ImporterApi, provider: FakeProvider):
    stack.start_worker()
    tenant = await api.create_company("follower")
    store = await provider.create_store("roastify", products=120, images_per_product=1, seed=3, page_latency_ms=200)
    job_id = await api.submit(tenant, "roastify", store)
    events: list[tuple[str, dict]] = []
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http,
        http.stream("GET", f"/v1/imports/{job_id}/events", headers=tenant.headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = "message"
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "snapshot"
    assert "phase" in kinds and "progress" in kinds
    last_kind, last = events[-1]
    assert last_kind == "status" and last["status"] == "COMPLETED" and last["terminal"] is True


async def test_correlation_id_travels_from_request_to_job(stack, api: ImporterApi, provider: FakeProvider):
    tenant = await api.create_company("traced")
    store = await provider.create_store("roastify", products=5, images_per_product=0)
    r = await api.http.post(
        "/v1/imports",
        json={"provider": "roastify", "store_id": store},
        headers={**tenant.headers, "X-Correlation-ID": "trace-abc-123"},
    )
    assert r.status_code == 202 and r.headers["x-correlation-id"] == "trace-abc-123"
    worker = stack.start_worker()
    job = await api.wait_terminal(tenant, r.json()["id"], timeout=60)
    assert job["status"] == "COMPLETED"
    worker.stop()
    lines = [json.loads(x) for x in worker.log_path.read_text().splitlines() if x.startswith("{")]
    traced = [x for x in lines if x.get("job_id") == r.json()["id"]]
    ours = [x for x in traced if x["logger"].startswith("importer")]
    assert ours and all(x.get("correlation_id") == "trace-abc-123" for x in ours)
