"""Watchers that record, while an experiment runs, what its measurements are computed from.

- :class:`JobWatcher` polls the run's job rows (directly from Postgres, never through the
  proxy a partition cuts) and keeps every change it saw: who ran a job, when it was taken
  over, when it ended.
- :class:`OrphanTracker` asks Redis (through Sentinel, so it follows a failover) which PENDING
  jobs it has forgotten: neither queued nor running.
- :class:`BrakeWatcher` follows the queue's depth and the pause flag during an overload.

Each loop is bounded in time and ticks, survives its source failing (a failed tick is recorded
as such, never as "nothing there"), and stops when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from chaos.measures import JobChange, JobTimes, OrphanTick
from lab.probes import RedisTarget, probe_queue

log = logging.getLogger(__name__)

ARQ_QUEUE = "arq:queue"
IN_PROGRESS_PREFIX = "arq:in-progress:"
PAUSE_KEY = "importer:queue:paused"
COUNTERS_KEY = "importer:counters"
SOURCE_TIMEOUT = 2.0


@dataclass(frozen=True)
class JobRow:
    job_id: str
    company_id: str
    status: str
    worker_id: str | None
    attempts: int
    queue_try: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    def times(self) -> JobTimes:
        return JobTimes(self.job_id, self.status, self.created_at, self.started_at, self.finished_at)

    def key(self) -> tuple[object, ...]:
        return (self.status, self.worker_id, self.attempts, self.queue_try, self.finished_at)


_JOBS_SQL = """
SELECT id::text AS job_id, company_id::text AS company_id, status, worker_id, attempts, queue_try,
       created_at, started_at, finished_at, error
  FROM product_import_jobs WHERE company_id = ANY($1::uuid[])
"""


class _Loop:
    """A bounded polling loop in a task: ``start()``, ``await stop()``."""

    def __init__(self, name: str, interval: float, max_duration: float) -> None:
        self.name = name
        self.interval = interval
        self.max_duration = max_duration
        self.failures = 0
        self.last_error = ""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), SOURCE_TIMEOUT * 3)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.close()

    async def _run(self) -> None:
        deadline = time.monotonic() + self.max_duration
        for _ in range(math.ceil(self.max_duration / self.interval) + 1):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            try:
                async with asyncio.timeout(SOURCE_TIMEOUT * 2):
                    await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a source down is what chaos is about: record, go on
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                await self.on_failure(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    async def tick(self) -> None:
        raise NotImplementedError

    async def on_failure(self, exc: BaseException) -> None:
        log.debug("%s: tick failed: %r", self.name, exc)

    async def close(self) -> None:
        """Release connections."""


class JobWatcher(_Loop):
    def __init__(
        self, database_url: str, companies: list[str], *, interval: float = 0.25, max_duration: float = 3600.0
    ) -> None:
        super().__init__("job-watcher", interval, max_duration)
        self.database_url = database_url
        self.companies = [UUID(c) for c in companies]
        self.latest: dict[str, JobRow] = {}
        self.changes: list[JobChange] = []
        self._conn: asyncpg.Connection | None = None

    async def tick(self) -> None:
        rows = await self.fetch()
        at = datetime.now(UTC)
        for row in rows:
            before = self.latest.get(row.job_id)
            if before is None or before.key() != row.key():
                self.changes.append(JobChange(at, row.job_id, row.status, row.worker_id, row.attempts, row.queue_try))
            self.latest[row.job_id] = row

    async def fetch(self) -> list[JobRow]:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.database_url, timeout=SOURCE_TIMEOUT)
        records = await self._conn.fetch(_JOBS_SQL, self.companies, timeout=SOURCE_TIMEOUT)
        return [JobRow(**dict(r)) for r in records]

    async def on_failure(self, exc: BaseException) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def refresh(self) -> dict[str, JobRow]:
        """One read now (outside the loop), e.g. right before a fault."""
        await self.tick()
        return self.latest

    def in_progress_on(self, worker_ids: set[str]) -> dict[str, JobRow]:
        return {j: r for j, r in self.latest.items() if r.status == "IN_PROGRESS" and r.worker_id in worker_ids}

    def terminal(self) -> bool:
        return bool(self.latest) and all(r.status in ("COMPLETED", "FAILED", "CANCELLED") for r in self.latest.values())


class _RedisLoop(_Loop):
    """A loop reading Redis through one client, opened on first use and dropped on failure.

    Dropping it on a failed tick makes the next tick open a fresh one: after a failover the
    old client may still point at the dead primary.
    """

    def __init__(self, name: str, redis: RedisTarget, interval: float, max_duration: float) -> None:
        super().__init__(name, interval, max_duration)
        self.target = redis
        self._redis: Any = None

    def redis(self) -> Any:
        if self._redis is None:
            self._redis = self.target.client(SOURCE_TIMEOUT)
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            try:
                await self._redis.aclose()
            except Exception as exc:  # a client of a dead node cannot close cleanly: say so, go on
                log.debug("%s: closing its Redis client failed: %r", self.name, exc)
            self._redis = None


class OrphanTracker(_RedisLoop):
    """Which PENDING jobs (older than ``min_age``) Redis has neither queued nor running."""

    def __init__(
        self,
        redis: RedisTarget,
        watcher: JobWatcher,
        *,
        interval: float = 0.5,
        min_age: float = 1.0,
        max_duration: float = 3600.0,
    ) -> None:
        super().__init__("orphan-tracker", redis, interval, max_duration)
        self.watcher = watcher
        self.min_age = min_age
        self.ticks: list[OrphanTick] = []

    async def tick(self) -> None:
        at = datetime.now(UTC)
        candidates = [
            j
            for j, row in self.watcher.latest.items()
            if row.status == "PENDING" and (at - row.created_at).total_seconds() >= self.min_age
        ]
        client = self.redis()
        missing: list[str] = []
        if candidates:
            async with client.pipeline(transaction=False) as pipe:
                for job_id in candidates:
                    pipe.zscore(ARQ_QUEUE, job_id)
                    pipe.exists(IN_PROGRESS_PREFIX + job_id)
                answers = await pipe.execute()
            missing = [j for i, j in enumerate(candidates) if answers[2 * i] is None and not answers[2 * i + 1]]
        if missing:
            # The watcher's picture may be a tick old: a job that ran and finished since would
            # look forgotten. Only what Postgres *still* calls PENDING after the Redis read counts.
            rows = {r.job_id: r for r in await self.watcher.fetch()}
            missing = [j for j in missing if j in rows and rows[j].status == "PENDING"]
        self.ticks.append(OrphanTick(at, True, tuple(missing)))

    async def on_failure(self, exc: BaseException) -> None:
        self.ticks.append(OrphanTick(datetime.now(UTC), False))
        await self.close()


@dataclass(frozen=True)
class BrakeTick:
    at: float  # epoch seconds
    waiting: int | None
    paused: dict[str, Any] | None


class BrakeWatcher(_RedisLoop):
    """Queue depth (as the health report counts it) and the pause flag, every tick."""

    def __init__(self, redis: RedisTarget, *, interval: float = 0.25, max_duration: float = 900.0) -> None:
        super().__init__("brake-watcher", redis, interval, max_duration)
        self.ticks: list[BrakeTick] = []

    async def tick(self) -> None:
        client = self.redis()
        counts = await probe_queue(client, queue=ARQ_QUEUE, scan_batch=1000, scan_max_iterations=100)
        raw = await client.get(PAUSE_KEY)
        paused: dict[str, Any] | None = None
        if raw is not None:
            try:
                paused = json.loads(raw)
            except ValueError:
                paused = {"raw": str(raw)}
        self.ticks.append(BrakeTick(time.time(), max(0, counts.due - counts.active), paused))

    async def on_failure(self, exc: BaseException) -> None:
        self.ticks.append(BrakeTick(time.time(), None, None))
        await self.close()


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.25, what: str
) -> Any:
    """Poll ``condition`` until it returns something truthy; raise TimeoutError saying what."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(math.ceil(timeout / interval) + 2):
        try:
            last = await condition()
        except Exception as exc:  # a check that cannot be made yet is a "not yet"
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.sleep(min(interval, remaining))
    raise TimeoutError(f"{what}: not after {timeout:g}s (last: {last!r})")
