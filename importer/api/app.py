"""The ASGI application: routes, error mapping and the lifespan that owns the pools."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from cachetools import TTLCache
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from importer.api.context import ApiContext
from importer.api.correlation import CorrelationMiddleware
from importer.api.hub import EventHub
from importer.api.intake import IntakeGuard
from importer.api.problems import error_response
from importer.api.routes import health, imports, ops
from importer.api.stream_slots import StreamSlots
from importer.api.strict_json import DUPLICATE_KEY_PREFIX
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
            streams=StreamSlots(
                redis, limit=settings.sse_max_streams_per_company, refresh_seconds=settings.sse_slot_refresh_seconds
            ),
        )
        app.state.ctx.authenticator()  # built now, not on the first request
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
    # Outermost last: the correlation id is on every answer, the guard's 401/413/429 included.
    app.add_middleware(IntakeGuard)
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
    """Every error answer in the API's shape: ``{"error", "code", "details"?}``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, code=exc.code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's and Starlette's own answers (unknown path 404, 405, body parse 400): the
        # headers matter (405 carries Allow).
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for e in errors:
            if e.get("type") != "json_invalid":
                continue
            reason = str((e.get("ctx") or {}).get("error", ""))
            if reason.startswith(DUPLICATE_KEY_PREFIX):
                return error_response(400, f"malformed JSON body: {reason}", code="duplicate_json_key")
            return error_response(400, "malformed JSON body", code="malformed_json")
        parts = []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {e.get('msg')}")
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return error_response(422, "invalid request: " + "; ".join(parts), code="validation_error", details=details)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, asyncpg.DataError):
            # A value the schema let through but PostgreSQL refuses (22xxx: a character it
            # cannot store, a number out of range): the client's input, not our failure.
            log.warning("api_unstorable_value", error=repr(exc))
            return error_response(422, "a value in the request cannot be stored", code="unstorable_value")
        # Handled here, inside the app, rather than by the catch-all below: Starlette's
        # outermost error middleware logs a traceback and re-raises after answering, which a
        # database refusing writes for minutes would turn into a flood.
        if not (is_transient_db_error(exc) or isinstance(exc, RedisError)):
            raise exc
        log.warning("api_dependency_unavailable", error=repr(exc))
        return error_response(
            503,
            "a backing service is unavailable; retry shortly",
            code="service_unavailable",
            headers={"Retry-After": str(settings.unavailable_retry_after)},
        )

    for kind in (asyncpg.PostgresError, asyncpg.InterfaceError, RedisError, OSError, TimeoutError):
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_transient_db_error(exc) or isinstance(exc, RedisError):
            log.warning("api_dependency_unavailable", error=repr(exc))
            return error_response(
                503,
                "a backing service is unavailable; retry shortly",
                code="service_unavailable",
                headers={"Retry-After": str(settings.unavailable_retry_after)},
            )
        log.exception("api_internal_error", error=repr(exc))
        return error_response(500, "internal error", code="internal_error")
