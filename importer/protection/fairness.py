"""Fairness between tenants at intake: per-company limits, and who is "the cause" of a full queue.

- **Company limit**: a company may have at most its tier's number of active + waiting jobs
  (PENDING + IN_PROGRESS rows). The row is the truth, so the count is one indexed query on
  ``(company_id, status)``, capped at limit + 1 rows so its cost does not grow with a tenant's
  backlog. Concurrent submits of one company can each see the count below the limit, so the
  limit may be overshot by the number of that company's requests in flight at once (a soft
  limit; a hard one would need a per-company lock held across the insert, serialising every
  submit of a busy tenant).
- **Noisy tenants**: a company holding at least ``tenant_shed_share`` of all waiting jobs
  (PENDING rows, counted per company in the health tick) is the cause of a critical or
  overloaded queue: admission sheds it first (``admission``) and, at overload, the tenant brake
  pauses its starts only (``tenant_brake``) instead of the whole queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from importer.models import Tier
from importer.settings import Settings


def company_limit(settings: Settings, tier: Tier) -> int:
    return {
        Tier.BASIC: settings.company_limit_basic,
        Tier.PRO: settings.company_limit_pro,
        Tier.ENTERPRISE: settings.company_limit_enterprise,
    }[tier]


async def count_active(conn: Any, company_id: UUID, *, cap: int) -> int:
    """PENDING + IN_PROGRESS jobs of a company, counted up to ``cap`` (enough to compare)."""
    value = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM product_import_jobs"
        " WHERE company_id = $1 AND status IN ('PENDING', 'IN_PROGRESS') LIMIT $2) AS active",
        company_id,
        cap,
    )
    return int(value or 0)


@dataclass(frozen=True)
class TenantWaiting:
    company_id: str
    waiting: int

    def share(self, total: int) -> float:
        return self.waiting / total if total > 0 else 0.0


def noisy_tenants(top: list[TenantWaiting], total: int, *, share: float) -> list[str]:
    """Companies whose share of all waiting jobs is at least ``share`` (most waiting first)."""
    if total <= 0:
        return []
    return [t.company_id for t in top if t.waiting > 0 and t.share(total) >= share]


async def waiting_by_tenant(db: Any, *, limit: int) -> tuple[list[TenantWaiting], int]:
    """The ``limit`` companies with the most PENDING jobs, and the PENDING total over all.

    One GROUP BY over the PENDING rows (a partial index covers them); the answer is bounded by
    ``limit`` whatever the number of companies.
    """
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT company_id::text AS company_id, count(*) AS n, sum(count(*)) OVER () AS total"
            " FROM product_import_jobs WHERE status = 'PENDING'"
            " GROUP BY company_id ORDER BY n DESC, company_id LIMIT $1",
            limit,
        )
    if not rows:
        return [], 0
    return [TenantWaiting(r["company_id"], int(r["n"])) for r in rows], int(rows[0]["total"])
