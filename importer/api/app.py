"""The ASGI application: routes, error mapping and the lifespan that owns the pools."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from cachetools import TTLCache
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from importer.api.context import ApiContext
from importer.api.correlation import CorrelationMiddleware
from importer.api.hub import EventHub
from importer.api.routes import health, imports, ops
from importer.connections import open_redis
from importer.db.pool import create_pool, is_transient_db_error
from importer.errors import ApiError
from importer.logs import get_logger
from importer.protection.counters import Counters
from importer.protection.health import HealthCache
from importer.settings import Settings

log = get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await _open_db(settings)
        redis = open_redis(settings)
        hub = EventHub(
            open_redis(settings, read_timeout=None),
            settings.events_channel_prefix,
            backoff_max=settings.redis_reconnect_backoff_max,
        )
        hub.start()
        app.state.ctx = ApiContext(
            settings=settings,
            db=db,
            redis=redis,
            hub=hub,
            health=HealthCache(settings, redis, db),
            counters=Counters(redis),
            companies=(
                TTLCache(maxsize=10_000, ttl=settings.api_key_cache_seconds)
                if settings.api_key_cache_seconds > 0
                else None
            ),
        )
        log.info("api_started", environment=settings.environment)
        try:
            yield
        finally:
            await hub.stop()
            with contextlib.suppress(RedisError, OSError):
                await redis.aclose()
            await db.close()
            log.info("api_stopped")

    app = FastAPI(
        title="Product importer",
        version="0.1.0",
        description="Imports product catalogs from commerce providers into Postgres and S3.",
        lifespan=lifespan,
    )
    app.add_middleware(CorrelationMiddleware)
    app.include_router(health.router)
    app.include_router(imports.router)
    app.include_router(ops.router)
    _install_error_handlers(app, settings)
    return app


async def _open_db(settings: Settings) -> Any:
    """Wait (bounded by ``startup_timeout``) for Postgres: containers start in any order."""
    deadline = time.monotonic() + settings.startup_timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            return await create_pool(settings, min_size=2)
        except Exception as exc:
            if not is_transient_db_error(exc) or time.monotonic() > deadline:
                raise
            log.warning("api_db_wait", error=repr(exc), attempt=attempt)
            await asyncio.sleep(min(5.0, 0.5 * attempt))


def _install_error_handlers(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "malformed JSON body"}, status_code=400)
        parts = []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {e.get('msg')}")
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return JSONResponse({"error": "invalid request: " + "; ".join(parts), "details": details}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_transient_db_error(exc) or isinstance(exc, RedisError):
            log.warning("api_dependency_unavailable", error=repr(exc))
            return JSONResponse(
                {"error": "a backing service is unavailable; retry shortly"},
                status_code=503,
                headers={"Retry-After": str(settings.unavailable_retry_after)},
            )
        log.exception("api_internal_error", error=repr(exc))
        return JSONResponse({"error": "internal error"}, status_code=500)
