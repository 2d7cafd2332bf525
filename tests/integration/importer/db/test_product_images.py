"""Image rows on a re-import: an image given up on as unreachable gets a fresh budget, every
other rejection stays final (against the session stack's real Postgres)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from importer.db import products
from importer.models import ProductRecord
from tests.support.importer_api import ImporterApi

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def db(stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_reimport_revives_unreachable_images_only(stack, api: ImporterApi, db) -> None:
    tenant = await api.create_company("image-revival")
    company = uuid.UUID(tenant.id)
    source = f"roastify:revival-{uuid.uuid4()}"
    dead, not_image, fresh = "http://cdn.example/dead.jpg", "http://cdn.example/text.jpg", "http://cdn.example/new.jpg"
    product = ProductRecord("p1", "Mug", "", 100, "USD", (dead, not_image))
    ids = await products.upsert_products(
        db, company_id=company, import_source=source, job_id=uuid.uuid4(), products=[product]
    )
    await products.insert_images(db, company_id=company, import_source=source, product_ids=ids, products=[product])
    await db.execute(
        """UPDATE product_images SET status = 'REJECTED', attempts = 3,
                  error_code = CASE WHEN source_url = $2 THEN 'image_unreachable' ELSE 'image_not_image' END,
                  error = 'given up'
            WHERE product_id = $1""",
        ids["p1"],
        dead,
    )

    again = ProductRecord("p1", "Mug", "", 100, "USD", (dead, not_image, fresh))
    changed = await products.insert_images(
        db, company_id=company, import_source=source, product_ids=ids, products=[again]
    )
    rows = {
        r["source_url"]: dict(r)
        for r in await db.fetch(
            "SELECT source_url, status, attempts, error_code FROM product_images WHERE product_id = $1", ids["p1"]
        )
    }
    assert changed == 2  # the new image, and the unreachable one revived
    assert rows[dead] == {"source_url": dead, "status": "PENDING", "attempts": 0, "error_code": None}
    assert rows[not_image]["status"] == "REJECTED" and rows[not_image]["error_code"] == "image_not_image"
    assert rows[fresh]["status"] == "PENDING"
