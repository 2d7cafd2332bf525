"""What an import left behind in Postgres and S3, read directly (not through the importer)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
import boto3


@dataclass
class ImportState:
    external_ids: Counter[str]
    image_rows: list[dict[str, Any]]
    originals: Counter[str]
    thumbnails: Counter[str]


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def list_keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    client = s3_client(endpoint)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


async def read_state(
    database_url: str, s3_endpoint: str, bucket: str, company_id: str, provider: str, store_id: str
) -> ImportState:
    source = f"{provider}:{store_id}"
    conn = await asyncpg.connect(database_url)
    try:
        products = await conn.fetch(
            "SELECT external_id FROM products WHERE company_id = $1 AND import_source = $2", company_id, source
        )
        images = await conn.fetch(
            """SELECT p.external_id, i.source_url, i.status, i.s3_key, i.thumbnail_key, i.error
                 FROM product_images i JOIN products p ON p.id = i.product_id
                WHERE i.company_id = $1 AND i.import_source = $2""",
            company_id,
            source,
        )
    finally:
        await conn.close()
    originals = await asyncio.to_thread(list_keys, s3_endpoint, bucket, f"images/{company_id}/{provider}/{store_id}/")
    thumbs = await asyncio.to_thread(list_keys, s3_endpoint, bucket, f"thumbnails/{company_id}/{provider}/{store_id}/")
    return ImportState(
        external_ids=Counter(r["external_id"] for r in products),
        image_rows=[dict(r) for r in images],
        originals=Counter(originals),
        thumbnails=Counter(thumbs),
    )


def assert_matches_expected(state: ImportState, expected: dict[str, Any]) -> None:
    """Every expected product once, every storable image once with both objects, nothing else."""
    want_ids = {p["external_id"] for p in expected["products"] if not p.get("malformed")}
    assert set(state.external_ids) == want_ids, "products differ from the catalog"
    assert max(state.external_ids.values(), default=1) == 1, "a product is duplicated"
    want_images = {(p["external_id"], img["url"]): img["expect"] for p in expected["products"] for img in p["images"]}
    got = Counter((r["external_id"], r["source_url"]) for r in state.image_rows)
    assert set(got) == set(want_images), "image rows differ from the catalog"
    assert max(got.values(), default=1) == 1, "an image row is duplicated"
    stored = [r for r in state.image_rows if r["status"] == "STORED"]
    for row in state.image_rows:
        expect = want_images[(row["external_id"], row["source_url"])]
        assert row["status"] == ("STORED" if expect == "stored" else "REJECTED"), row
    assert set(state.originals) == {r["s3_key"] for r in stored}
    assert set(state.thumbnails) == {r["thumbnail_key"] for r in stored}
