"""Batched, idempotent writes of products and their image rows.

One statement per batch (``unnest`` of arrays), never a row at a time: a 1,000-product page
costs two round trips, and ``ON CONFLICT`` makes a replayed page (a retried or raced job)
update rows in place instead of duplicating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from importer.models import ProductRecord


@dataclass(frozen=True)
class PendingImage:
    id: UUID
    product_external_id: str
    source_url: str


async def upsert_products(
    conn: Any, *, company_id: UUID, import_source: str, job_id: UUID, products: list[ProductRecord]
) -> dict[str, UUID]:
    """Upsert a batch; return external_id → product id."""
    if not products:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO products (company_id, import_source, last_job_id, external_id, title, description,
                              price_cents, currency)
        SELECT $1, $2, $3, e, t, d, p, c
          FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[]) AS u(e, t, d, p, c)
        ON CONFLICT (company_id, external_id, import_source) DO UPDATE
           SET title = EXCLUDED.title, description = EXCLUDED.description,
               price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency,
               last_job_id = EXCLUDED.last_job_id, updated_at = now()
        RETURNING id, external_id
        """,
        company_id,
        import_source,
        job_id,
        [p.external_id for p in products],
        [p.title for p in products],
        [p.description for p in products],
        [p.price_cents for p in products],
        [p.currency for p in products],
    )
    return {r["external_id"]: r["id"] for r in rows}


async def insert_images(
    conn: Any,
    *,
    company_id: UUID,
    import_source: str,
    product_ids: dict[str, UUID],
    products: list[ProductRecord],
) -> int:
    """Add image rows not seen before (PENDING); return how many were new."""
    pids: list[UUID] = []
    urls: list[str] = []
    positions: list[int] = []
    for product in products:
        pid = product_ids[product.external_id]
        for position, url in enumerate(product.image_urls):
            pids.append(pid)
            urls.append(url)
            positions.append(position)
    if not urls:
        return 0
    status: str = await conn.execute(
        """
        INSERT INTO product_images (company_id, import_source, product_id, source_url, position)
        SELECT $1, $2, p, u, n FROM unnest($3::uuid[], $4::text[], $5::int[]) AS x(p, u, n)
        ON CONFLICT (product_id, source_url) DO NOTHING
        """,
        company_id,
        import_source,
        pids,
        urls,
        positions,
    )
    return int(status.rsplit(" ", 1)[-1])


async def pending_images(
    conn: Any, *, company_id: UUID, import_source: str, after: UUID | None, limit: int
) -> list[PendingImage]:
    """The next batch of images still to store, in id order (keyset pagination)."""
    rows = await conn.fetch(
        """
        SELECT i.id, p.external_id, i.source_url
          FROM product_images i JOIN products p ON p.id = i.product_id
         WHERE i.company_id = $1 AND i.import_source = $2 AND i.status = 'PENDING'
           AND ($3::uuid IS NULL OR i.id > $3)
         ORDER BY i.id
         LIMIT $4
        """,
        company_id,
        import_source,
        after,
        limit,
    )
    return [PendingImage(id=r["id"], product_external_id=r["external_id"], source_url=r["source_url"]) for r in rows]


async def mark_images_stored(conn: Any, rows: list[tuple[UUID, str, str, str | None, int | None]]) -> None:
    """rows: (image id, s3 key, thumbnail key, content type, byte size); None keeps what is there."""
    if not rows:
        return
    await conn.execute(
        """
        UPDATE product_images i
           SET status = 'STORED', s3_key = u.k, thumbnail_key = u.t,
               content_type = coalesce(u.c, i.content_type), byte_size = coalesce(u.b, i.byte_size),
               error = NULL, updated_at = now()
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) AS u(id, k, t, c, b)
         WHERE i.id = u.id
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
    )


async def mark_images_rejected(conn: Any, rows: list[tuple[UUID, str]]) -> None:
    """rows: (image id, reason)."""
    if not rows:
        return
    await conn.execute(
        """
        UPDATE product_images i SET status = 'REJECTED', error = u.e, updated_at = now()
          FROM unnest($1::uuid[], $2::text[]) AS u(id, e)
         WHERE i.id = u.id
        """,
        [r[0] for r in rows],
        [r[1][:1000] for r in rows],
    )


async def image_counts(conn: Any, *, company_id: UUID, import_source: str) -> tuple[int, int, int, int]:
    """(total, stored, rejected, thumbnails) for one company's source."""
    row = await conn.fetchrow(
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE status = 'STORED') AS stored,
               count(*) FILTER (WHERE status = 'REJECTED') AS rejected,
               count(thumbnail_key) AS thumbs
          FROM product_images WHERE company_id = $1 AND import_source = $2
        """,
        company_id,
        import_source,
    )
    return int(row["total"]), int(row["stored"]), int(row["rejected"]), int(row["thumbs"])
