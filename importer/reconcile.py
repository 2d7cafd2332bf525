"""The reconciler: makes Redis agree with Postgres again, and is the last line against stalls.

- Orphans: an active job row that Redis has forgotten (a failover dropped an acknowledged
  write, an enqueue failed while Redis was down, a worker died after arq removed the entry) is
  re-enqueued. A job row is the truth; the queue is only a cache of it.
- Stalls: a job IN_PROGRESS for longer than ``stall_limit`` is failed with a timeout and an
  alert. With leases a dead worker's job is retried within seconds, so this only catches jobs
  that are alive but stuck.

Each sweep takes a Postgres advisory lock, so any number of reconcilers may run.

With a ``HealthMonitor`` the same loop also computes queue health every
``health_cache_seconds``, publishes it for the API and drives the emergency brake
(importer/protection/monitor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.logs import get_logger
from importer.protection.monitor import HealthMonitor
from importer.queueing import requeue
from importer.settings import Settings
from importer.worker.keys import in_progress_key

log = get_logger(__name__)

_ORPHAN_LOCK = 0x1D_0A18
_STALL_LOCK = 0x1D_0A19


@dataclass
class SweepResult:
    requeued: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)
    skipped_locked: bool = False


class Reconciler:
    def __init__(self, settings: Settings, db: Any, redis: Any, *, monitor: HealthMonitor | None = None) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.monitor = monitor

    async def sweep_orphans(self, *, dry_run: bool = False) -> SweepResult:
        result = SweepResult()
        async with self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _ORPHAN_LOCK):
                result.skipped_locked = True
                return result
            candidates = await jobs.list_orphan_candidates(
                conn, min_age_s=self.settings.orphan_min_age, limit=self.settings.reconcile_batch_limit
            )
            for row in candidates:
                job_id = str(row["id"])
                if await self._known_to_redis(job_id):
                    continue
                age = time.time() - row["created_at"].timestamp()
                # queue_try, not attempts: deferrals and hand-backs refund their try, so this
                # counts the runs that really started and then vanished.
                if row["queue_try"] >= self.settings.job_max_tries:
                    reason = f"gave up: job was abandoned after {row['queue_try']} tries (its worker kept dying)"
                    if not dry_run:
                        await jobs.fail(conn, row["id"], reason)
                    log.error("orphan_failed", job_id=job_id, company_id=str(row["company_id"]), reason=reason)
                    result.failed.append(row["id"])
                    continue
                if not dry_run:
                    await self._requeue(job_id)
                    await jobs.mark_requeued(conn, row["id"])
                log.warning(
                    "orphan_requeued",
                    job_id=job_id,
                    company_id=str(row["company_id"]),
                    status=row["status"],
                    age=round(age, 1),
                    dry_run=dry_run,
                )
                result.requeued.append(row["id"])
        return result

    async def sweep_stalled(self) -> SweepResult:
        result = SweepResult()
        async with self.db.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _STALL_LOCK):
                result.skipped_locked = True
                return result
            rows = await jobs.fail_stalled(
                conn, older_than_s=self.settings.stall_limit, limit=self.settings.reconcile_batch_limit
            )
        for row in rows:
            log.error(
                "job_stalled",
                alert=True,
                job_id=str(row["id"]),
                company_id=str(row["company_id"]),
                worker_id=row["worker_id"],
                started_at=row["started_at"].isoformat() if row["started_at"] else None,
                attempts=row["attempts"],
                stall_limit=self.settings.stall_limit,
            )
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await self.redis.zrem(self.settings.queue_name, str(row["id"]))
            result.failed.append(row["id"])
        return result

    async def _known_to_redis(self, job_id: str) -> bool:
        """In the queue (waiting or deferred) or running under a live lease."""
        in_queue = await self.redis.zscore(self.settings.queue_name, job_id)
        if in_queue is not None:
            return True
        return bool(await self.redis.exists(in_progress_key(job_id)))

    async def _requeue(self, job_id: str) -> None:
        await requeue(self.redis, UUID(job_id))

    async def run_forever(self, *, stop: asyncio.Event) -> None:
        """Sweep on the two intervals until ``stop`` is set; a failed sweep is logged and retried."""
        next_orphans = 0.0
        next_stalls = 0.0
        next_health = 0.0 if self.monitor is not None else float("inf")
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_health:
                next_health = now + self.settings.health_cache_seconds
                await self._guarded_health()
            if now >= next_orphans:
                next_orphans = now + self.settings.orphan_sweep_interval
                await self._guarded("orphans", self.sweep_orphans)
            if now >= next_stalls:
                next_stalls = now + self.settings.stall_sweep_interval
                await self._guarded("stalls", self.sweep_stalled)
            wait = max(0.1, min(next_orphans, next_stalls, next_health) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _guarded_health(self) -> None:
        """One health tick; like a sweep, a failure is logged and the next tick tries again."""
        if self.monitor is None:
            return
        try:
            await self.monitor.tick()
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("health_tick_failed", error=repr(exc))
        except Exception as exc:
            if not is_transient_db_error(exc):
                log.exception("health_tick_error")
                return
            log.warning("health_tick_failed", error=repr(exc))

    async def _guarded(self, name: str, sweep: Any) -> None:
        started = time.monotonic()
        try:
            result: SweepResult = await sweep()
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("reconcile_sweep_failed", sweep=name, error=repr(exc))
            return
        except Exception as exc:
            if not is_transient_db_error(exc):
                log.exception("reconcile_sweep_error", sweep=name)
                return
            log.warning("reconcile_sweep_failed", sweep=name, error=repr(exc))
            return
        log.info(
            "reconcile_sweep",
            sweep=name,
            requeued=len(result.requeued),
            failed=len(result.failed),
            skipped_locked=result.skipped_locked,
            duration=round(time.monotonic() - started, 3),
        )
