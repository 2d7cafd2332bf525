"""Batched, idempotent writes of products and their image rows.

One statement per batch (``unnest`` of arrays), never a row at a time: a 1,000-product page
costs two round trips, and ``ON CONFLICT`` makes a replayed page (a retried or raced job)
update rows in place instead of duplicating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from importer.models import ProductRecord, RejectionCode


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
    """Add image rows not seen before (PENDING), and give images rejected as unreachable by an
    earlier import a fresh budget; return how many rows were added or revived."""
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
        ON CONFLICT (product_id, source_url) DO UPDATE
           -- An image given up on because its host kept failing gets a fresh budget when the
           -- catalog is imported again: the host may be back; every other rejection is final.
           SET status = 'PENDING', attempts = 0, error = NULL, error_code = NULL, updated_at = now()
         WHERE product_images.status = 'REJECTED' AND product_images.error_code = 'image_unreachable'
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


async def insert_rejected_images(
    conn: Any,
    *,
    company_id: UUID,
    import_source: str,
    product_ids: dict[str, UUID],
    products: list[ProductRecord],
) -> int:
    """Rows for image URLs refused at parse time (REJECTED at once, with their code).

    The catalog listed them, so they are part of the product's record; only storable URLs get a
    row (the others are counted and kept in ``import_rejections``). Returns how many were new.
    """
    pids: list[UUID] = []
    urls: list[str] = []
    positions: list[int] = []
    codes: list[str] = []
    reasons: list[str] = []
    for product in products:
        for bad in product.rejected_images:
            if bad.url is None:
                continue
            pids.append(product_ids[product.external_id])
            urls.append(bad.url)
            positions.append(bad.position)
            codes.append(bad.code.value)
            reasons.append(bad.reason[:1000])
    if not urls:
        return 0
    status: str = await conn.execute(
        """
        INSERT INTO product_images (company_id, import_source, product_id, source_url, position, status,
                                    error, error_code)
        SELECT $1, $2, p, u, n, 'REJECTED', r, c
          FROM unnest($3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[]) AS x(p, u, n, c, r)
        ON CONFLICT (product_id, source_url) DO NOTHING
        """,
        company_id,
        import_source,
        pids,
        urls,
        positions,
        codes,
        reasons,
    )
    return int(status.rsplit(" ", 1)[-1])


async def mark_images_rejected(
    conn: Any, rows: list[tuple[UUID, RejectionCode, str]]
) -> list[tuple[UUID, RejectionCode]]:
    """rows: (image id, code, reason); returns (id, code) of the rows that were still PENDING.

    Only a PENDING row changes, so a batch replayed after a crash counts each image once.
    """
    if not rows:
        return []
    changed = await conn.fetch(
        """
        UPDATE product_images i SET status = 'REJECTED', error = u.e, error_code = u.c, updated_at = now()
          FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, c, e)
         WHERE i.id = u.id AND i.status = 'PENDING'
        RETURNING i.id, i.error_code
        """,
        [r[0] for r in rows],
        [r[1].value for r in rows],
        [r[2][:1000] for r in rows],
    )
    return [(r["id"], RejectionCode(r["error_code"])) for r in changed]


async def record_image_failures(
    conn: Any, rows: list[tuple[UUID, str]], *, max_attempts: int
) -> list[tuple[UUID, str]]:
    """Count one transient failure per image; an image out of attempts is REJECTED (image_unreachable).

    rows: (image id, reason). Returns (id, reason) of the images rejected by this call.
    """
    if not rows:
        return []
    changed = await conn.fetch(
        """
        UPDATE product_images i
           SET attempts = i.attempts + 1,
               error = u.e,
               status = CASE WHEN i.attempts + 1 >= $3 THEN 'REJECTED' ELSE i.status END,
               error_code = CASE WHEN i.attempts + 1 >= $3 THEN $4 ELSE i.error_code END,
               updated_at = now()
          FROM unnest($1::uuid[], $2::text[]) AS u(id, e)
         WHERE i.id = u.id AND i.status = 'PENDING'
        RETURNING i.id, i.status, i.error
        """,
        [r[0] for r in rows],
        [r[1][:1000] for r in rows],
        max_attempts,
        RejectionCode.IMAGE_UNREACHABLE.value,
    )
    return [(r["id"], r["error"]) for r in changed if r["status"] == "REJECTED"]


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
