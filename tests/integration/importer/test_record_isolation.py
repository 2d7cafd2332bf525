"""One bad record never fails its job; pages that do not add up never pass as a clean import.

Real services: the fake provider serves catalogs with every kind of bad record, a dead image
host and broken pagination; the importer must import every good product, reject every bad one
with its code, and say what it could not verify.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

from tests.support.importer_api import FakeProvider, ImporterApi
from tests.support.store_state import read_state
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

RECORD_FAULTS = {
    "missing_id": [3],
    "bad_price": [17],
    "nul_title": [25],
    "surrogate_title": [40],
    "long_title": [58],
    "price_infinity": [101],
    "price_nan": [102],
    "price_huge_exponent": [130],
    "price_negative": [160],
    "price_over_range": [199],
    "too_many_images": [230],
}
IMAGE_FAULTS = {"dead_host": [7], "ipv6_url": [8], "port_url": [9], "non_image": [10]}
# The dead host hangs longer than the image timeout; two attempts, then image_unreachable.
FAST_IMAGES = {
    "IMPORTER_IMAGE_TIMEOUT": "1",
    "IMPORTER_IMAGE_MAX_ATTEMPTS": "2",
    "IMPORTER_IMAGE_RETRY_DELAY": "0.2",
}


async def _db_rows(stack, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
async def test_every_good_record_imports_and_every_bad_one_is_rejected_with_its_code(
    stack, api: ImporterApi, provider: FakeProvider, dialect: str
):
    stack.start_worker(env=FAST_IMAGES)
    tenant = await api.create_company(f"messy-{dialect}")
    store = await provider.create_store(
        dialect,
        products=250,
        images_per_product=1,
        seed=21,
        bad_records=RECORD_FAULTS,
        bad_images=IMAGE_FAULTS,
        dead_host_ms=3_000,
    )
    expected = await provider.expected(store)
    started = time.monotonic()
    job = await api.wait_terminal(tenant, await api.submit(tenant, dialect, store), timeout=180)
    print(f"{dialect} messy catalog imported in {time.monotonic() - started:.1f}s")

    assert job["status"] == "COMPLETED", job
    assert job["outcome"] == "WITH_REJECTIONS"
    good = {p["external_id"] for p in expected["products"] if p["expect"] == "imported"}
    assert len(good) == 250 - 11
    assert job["counts"]["products_imported"] == len(good)
    assert job["products_rejected"] == 11 == job["counts"]["products_rejected"]
    assert job["rejections"] == expected["counts"]["rejections"]
    assert job["rejections"] == {
        "missing_field": 1,
        "invalid_field": 1,
        "text_not_storable": 2,
        "text_too_long": 1,
        "number_not_finite": 2,
        "number_out_of_range": 3,
        "too_many_images": 1,
        "image_unreachable": 1,
        "image_url_invalid": 2,
        "image_not_image": 1,
    }
    assert job["verification_issues"] == []

    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, dialect, store)
    assert set(state.external_ids) == good and max(state.external_ids.values()) == 1
    want_images = {(p["external_id"], i["url"]): i for p in expected["products"] for i in p["images"]}
    assert {(r["external_id"], r["source_url"]) for r in state.image_rows} == set(want_images)
    rows = await _db_rows(
        stack,
        """SELECT p.external_id, i.source_url, i.status, i.error_code, i.attempts
             FROM product_images i JOIN products p ON p.id = i.product_id
            WHERE i.company_id = $1 AND i.import_source = $2""",
        tenant.id,
        f"{dialect}:{store}",
    )
    for row in rows:
        want = want_images[(row["external_id"], row["source_url"])]
        assert row["status"] == ("STORED" if want["expect"] == "stored" else "REJECTED"), row
        assert row["error_code"] == want["code"], row
        if want["code"] == "image_unreachable":
            assert row["attempts"] == 2  # its own budget, spent; the job was never failed for it
    assert job["counts"]["images_stored"] == len(state.originals) == len(good) - 4

    detail = await _db_rows(
        stack, "SELECT kind, external_id, code, reason, position FROM import_rejections WHERE job_id = $1", job["id"]
    )
    assert Counter(d["code"] for d in detail) == Counter(job["rejections"])
    assert all(d["reason"] for d in detail)
    by_index = {p["external_id"]: i for i, p in enumerate(expected["products"])}
    products = [d for d in detail if d["kind"] == "product"]
    named = {by_index[d["external_id"]] for d in products if d["external_id"]}
    assert named == {i for indices in RECORD_FAULTS.values() for i in indices} - {3}  # index 3 has no id


async def test_rejection_detail_is_capped_but_counts_are_complete(stack, api: ImporterApi, provider: FakeProvider):
    stack.start_worker(env={"IMPORTER_REJECTION_DETAIL_LIMIT": "5"})
    tenant = await api.create_company("many-bad")
    store = await provider.create_store(
        "roastify", products=120, images_per_product=0, bad_records={"nul_title": list(range(0, 120, 5))}
    )
    job = await api.wait_terminal(tenant, await api.submit(tenant, "roastify", store), timeout=90)
    assert job["status"] == "COMPLETED" and job["outcome"] == "WITH_REJECTIONS"
    assert job["products_rejected"] == 24 and job["rejections"] == {"text_not_storable": 24}
    assert job["counts"]["products_imported"] == 96
    rows = await _db_rows(stack, "SELECT count(*) AS n FROM import_rejections WHERE job_id = $1", job["id"])
    assert rows[0]["n"] == 5


async def test_a_clean_catalog_completes_clean(stack, api: ImporterApi, provider: FakeProvider):
    stack.start_worker()
    tenant = await api.create_company("clean")
    store = await provider.create_store("shopify", products=120, images_per_product=0)
    job = await api.wait_terminal(tenant, await api.submit(tenant, "shopify", store), timeout=90)
    assert (job["status"], job["outcome"], job["rejections"], job["verification_issues"]) == (
        "COMPLETED",
        "CLEAN",
        {},
        [],
    )


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
async def test_a_cycling_cursor_ends_the_job_in_bounded_time_with_a_reason(
    stack, api: ImporterApi, provider: FakeProvider, dialect: str
):
    stack.start_worker()
    tenant = await api.create_company(f"cycle-{dialect}")
    store = await provider.create_store(dialect, products=450, images_per_product=0, pagination={"cycle_at_page": 2})
    job = await api.wait_terminal(tenant, await api.submit(tenant, dialect, store), timeout=90)
    assert job["status"] == "COMPLETED" and job["outcome"] == "UNVERIFIED", job
    [issue] = [i for i in job["verification_issues"] if i["code"] == "cursor_cycle"]
    assert "already fetched" in issue["detail"]
    assert job["counts"]["products_imported"] == 200  # pages 1 and 2 of 100; the rest is unreachable
    assert job["counts"]["pages_fetched"] == 2


@pytest.mark.parametrize("dialect", ["roastify", "shopify"])
async def test_a_catalog_that_never_ends_is_stopped(stack, api: ImporterApi, provider: FakeProvider, dialect: str):
    stack.start_worker(
        env={
            "IMPORTER_MAX_CATALOG_PAGES": "8",
            "IMPORTER_CATALOG_PAGES_SLACK": "3",
            # The stale-page stop has its own test below; here the page cap and the declared total.
            "IMPORTER_CATALOG_STALE_PAGES_LIMIT": "1000",
        }
    )
    tenant = await api.create_company(f"endless-{dialect}")
    store = await provider.create_store(dialect, products=150, images_per_product=0, pagination={"endless": True})
    job = await api.wait_terminal(tenant, await api.submit(tenant, dialect, store), timeout=90)
    assert job["status"] == "COMPLETED" and job["outcome"] == "UNVERIFIED", job
    codes = {i["code"] for i in job["verification_issues"]}
    assert "page_limit_exceeded" in codes and "repeated_products" in codes
    # Roastify declares 2 pages on its first page: 2 + slack 3. Shopify declares none: the cap.
    assert job["counts"]["pages_fetched"] == (5 if dialect == "roastify" else 8)
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, dialect, store)
    assert len(state.external_ids) == 150


async def test_a_catalog_without_a_declared_total_stops_once_pages_list_nothing_new(
    stack, api: ImporterApi, provider: FakeProvider
):
    """Shopify declares no total: with the production page cap (100,000 pages) only the
    stale-page rule bounds a catalog whose fresh cursors wrap around to the same products."""
    stack.start_worker(env={"IMPORTER_CATALOG_STALE_PAGES_LIMIT": "3"})
    tenant = await api.create_company("endless-stale")
    store = await provider.create_store("shopify", products=150, images_per_product=0, pagination={"endless": True})
    job = await api.wait_terminal(tenant, await api.submit(tenant, "shopify", store), timeout=90)
    assert job["status"] == "COMPLETED" and job["outcome"] == "UNVERIFIED", job
    [stop] = [i for i in job["verification_issues"] if i["code"] == "page_limit_exceeded"]
    assert "only products already seen" in stop["detail"], stop
    assert job["counts"]["pages_fetched"] <= 2 + 3 + 1, job["counts"]
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, "shopify", store)
    assert len(state.external_ids) == 150


@pytest.mark.parametrize(
    ("dialect", "pagination", "codes"),
    [
        ("roastify", {"short_pages": [120, 121]}, {"short_page", "total_mismatch"}),
        ("shopify", {"short_pages": [10]}, {"short_page"}),
        ("roastify", {"total_offset": 5}, {"total_mismatch"}),
        ("shopify", {"repeat_products": [50, 99]}, {"repeated_products"}),
    ],
)
async def test_pages_that_do_not_add_up_complete_unverified(
    stack, api: ImporterApi, provider: FakeProvider, dialect: str, pagination: dict, codes: set[str]
):
    stack.start_worker()
    tenant = await api.create_company(f"unverified-{dialect}")
    store = await provider.create_store(dialect, products=250, images_per_product=0, pagination=pagination)
    expected = await provider.expected(store)
    job = await api.wait_terminal(tenant, await api.submit(tenant, dialect, store), timeout=90)
    assert job["status"] == "COMPLETED" and job["outcome"] == "UNVERIFIED", job
    assert {i["code"] for i in job["verification_issues"]} == codes == set(expected["counts"]["verification_issues"])
    state = await read_state(stack.database_url, stack.s3_endpoint, stack.s3_bucket, tenant.id, dialect, store)
    assert set(state.external_ids) == {p["external_id"] for p in expected["products"] if p["expect"] == "imported"}
    assert max(state.external_ids.values()) == 1


async def test_a_resumed_job_counts_each_rejection_once(stack, api: ImporterApi, provider: FakeProvider):
    """Rejections are counted in the page's own transaction: a SIGKILL between pages and the
    takeover by another worker (which replays at most the page in flight) count none twice."""
    fast = {"IMPORTER_LEASE_SECONDS": "3", "IMPORTER_WORKER_POLL_DELAY": "0.1"}
    victim = stack.start_worker(env=fast, worker_id="rejections-victim")
    tenant = await api.create_company("resumed-rejections")
    pages = 20
    bad = [p * 100 + 7 for p in range(pages)]  # one bad record on every page
    store = await provider.create_store(
        "roastify", products=pages * 100, images_per_product=0, page_latency_ms=400, bad_records={"nul_title": bad}
    )
    job_id = await api.submit(tenant, "roastify", store)
    db = await asyncpg.connect(stack.database_url)
    try:
        await wait_for(
            lambda: db.fetchval("SELECT pages_fetched >= 1 FROM product_import_jobs WHERE id = $1", job_id),
            timeout=60,
            what="the victim to start the job",
        )
        # ready before the kill, so the kill lands mid-import whatever a worker's start costs
        stack.start_worker(env=fast, worker_id="rejections-survivor")
        await wait_for(
            lambda: db.fetchval("SELECT pages_fetched >= 3 FROM product_import_jobs WHERE id = $1", job_id),
            timeout=60,
            what="the victim to fetch three pages",
        )
        assert await db.fetchval("SELECT status FROM product_import_jobs WHERE id = $1", job_id) == "IN_PROGRESS"
        victim.kill(signal.SIGKILL)
        job = await api.wait_terminal(tenant, job_id, timeout=120)
        detail = await db.fetchval("SELECT count(*) FROM import_rejections WHERE job_id = $1", job_id)
    finally:
        await db.close()
    assert job["status"] == "COMPLETED" and job["attempts"] == 2, job
    assert job["outcome"] == "WITH_REJECTIONS"
    assert job["products_rejected"] == pages and job["rejections"] == {"text_not_storable": pages}
    assert job["counts"]["products_imported"] == pages * 99
    assert detail == pages
