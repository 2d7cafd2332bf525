"""The observer: samples queue, workers, job states and provider counters every tick.

It is the run's flight recorder. Charts and several criteria are computed from what it wrote,
so it must outlive the faults it records: a source that fails in a tick (Redis down during a
failover, Postgres partitioned) leaves that source's columns empty for the tick with the error
in the ``errors`` column and the log, and the next tick tries again. Rows are flushed as
written, so a crashed drill still leaves its samples.

Use::

    observer = Observer(ObserverConfig(run_started_at=..., redis=RedisTarget(url=...), ...),
                        run_dir / SAMPLES_CSV)
    observer.start()
    ...                      # the run
    stats = await observer.stop()

The loop is bounded by ``max_duration`` and by a tick count derived from it; ticks that a slow
sample overran are skipped, not queued up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from lab.probes import JobScope, RedisTarget, probe_jobs, probe_provider, probe_queue
from lab.samples import SamplesWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
_Reading = tuple[dict[str, object], list[str]]  # column values, notes that make the tick partial


class ObserverError(Exception):
    """The observer cannot record at all (e.g. samples.csv not writable); sources failing is not this."""


@dataclass(frozen=True)
class ObserverConfig:
    run_started_at: datetime
    redis: RedisTarget | None = None
    database_url: str | None = None
    provider_url: str | None = None
    companies: tuple[str, ...] = ()  # empty: every job created since run_started_at
    interval: float = 1.0
    max_duration: float = 6 * 3600.0
    source_timeout: float = 2.0
    queue: str = "arq:queue"
    scan_batch: int = 1000
    scan_max_iterations: int = 1000

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.max_duration <= 0 or self.source_timeout <= 0:
            raise ValueError("interval, max_duration and source_timeout must be positive")
        if self.run_started_at.tzinfo is None:
            raise ValueError("run_started_at must be timezone-aware")


@dataclass
class ObserverStats:
    ticks: int = 0
    failed_ticks: int = 0
    failures_by_source: dict[str, int] = field(default_factory=dict)
    stopped_by: str = ""


class _Streak:
    """Logs the first failure of a source loudly and its recovery; repeats go to debug."""

    def __init__(self) -> None:
        self.failing: dict[str, int] = {}

    def failed(self, source: str, error: str) -> None:
        count = self.failing.get(source, 0) + 1
        self.failing[source] = count
        (log.warning if count == 1 else log.debug)("observer: %s failed (tick %d of streak): %s", source, count, error)

    def ok(self, source: str) -> None:
        count = self.failing.pop(source, 0)
        if count:
            log.info("observer: %s answers again after %d failed ticks", source, count)


class Observer:
    def __init__(self, config: ObserverConfig, samples_path: Path) -> None:
        self.config = config
        self.samples_path = samples_path
        self.stats = ObserverStats()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[ObserverStats] | None = None
        self._redis: Any = None
        self._pg: asyncpg.Connection | None = None
        self._http: httpx.AsyncClient | None = None
        self._last_jobs: tuple[float, int, int] | None = None  # (monotonic, completed, failed)
        self._streak = _Streak()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[ObserverStats]:
        if self._task is not None:
            raise ObserverError("observer already started")
        self._task = asyncio.create_task(self.run(), name="observer")
        return self._task

    async def stop(self, grace: float = 30.0) -> ObserverStats:
        """Ask the loop to finish its tick and close; cancel it if it does not within ``grace`` seconds."""
        self._stop.set()
        if self._task is None:
            return self.stats
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.stats.stopped_by = "cancelled"
            return self.stats

    async def run(self) -> ObserverStats:
        cfg = self.config
        loop = asyncio.get_running_loop()
        try:
            writer = SamplesWriter(self.samples_path)
        except OSError as exc:
            raise ObserverError(f"cannot write {self.samples_path}: {exc}") from exc
        origin = loop.time()
        deadline = origin + cfg.max_duration
        max_ticks = math.ceil(cfg.max_duration / cfg.interval) + 1
        try:
            for _ in range(max_ticks):
                if self._stop.is_set():
                    self.stats.stopped_by = "stop"
                    break
                if loop.time() >= deadline:
                    self.stats.stopped_by = "max_duration"
                    break
                row = await self.sample_once()
                try:
                    writer.write(row)
                except OSError as exc:
                    raise ObserverError(f"cannot write {self.samples_path}: {exc}") from exc
                next_tick = origin + (math.floor((loop.time() - origin) / cfg.interval) + 1) * cfg.interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, min(next_tick, deadline) - loop.time()))
            else:
                self.stats.stopped_by = "max_ticks"
        finally:
            writer.close()
            await self._close_clients()
        log.info(
            "observer: stopped (%s) after %d ticks, %d with gaps",
            self.stats.stopped_by,
            self.stats.ticks,
            self.stats.failed_ticks,
        )
        return self.stats

    # --- one tick -------------------------------------------------------------------------

    async def sample_once(self) -> dict[str, object]:
        """One row of samples.csv; sources are read concurrently and fail independently."""
        cfg = self.config
        at = datetime.now(UTC)
        began = time.monotonic()
        row: dict[str, object] = {"at": at, "elapsed_s": round((at - cfg.run_started_at).total_seconds(), 3)}
        errors: list[str] = []
        sources: list[tuple[str, Callable[[], Awaitable[_Reading]]]] = []
        if cfg.redis is not None:
            sources.append(("redis", self._sample_redis))
        if cfg.database_url is not None:
            sources.append(("postgres", self._sample_postgres))
        if cfg.provider_url is not None:
            sources.append(("provider", self._sample_provider))
        results = await asyncio.gather(*(self._bounded(fn()) for _, fn in sources), return_exceptions=True)
        for (name, _), result in zip(sources, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                message = f"{type(result).__name__}: {result}".strip().rstrip(":")
                errors.append(f"{name}: {message}")
                self.stats.failures_by_source[name] = self.stats.failures_by_source.get(name, 0) + 1
                self._streak.failed(name, message)
                await self._reset(name)
            else:
                self._streak.ok(name)
                values, notes = result
                row.update(values)
                errors.extend(f"{name}: {note}" for note in notes)
        row["ok"] = 0 if errors else 1
        row["errors"] = " | ".join(errors)
        row["sample_ms"] = round((time.monotonic() - began) * 1000, 1)
        self.stats.ticks += 1
        self.stats.failed_ticks += 1 if errors else 0
        return row

    async def _bounded(self, awaitable: Awaitable[T]) -> T:
        async with asyncio.timeout(self.config.source_timeout):
            return await awaitable

    async def _sample_redis(self) -> _Reading:
        cfg = self.config
        assert cfg.redis is not None
        if self._redis is None:
            self._redis = cfg.redis.client(cfg.source_timeout)
        counts = await probe_queue(
            self._redis, queue=cfg.queue, scan_batch=cfg.scan_batch, scan_max_iterations=cfg.scan_max_iterations
        )
        out: dict[str, object] = {
            "queue_due": counts.due,
            "waiting": max(0, counts.due - counts.active),
            "deferred": counts.deferred,
            "active": counts.active,
            "workers_alive": counts.workers_alive,
        }
        return out, counts.partial

    async def _sample_postgres(self) -> _Reading:
        cfg = self.config
        assert cfg.database_url is not None
        if self._pg is None or self._pg.is_closed():
            self._pg = await asyncpg.connect(cfg.database_url, timeout=cfg.source_timeout)
        scope = JobScope(since=cfg.run_started_at, companies=cfg.companies)
        counts = await probe_jobs(self._pg, scope, query_timeout=cfg.source_timeout)
        now = time.monotonic()
        out: dict[str, object] = {f"jobs_{status.lower()}": n for status, n in counts.items()}
        if self._last_jobs is not None:
            then, completed, failed = self._last_jobs
            span = max(now - then, 1e-6)
            out["completed_per_s"] = round((counts["COMPLETED"] - completed) / span, 3)
            out["failed_per_s"] = round((counts["FAILED"] - failed) / span, 3)
        self._last_jobs = (now, counts["COMPLETED"], counts["FAILED"])
        return out, []

    async def _sample_provider(self) -> _Reading:
        cfg = self.config
        assert cfg.provider_url is not None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=cfg.source_timeout)
        counts = await probe_provider(self._http, cfg.provider_url)
        return {
            "provider_api_requests": counts.api_requests,
            "provider_image_requests": counts.image_requests,
            "provider_rate_limited": counts.rate_limited,
            "provider_responses": counts.responses,
        }, []

    # --- connections ----------------------------------------------------------------------

    async def _reset(self, source: str) -> None:
        """Drop a failed source's connection so the next tick reconnects (and re-resolves)."""
        if source == "postgres" and self._pg is not None:
            pg, self._pg = self._pg, None
            pg.terminate()

    async def _close_clients(self) -> None:
        if self._redis is not None:
            try:
                await self._redis.aclose()
            except Exception as exc:  # closing a client whose server is gone may fail; nothing to save
                log.debug("observer: closing redis: %r", exc)
        if self._pg is not None:
            self._pg.terminate()
        if self._http is not None:
            await self._http.aclose()


@contextlib.asynccontextmanager
async def observing(config: ObserverConfig, samples_path: Path) -> AsyncIterator[Observer]:
    """``async with observing(cfg, path) as observer:`` — stopped however the block exits."""
    observer = Observer(config, samples_path)
    observer.start()
    try:
        yield observer
    finally:
        await observer.stop()
