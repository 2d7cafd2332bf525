"""The reconciler: makes Redis agree with Postgres again, and is the last line against stalls.

- Orphans: an active job row that Redis has forgotten (a failover dropped an acknowledged
  write, an enqueue failed while Redis was down, a worker died after arq removed the entry) is
  re-enqueued. A job row is the truth; the queue is only a cache of it.
- Stalls: a job IN_PROGRESS whose run shows no sign of life (its heartbeat, renewed by the
  lease keeper and every checkpoint, is older than ``stall_limit``) and that Redis neither runs
  nor queues is failed with a timeout and an alert. Time between runs (retries, deferrals,
  hand-backs) never counts, and neither does a long run that is alive.

Both sweeps page through every candidate (keyset on ``(created_at, id)``), a page at a time,
bounded per sweep by rows and time (``importer.sweeping``). Per page: read the candidates, ask
Redis about all of them in one round trip, then write by compare-and-set on the row as it was
read (a row claimed, renewed or handed back in between is left alone), commit, and only then
enqueue. A crash or a failed enqueue after the commit leaves a PENDING row that Redis does not
know: the next sweep finds it again, so nothing is lost.

Each page's reads and writes take a transaction-level advisory lock, re-taken per page rather
than one session-level lock for the sweep: the pool releases connections without a reset (no
``pg_advisory_unlock_all``), so a session lock left behind by a cancelled sweep would block
every later sweep for as long as that connection lives, whereas a transaction lock ends with
its transaction. Correctness does not rest on the lock (the compare-and-set writes do); the lock
only keeps two reconcilers from doing the same page twice: one that finds it taken stops.

With a ``HealthMonitor`` the same loop also computes queue health every
``health_cache_seconds``, publishes it for the API and drives the emergency brake
(importer/protection/monitor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from importer.db import sweeps
from importer.db.pool import is_transient_db_error
from importer.logs import get_logger
from importer.protection.monitor import HealthMonitor
from importer.queueing import requeue
from importer.settings import Settings
from importer.sweeping import SweepBudget, SweepStop
from importer.worker.keys import in_progress_key

log = get_logger(__name__)

_ORPHAN_LOCK = 0x1D_0A18
_STALL_LOCK = 0x1D_0A19
_REDIS_ERRORS = (TimeoutError, RedisError, OSError)


@dataclass
class SweepResult:
    requeued: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)
    # Rows that changed between the read and the write (claimed, renewed, handed back): left alone.
    changed: list[UUID] = field(default_factory=list)
    # Marked PENDING but not enqueued (Redis failed): the next sweep enqueues them.
    enqueue_failed: list[UUID] = field(default_factory=list)
    # Stall candidates spared because Redis still runs or queues them (between runs, not stuck).
    spared: list[UUID] = field(default_factory=list)
    scanned: int = 0
    pages: int = 0
    stopped: SweepStop | None = None
    skipped_locked: bool = False  # another reconciler held the lock before the first page


class Reconciler:
    def __init__(self, settings: Settings, db: Any, redis: Any, *, monitor: HealthMonitor | None = None) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.monitor = monitor

    # --- paging -------------------------------------------------------------------------------
    async def _pages(
        self,
        lock: int,
        result: SweepResult,
        read: Callable[[Any, int, sweeps.Keyset | None], Awaitable[list[Any]]],
        settle: Callable[[Any, list[Any]], Awaitable[SweepStop | None]],
    ) -> None:
        """Read a page under the lock, let ``settle`` act on it, move on, until done or out of budget."""
        s = self.settings
        budget = SweepBudget(
            page_size=s.reconcile_batch_limit,
            max_rows=s.reconcile_max_rows_per_sweep,
            max_seconds=s.reconcile_max_sweep_seconds,
        )
        after: sweeps.Keyset | None = None
        async with self.db.acquire() as conn:
            while True:
                limit = budget.next_page_size()
                async with conn.transaction():
                    if not await _try_lock(conn, lock):
                        result.stopped = SweepStop.LOCKED
                        result.skipped_locked = result.pages == 0
                        return
                    rows = await read(conn, limit, after)
                if not rows:
                    return
                result.pages += 1
                result.scanned += len(rows)
                budget.spend(len(rows))
                after = (rows[-1]["created_at"], rows[-1]["id"])
                stop = await settle(conn, rows)
                if stop is not None:
                    result.stopped = stop
                    return
                if len(rows) < limit:
                    return
                exhausted = budget.exhausted()
                if exhausted is not None:
                    result.stopped = exhausted
                    log.warning(
                        "reconcile_sweep_truncated",
                        stopped=exhausted.value,
                        scanned=result.scanned,
                        pages=result.pages,
                        detail="the next sweep continues from the oldest candidate",
                    )
                    return

    # --- orphans ------------------------------------------------------------------------------
    async def sweep_orphans(self, *, dry_run: bool = False) -> SweepResult:
        result = SweepResult()
        min_age = self.settings.orphan_min_age

        async def read(conn: Any, limit: int, after: sweeps.Keyset | None) -> list[Any]:
            return await sweeps.list_orphan_candidates(conn, min_age_s=min_age, limit=limit, after=after)

        async def settle(conn: Any, rows: list[Any]) -> SweepStop | None:
            known = await self._known_to_redis([str(row["id"]) for row in rows])
            orphans = [row for row, is_known in zip(rows, known, strict=True) if not is_known]
            return await self._settle_orphans(conn, orphans, result, dry_run=dry_run)

        await self._pages(_ORPHAN_LOCK, result, read, settle)
        return result

    async def _settle_orphans(
        self, conn: Any, orphans: list[Any], result: SweepResult, *, dry_run: bool
    ) -> SweepStop | None:
        """Mark, commit, then enqueue: never the other way round (see the module docstring)."""
        if not orphans:
            return None
        # queue_try, not attempts: deferrals and hand-backs refund their try, so this counts
        # the runs that really started and then vanished.
        give_up = [row for row in orphans if row["queue_try"] >= self.settings.job_max_tries]
        to_requeue = [row for row in orphans if row["queue_try"] < self.settings.job_max_tries]
        if dry_run:
            for row in give_up:
                self._log_gave_up(row, dry_run=True)
                result.failed.append(row["id"])
            for row in to_requeue:
                self._log_requeued(row, dry_run=True)
                result.requeued.append(row["id"])
            return None

        failed: set[UUID] = set()
        async with conn.transaction():
            if not await _try_lock(conn, _ORPHAN_LOCK):
                return SweepStop.LOCKED
            for row in give_up:
                if await sweeps.fail_unchanged(conn, [sweeps.SeenJob.from_row(row)], _gave_up_reason(row)):
                    failed.add(row["id"])
            marked = set(await sweeps.mark_requeued(conn, [sweeps.SeenJob.from_row(row) for row in to_requeue]))
        for row in give_up:
            if row["id"] in failed:
                self._log_gave_up(row, dry_run=False)
                result.failed.append(row["id"])
            else:
                self._log_changed(row, result)
        # Committed: every marked row is PENDING with no owner. Now enqueue them.
        pending = [row for row in to_requeue if row["id"] in marked]
        for row in to_requeue:
            if row["id"] not in marked:
                self._log_changed(row, result)
        for index, row in enumerate(pending):
            try:
                await self._requeue(str(row["id"]), company_id=row["company_id"])
            except _REDIS_ERRORS as exc:
                left = [r["id"] for r in pending[index:]]
                result.enqueue_failed.extend(left)
                log.warning(
                    "orphan_enqueue_failed",
                    error=repr(exc),
                    job_ids=[str(job_id) for job_id in left],
                    detail="the rows are PENDING: the next sweep enqueues them",
                )
                return SweepStop.REDIS
            self._log_requeued(row, dry_run=False)
            result.requeued.append(row["id"])
        return None

    def _log_requeued(self, row: Any, *, dry_run: bool) -> None:
        log.warning(
            "orphan_requeued",
            job_id=str(row["id"]),
            company_id=str(row["company_id"]),
            status=row["status"],
            age=round(time.time() - row["created_at"].timestamp(), 1),
            dry_run=dry_run,
        )

    def _log_gave_up(self, row: Any, *, dry_run: bool) -> None:
        log.error(
            "orphan_failed",
            job_id=str(row["id"]),
            company_id=str(row["company_id"]),
            reason=_gave_up_reason(row),
            dry_run=dry_run,
        )

    def _log_changed(self, row: Any, result: SweepResult) -> None:
        log.info(
            "orphan_changed_since_read",
            job_id=str(row["id"]),
            status_seen=row["status"],
            detail="claimed, renewed or handed back since the sweep read it; left alone",
        )
        result.changed.append(row["id"])

    # --- stalls -------------------------------------------------------------------------------
    async def sweep_stalled(self) -> SweepResult:
        result = SweepResult()
        limit_s = self.settings.stall_limit

        async def read(conn: Any, limit: int, after: sweeps.Keyset | None) -> list[Any]:
            return await sweeps.list_stall_candidates(conn, older_than_s=limit_s, limit=limit, after=after)

        async def settle(conn: Any, rows: list[Any]) -> SweepStop | None:
            known = await self._known_to_redis([str(row["id"]) for row in rows])
            stalled: list[Any] = []
            for row, is_known in zip(rows, known, strict=True):
                if is_known:
                    # Quiet in Postgres but queued (a retry whose hand-back could not be
                    # written) or held by a live lease in Redis: waiting or running, not stuck.
                    log.warning(
                        "stall_spared",
                        job_id=str(row["id"]),
                        company_id=str(row["company_id"]),
                        heartbeat_at=_iso(row["heartbeat_at"]),
                        detail="no heartbeat for the stall limit, but Redis still queues or runs it",
                    )
                    result.spared.append(row["id"])
                else:
                    stalled.append(row)
            return await self._fail_stalled(conn, stalled, result)

        await self._pages(_STALL_LOCK, result, read, settle)
        return result

    async def _fail_stalled(self, conn: Any, stalled: list[Any], result: SweepResult) -> SweepStop | None:
        if not stalled:
            return None
        async with conn.transaction():
            if not await _try_lock(conn, _STALL_LOCK):
                return SweepStop.LOCKED
            failed = await sweeps.fail_stalled(
                conn, [sweeps.SeenJob.from_row(row) for row in stalled], older_than_s=self.settings.stall_limit
            )
        done = {row["id"] for row in failed}
        for row in stalled:
            if row["id"] not in done:
                result.changed.append(row["id"])
                log.info("stall_changed_since_read", job_id=str(row["id"]), detail="it showed a sign of life")
        for row in failed:
            log.error(
                "job_stalled",
                alert=True,
                job_id=str(row["id"]),
                company_id=str(row["company_id"]),
                worker_id=row["worker_id"],
                started_at=_iso(row["started_at"]),
                run_started_at=_iso(row["run_started_at"]),
                heartbeat_at=_iso(row["heartbeat_at"]),
                attempts=row["attempts"],
                stall_limit=self.settings.stall_limit,
            )
            with contextlib.suppress(*_REDIS_ERRORS):
                await self.redis.zrem(self.settings.queue_name, str(row["id"]))
            result.failed.append(row["id"])
        return None

    # --- Redis --------------------------------------------------------------------------------
    async def _known_to_redis(self, job_ids: list[str]) -> list[bool]:
        """For each id: in the queue (waiting or deferred) or running under a live lease.

        One pipelined round trip per page (a ZSCORE and an EXISTS per id), not two per row.
        """
        if not job_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.zscore(self.settings.queue_name, job_id)
            pipe.exists(in_progress_key(job_id))
        replies = await pipe.execute()
        return [replies[2 * i] is not None or bool(replies[2 * i + 1]) for i in range(len(job_ids))]

    async def _requeue(self, job_id: str, *, company_id: UUID | None = None) -> None:
        # With the company, the job goes back into its tenant's queue (fair starts).
        await requeue(self.redis, UUID(job_id), company_id=company_id)

    # --- the loop -----------------------------------------------------------------------------
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
            changed=len(result.changed),
            enqueue_failed=len(result.enqueue_failed),
            spared=len(result.spared),
            scanned=result.scanned,
            pages=result.pages,
            stopped=result.stopped.value if result.stopped is not None else None,
            skipped_locked=result.skipped_locked,
            duration=round(time.monotonic() - started, 3),
        )


async def _try_lock(conn: Any, key: int) -> bool:
    """The sweep's lock for this transaction only (released by its commit or rollback)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", key))


def _gave_up_reason(row: Any) -> str:
    return f"gave up: job was abandoned after {row['queue_try']} tries (its worker kept dying)"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
