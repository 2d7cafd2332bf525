"""Liveness of the API and of what it depends on."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from importer.api.auth import ContextDep
from importer.api.context import ApiContext
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
async def queue_health(ctx: ContextDep, request: Request) -> JSONResponse:
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
    paused_tenants = await read_tenant_pauses(ctx.redis)
    if _is_operator(ctx, request):
        body["paused_tenants"] = paused_tenants
    else:
        # Unauthenticated callers (load balancers, dashboards) get the figures, not who the
        # tenants are: company ids and how busy each is are other tenants' business.
        tenants = body.get("tenants") or {}
        body["tenants"] = {
            "pending_total": tenants.get("pending_total"),
            "noisy_count": len(tenants.get("noisy") or []),
            "detail": "send the operator token for the companies",
        }
        body["paused_tenant_count"] = len(paused_tenants)
    body["report_age"] = round(max(0.0, time.time() - report.computed_at), 3)
    return JSONResponse(body)


def _is_operator(ctx: ApiContext, request: Request) -> bool:
    expected = ctx.settings.operator_token.get_secret_value()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    return secrets.compare_digest(token.strip().encode(), expected.encode())
