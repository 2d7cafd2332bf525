"""Idempotent intake: an Idempotency-Key makes POST /v1/imports safe to retry, and a store has
at most one active job per company (a second submit answers the running one)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support.importer_api import ImporterApi, Tenant

pytestmark = pytest.mark.integration


async def _rows(stack, company_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return list(
            await conn.fetch(
                "SELECT id, status, idempotency_key, request_hash FROM product_import_jobs WHERE company_id = $1",
                company_id,
            )
        )
    finally:
        await conn.close()


async def _finish(stack, job_id: str) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE product_import_jobs SET status = 'COMPLETED', phase = 'done', finished_at = now() WHERE id = $1",
            job_id,
        )
    finally:
        await conn.close()


async def _post(api: ImporterApi, tenant: Tenant, body: dict, key: str | None = None):
    headers = {**tenant.headers, **({"Idempotency-Key": key} if key is not None else {})}
    return await api.http.post("/v1/imports", json=body, headers=headers)


async def test_same_key_and_body_answers_the_same_job(stack, api: ImporterApi):
    tenant = await api.create_company("idem-same")
    first = await _post(api, tenant, {"provider": "roastify", "store_id": "st_a"}, key="order-1")
    assert first.status_code == 202 and first.json()["existing"] is False
    await _finish(stack, first.json()["id"])  # even after the job ended, the key names it
    # The same request, canonically: defaults spelled out, keys in another order.
    again = await _post(
        api, tenant, {"include_images": True, "store_id": "st_a", "provider": "roastify"}, key="order-1"
    )
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["existing"] is True
    assert len(await _rows(stack, tenant.id)) == 1


async def test_same_key_with_another_body_is_a_409(stack, api: ImporterApi):
    tenant = await api.create_company("idem-reused")
    first = await _post(api, tenant, {"provider": "roastify", "store_id": "st_b"}, key="k-2")
    assert first.status_code == 202
    other = await _post(api, tenant, {"provider": "roastify", "store_id": "st_c"}, key="k-2")
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "idempotency_key_reused" and other.json()["error"]
    assert len(await _rows(stack, tenant.id)) == 1


async def test_keys_are_scoped_to_the_company(stack, api: ImporterApi):
    one, two = await api.create_company("idem-one"), await api.create_company("idem-two")
    a = await _post(api, one, {"provider": "roastify", "store_id": "st_d"}, key="shared")
    b = await _post(api, two, {"provider": "shopify", "store_id": "st_e"}, key="shared")
    assert a.status_code == b.status_code == 202 and a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
async def test_invalid_keys_are_refused(stack, api: ImporterApi, key):
    tenant = await api.create_company("idem-invalid")
    headers = {**tenant.headers, "Idempotency-Key": key.encode("utf-8")}
    r = await api.http.post("/v1/imports", json={"provider": "roastify", "store_id": "st_f"}, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error" and "Idempotency-Key" in r.json()["error"]
    assert await _rows(stack, tenant.id) == []


async def test_concurrent_double_submits_with_one_key_create_one_job(stack, api: ImporterApi):
    tenant = await api.create_company("idem-race")
    body = {"provider": "roastify", "store_id": "st_race"}
    answers = await asyncio.gather(*(_post(api, tenant, body, key="retry-storm") for _ in range(12)))
    assert all(r.status_code == 202 for r in answers), [r.text for r in answers if r.status_code != 202]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(1 for r in answers if not r.json()["existing"]) == 1
    assert len(await _rows(stack, tenant.id)) == 1


async def test_one_active_job_per_store(stack, api: ImporterApi):
    tenant = await api.create_company("one-active")
    body = {"provider": "roastify", "store_id": "st_once"}
    answers = await asyncio.gather(*(_post(api, tenant, body) for _ in range(8)))  # no keys, racing
    assert all(r.status_code == 202 for r in answers), [r.text for r in answers if r.status_code != 202]
    ids = {r.json()["id"] for r in answers}
    assert len(ids) == 1 and sum(1 for r in answers if not r.json()["existing"]) == 1
    running = ids.pop()
    # Another provider or another store is another job; the same store after the job ended too.
    other_store = await _post(api, tenant, {"provider": "roastify", "store_id": "st_twice"})
    other_provider = await _post(api, tenant, {"provider": "shopify", "store_id": "st_once"})
    assert other_store.json()["id"] != running and other_provider.json()["id"] != running
    await _finish(stack, running)
    fresh = await _post(api, tenant, body)
    assert fresh.status_code == 202 and fresh.json()["existing"] is False and fresh.json()["id"] != running
    assert len(await _rows(stack, tenant.id)) == 4
