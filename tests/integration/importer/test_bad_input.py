"""Bad input gets a clear 4xx and writes nothing; bad data fails only the job (or image) it is in."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.store_state import read_state

pytestmark = pytest.mark.integration


async def _job_rows(stack, company_id: str) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM product_import_jobs WHERE company_id = $1", company_id))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"provider": "etsy", "store_id": "s1"}, 422, "provider"),
        ({"provider": "roastify"}, 422, "store_id"),
        ({"provider": "roastify", "store_id": ""}, 422, "store_id"),
        ({"provider": "roastify", "store_id": "s1", "extra": 1}, 422, "extra"),
    ],
)
async def test_invalid_bodies_are_rejected_with_a_reason(stack, api: ImporterApi, body, status, message):
    tenant = await api.create_company("validator")
    r = await api.http.post("/v1/imports", json=body, headers=tenant.headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert await _job_rows(stack, tenant.id) == 0


async def test_malformed_json_is_a_400(stack, api: ImporterApi):
    tenant = await api.create_company("json")
    headers = {**tenant.headers, "content-type": "application/json"}
    r = await api.http.post("/v1/imports", content=b'{"provider": "roastify",', headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "malformed JSON body"
    assert await _job_rows(stack, tenant.id) == 0


async def test_authentication_and_tenancy(stack, api: ImporterApi, provider: FakeProvider):
    owner = await api.create_company("owner")
    other = await api.create_company("other")
    body = {"provider": "roastify", "store_id": "s1"}
    assert (await api.http.post("/v1/imports", json=body)).status_code == 401
    r = await api.http.post("/v1/imports", json=body, headers={"Authorization": "Bearer pik_wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid API key"
    job_id = await api.submit(owner, "roastify", "s1")
    assert (await api.http.get(f"/v1/imports/{job_id}", headers=other.headers)).status_code == 404
    assert (await api.http.get(f"/v1/imports/{job_id}/events", headers=other.headers)).status_code == 404
    assert (await api.http.get(f"/v1/imports/{job_id}", headers=owner.headers)).status_code == 200
    r = await api.http.post("/v1/ops/companies", json={"name": "x"}, headers=owner.headers)
    assert r.status_code == 401
    r = await api.http.post("/v1/ops/companies", json={"name": "x", "tier": "GOLD"}, headers=api.operator_headers)
    assert r.status_code == 422 and "tier" in r.json()["error"]


async def test_openapi_schema_is_served(api: ImporterApi):
    r = await api.http.get("/openapi.json")
    assert r.status_code == 200
    assert "/v1/imports" in r.json()["paths"]


async def test_unknown_store_fails_the_job_with_a_reason(stack, api: ImporterApi):
    stack.start_worker()
    tenant = await api.create_company("lost-store")
    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", "st_doesnotexist"), timeout=60)
    assert job["status"] == "FAILED"
    assert "404" in job["error"]


async def test_malformed_product_is_rejected_and_the_rest_of_its_job_imports(
    stack, api: ImporterApi, provider: FakeProvider
):
    stack.start_worker()
    tenant = await api.create_company("mixed")
    bad_store = await provider.create_store("roastify", products=250, images_per_product=0, malformed_products=[130])
    good_store = await provider.create_store("roastify", products=250, images_per_product=0)
    bad = await api.submit(tenant, "roastify", bad_store)
    good = await api.submit(tenant, "roastify", good_store)
    bad_job = await api.wait_terminal(tenant, bad, timeout=90)
    good_job = await api.wait_terminal(tenant, good, timeout=90)
    assert bad_job["status"] == "COMPLETED" and bad_job["outcome"] == "WITH_REJECTIONS", bad_job
    assert bad_job["counts"]["products_imported"] == 249 and bad_job["products_rejected"] == 1
    assert bad_job["rejections"] == {"missing_field": 1}  # index 130 is even: its id is missing
    assert bad_job["attempts"] == 1
    assert good_job["status"] == "COMPLETED" and good_job["outcome"] == "CLEAN"
    assert good_job["counts"]["products_imported"] == 250


async def test_bad_images_are_recorded_not_fatal(stack, api: ImporterApi, provider: FakeProvider):
    stack.start_worker(env={"IMPORTER_IMAGE_MAX_BYTES": str(2 * 1024 * 1024)})
    tenant = await api.create_company("pictures")
    store = await provider.create_store(
        "roastify",
        products=10,
        images_per_product=2,
        bad_images={"non_image": [1], "oversized": [2], "bomb": [3]},
        oversized_bytes=3 * 1024 * 1024,
    )
    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", store), timeout=90)
    assert job["status"] == "COMPLETED", job
    assert job["counts"]["images_rejected"] == 3 and job["counts"]["images_stored"] == 17
    assert job["outcome"] == "WITH_REJECTIONS"
    assert job["rejections"] == {"image_not_image": 1, "image_too_large": 1, "image_bomb": 1}
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "roastify", store)
    reasons = sorted(r["error"] for r in state.image_rows if r["status"] == "REJECTED")
    assert any("not an image" in r for r in reasons)
    assert any("cap" in r for r in reasons)
    assert any("decompression bomb" in r for r in reasons)
    assert len(state.originals) == 17 and len(state.thumbnails) == 17
