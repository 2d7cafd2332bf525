"""Rejected records of a job, with their code and reason, and their counts on the job row.

The detail rows are capped per job (``rejection_detail_limit``): a catalog of a million bad
records must not write a million rows, while the counts on the job row include every one.
Everything here runs inside the caller's transaction (the page's or the image batch's), which
is what keeps counts exact across crashes and replays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from importer.db import jobs
from importer.models import RejectionCode


@dataclass(frozen=True)
class Rejection:
    """One row of ``import_rejections``; ``kind`` is product, image or page."""

    kind: str
    code: RejectionCode
    reason: str
    external_id: str | None = None
    position: int | None = None


async def record(
    conn: Any,
    *,
    job_id: UUID,
    run_token: UUID,
    company_id: UUID,
    page_cursor: str | None,
    rejections: list[Rejection],
    detail_limit: int,
) -> bool:
    """Count every rejection on the job and keep the first ``detail_limit`` rows; False = lease lost."""
    if not rejections:
        return True
    counts = Counter(r.code.value for r in rejections)
    products = sum(1 for r in rejections if r.kind == "product")
    if not await jobs.add_rejections(conn, job_id, run_token, products_rejected=products, counts=dict(counts)):
        return False
    kept = int(
        await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM import_rejections WHERE job_id = $1 LIMIT $2) AS k",
            job_id,
            detail_limit,
        )
    )
    room = rejections[: max(0, detail_limit - kept)]
    if room:
        await conn.execute(
            """
            INSERT INTO import_rejections (job_id, company_id, kind, external_id, page_cursor, position, code, reason)
            SELECT $1, $2, k, e, $3, p, c, r
              FROM unnest($4::text[], $5::text[], $6::int[], $7::text[], $8::text[]) AS u(k, e, p, c, r)
            """,
            job_id,
            company_id,
            page_cursor,
            [r.kind for r in room],
            [r.external_id for r in room],
            [r.position for r in room],
            [r.code.value for r in room],
            [r.reason[:1000] for r in room],
        )
    return True


async def list_for_job(conn: Any, job_id: UUID, *, limit: int = 100) -> list[dict[str, Any]]:
    """The first rejections of a job, oldest first (for operators and tests)."""
    rows = await conn.fetch(
        """
        SELECT kind, external_id, page_cursor, position, code, reason FROM import_rejections
         WHERE job_id = $1 ORDER BY id LIMIT $2
        """,
        job_id,
        limit,
    )
    return [dict(r) for r in rows]
