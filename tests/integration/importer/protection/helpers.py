"""What the protection tests share: per-test importer processes with overrides, and data access."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from typing import Any

import asyncpg
import httpx
from redis import Redis

from lab.stack import Stack, WorkerHandle
from lab.stack.component import Component
from lab.stack.importer import ImporterApi as ApiProcess
from lab.stack.importer import ImporterReconciler
from tests.support.importer_api import FakeProvider, ImporterApi

# Shrunk for tests; each test adds its own on top. Everything else keeps the production default.
BASE_ENV = {
    "IMPORTER_LOG_LEVEL": "INFO",
    "IMPORTER_WORKER_POLL_DELAY": "0.1",
    "IMPORTER_WORKER_HEARTBEAT_INTERVAL": "1",
    "IMPORTER_LEASE_SECONDS": "6",
    "IMPORTER_SHUTDOWN_GRACE_SECONDS": "2",
    "IMPORTER_RETRY_BACKOFF_BASE": "0.3",
    "IMPORTER_RETRY_BACKOFF_MAX": "2",
    "IMPORTER_DB_POOL_MIN": "1",
    "IMPORTER_DB_POOL_MAX": "4",
    "IMPORTER_HEALTH_CACHE_SECONDS": "0.3",
    "IMPORTER_DEFERRAL_JITTER": "0.3",
    "IMPORTER_BREAKER_OPEN_SECONDS": "2",
    "IMPORTER_BREAKER_HALF_OPEN_RECHECK": "0.5",
    "IMPORTER_BREAKER_PROBE_TIMEOUT": "5",
    "IMPORTER_QUEUE_START_LIMIT_PER_MIN": "100000",
    "IMPORTER_ORPHAN_SWEEP_INTERVAL": "3600",
    "IMPORTER_STALL_SWEEP_INTERVAL": "3600",
}


def with_base(overrides: dict[str, str] | None) -> dict[str, str]:
    return {**BASE_ENV, **(overrides or {})}


def env(**settings: Any) -> dict[str, str]:
    """``env(health_overload_waiting=9)`` → ``{"IMPORTER_HEALTH_OVERLOAD_WAITING": "9"}``."""
    return {f"IMPORTER_{k.upper()}": str(v) for k, v in settings.items()}


class Lab:
    """One test's view of the stack: start importer processes with overrides, talk to everything."""

    _names = itertools.count(1)

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.provider = FakeProvider(stack.provider_url)
        self.api: ImporterApi | None = None
        self.api_url = ""
        self.reconciler: ImporterReconciler | None = None
        self._components: list[Component] = []
        self._workers: list[WorkerHandle] = []

    # --- processes ---------------------------------------------------------------------------
    def start_api(self, overrides: dict[str, str] | None = None) -> ImporterApi:
        process = ApiProcess(
            env=self.stack.importer_env(with_base(overrides)),
            log_dir=self.stack.dir.logs_dir,
            ports=self.stack.ports,
            name=f"api-{next(self._names)}",
        )
        process.start()
        self._components.append(process)
        self.api_url = process.url
        self.api = ImporterApi(process.url, self.stack.operator_token)
        return self.api

    def start_reconciler(self, overrides: dict[str, str] | None = None) -> ImporterReconciler:
        process = ImporterReconciler(
            env=self.stack.importer_env(with_base(overrides)),
            log_dir=self.stack.dir.logs_dir,
            name=f"reconciler-{next(self._names)}",
        )
        process.start()
        self._components.append(process)
        self.reconciler = process
        return process

    def start_worker(self, overrides: dict[str, str] | None = None) -> WorkerHandle:
        handle = self.stack.start_worker(env_overrides=with_base(overrides))
        self._workers.append(handle)
        return handle

    def stop_worker(self, handle: WorkerHandle) -> None:
        self.stack.stop_worker(handle)

    def ops(self, *args: str, overrides: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``importer ops <args>`` as an operator runs it, against this stack (bounded: 120 s)."""
        return self.stack.run_importer("ops", *args, env_overrides=with_base(overrides), timeout=120.0)

    async def aops(self, *args: str, overrides: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.ops, *args, overrides=overrides)

    # --- data ------------------------------------------------------------------------------------
    def redis(self) -> Redis:
        return self.stack.redis_client()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def queue_health(self) -> dict[str, Any]:
        assert self.api is not None
        r = await self.api.http.get("/health/queue", headers=self.api.operator_headers)
        r.raise_for_status()
        return dict(r.json())

    # --- cleanup ----------------------------------------------------------------------------------
    async def reset(self) -> None:
        with self.redis() as r:
            r.flushdb()
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            await conn.execute("TRUNCATE import_rejections, product_images, products, product_import_jobs")
        finally:
            await conn.close()
        await self.provider.clear_faults()
        (await self.provider.http.post("/admin/stats/reset")).raise_for_status()

    async def close(self) -> None:
        for handle in self._workers:
            if handle.is_alive():
                await asyncio.to_thread(self.stack.stop_worker, handle)
        for component in reversed(self._components):
            await asyncio.to_thread(component.stop)
        if self.api is not None:
            await self.api.aclose()
        await self.provider.aclose()


async def submit(api: ImporterApi, tenant: Any, store: str, provider: str = "roastify") -> httpx.Response:
    """POST an import and return the raw response (tests look at 503s too)."""
    return await api.http.post(
        "/v1/imports",
        json={"provider": provider, "store_id": store, "include_images": False},
        headers=tenant.headers,
    )
