"""Liveness of the API and of what it depends on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from importer.api.auth import ContextDep
from importer.api.problems import responses
from importer.protection.health import HealthCache, read_tenant_pauses

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"description": "PostgreSQL or Redis does not answer (same body)."}})
async def healthz(ctx: ContextDep) -> JSONResponse:
    checks: dict[str, Any] = {}

    async def _db() -> None:
        async with ctx.db.acquire() as conn:
            await conn.fetchval("SELECT 1")

    for name, probe in (("postgres", _db), ("redis", ctx.redis.ping)):
        try:
            await asyncio.wait_for(probe(), timeout=2.0)
            checks[name] = "ok"
        except Exception as exc:  # any failure is reported, never raised: this is the probe
            checks[name] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status_code=200 if healthy else 503
    )


@router.get("/health/queue", responses=responses(503))
async def queue_health(ctx: ContextDep) -> JSONResponse:
    """Queue health: level, counts, oldest waiting age, workers, breakers, pause and counters,
    the companies with the most waiting jobs (``tenants``) and the tenants paused by the tenant
    brake (``paused_tenants``).

    Level and counts are cached for ``health_cache_seconds`` (published by the reconciler's
    monitor); the pause and intake flags and the paused tenants are read live. Always 200: this is a report, not a
    liveness probe (that is ``/healthz``).
    """
    cache = ctx.health or HealthCache(ctx.settings, ctx.redis, ctx.db)
    report = await cache.get()
    body = report.to_json()
    body["paused"], body["intake_closed"] = await cache.live_flags()
    body["paused_tenants"] = await read_tenant_pauses(ctx.redis)
    body["report_age"] = round(max(0.0, time.time() - report.computed_at), 3)
    return JSONResponse(body)
