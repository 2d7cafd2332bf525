"""Our arq worker: arq's ``Worker`` with a lease, a Redis-proof main loop and a graceful stop.

Subclassed, not forked (docs/architecture.md §7 lists what arq lacks):
- ``start_jobs`` writes the in-progress key with a TTL of one lease instead of the longest job
  timeout (the lease keeper renews it), and always gives its concurrency slot back when Redis
  fails mid-start (arq's version leaks the slot).
- the main loop survives Redis connection errors: it logs, backs off and polls again, where
  arq's exits.
- SIGTERM/SIGINT: stop taking jobs, let running jobs reach a checkpoint (they see
  ``runtime.shutdown``), hand unfinished ones back after ``shutdown_grace_seconds``, close the
  pools, return so the process exits 0.
- protection (importer/protection): each poll reads the queue's pause flag (paused = take no
  new jobs, running ones finish) and starts due VIP jobs from the priority set, then due jobs
  of the tenants' queues round-robin (fair starts between tenants, ``tenant_queue``), before
  arq's own poll (the fallback, oldest first); jobs of tenants the tenant brake paused are
  started by none of these paths; every start takes a token of the queue-wide job-start limit,
  and a start that finds none leaves the job queued (no try spent) and stops starting until
  the window frees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from arq import Worker
from arq.utils import poll, timestamp_ms
from redis.exceptions import RedisError, WatchError

from importer.connections import open_redis
from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.logs import get_logger
from importer.protection import counters as counter_names
from importer.protection.pause import read_pause
from importer.protection.priority import due_priority_ids
from importer.protection.tenant_queue import ids_of_paused_tenants, note_started, plan_fair, read_paused_tenants
from importer.runtime import Runtime
from importer.settings import Settings
from importer.worker.jobs import import_catalog
from importer.worker.keys import JOB_FUNCTION, in_progress_key, worker_key

log = get_logger(__name__)

_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class ImportWorker(Worker):
    def __init__(self, settings: Settings, *, worker_id: str | None = None, burst: bool = False) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{os.uname().nodename}-{os.getpid()}"
        super().__init__(
            functions=[_job_function()],
            queue_name=settings.queue_name,
            redis_pool=open_redis(settings),
            burst=burst,
            handle_signals=False,
            max_jobs=settings.worker_concurrency,
            job_timeout=settings.job_timeout,
            keep_result=3600,
            poll_delay=settings.worker_poll_delay,
            # One more than ours: our job function fails the job itself on its last try, with
            # the real reason; arq's own limit is only the backstop (see finish_failed_job).
            max_tries=settings.job_max_tries + 1,
            health_check_interval=settings.worker_heartbeat_interval,
        )
        # The lease: arq psetex()es the in-progress key with this TTL when a job starts.
        self.in_progress_timeout_s = settings.lease_seconds
        self.runtime: Runtime | None = None
        self._stopping = False
        self._stop_started: float | None = None
        self._redis_failures = 0
        self._registration: asyncio.Task[None] | None = None
        self._started_at = time.time()
        self._starts_blocked_until = 0.0  # time.time() until which the job-start limit is spent
        self._pause_seen: str | None = None
        self._paused_tenants: set[str] = set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)

    # --- lifecycle -----------------------------------------------------------------------
    async def _startup(self, ctx: dict[str, Any]) -> None:
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=self.settings.image_concurrency * 2 + 4))
        deadline = time.monotonic() + self.settings.startup_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                self.runtime = await Runtime.open(self.settings, worker_id=self.worker_id, redis=self.pool)
                await self.runtime.store.ensure_bucket()
                break
            except Exception as exc:
                if self.runtime is not None:
                    await self.runtime.close()
                    self.runtime = None
                if time.monotonic() > deadline:
                    log.error("worker_startup_failed", error=repr(exc), attempts=attempt)
                    raise
                log.warning("worker_startup_retry", error=repr(exc), attempt=attempt)
                await asyncio.sleep(min(5.0, 0.5 * attempt))
        ctx["runtime"] = self.runtime
        self._registration = asyncio.create_task(self._register_loop())
        log.info(
            "worker_started",
            worker_id=self.worker_id,
            concurrency=self.settings.worker_concurrency,
            lease_seconds=self.settings.lease_seconds,
        )

    async def _shutdown(self, ctx: dict[str, Any]) -> None:
        if self._registration is not None:
            self._registration.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._registration
        with contextlib.suppress(*_REDIS_ERRORS):
            await self.pool.delete(worker_key(self.worker_id))
        if self.runtime is not None:
            await self.runtime.close()

    async def _register_loop(self) -> None:
        """Keep ``importer:workers:<id>`` alive (TTL one lease) so others can count live workers."""
        while True:
            running = self._running()
            value = json.dumps(
                {
                    "pid": os.getpid(),
                    "started_at": self._started_at,
                    "running": running,
                    "stopping": self._stopping,
                }
            )
            try:
                await self.pool.set(worker_key(self.worker_id), value, px=int(self.settings.lease_seconds * 1000))
            except _REDIS_ERRORS as exc:
                log.debug("worker_register_failed", error=repr(exc))
            await asyncio.sleep(self.settings.lease_renew_interval)

    async def main(self) -> None:
        """arq's main loop without its fatal flaw: a Redis error is waited out, not an exit."""
        self.ctx["redis"] = self.pool
        await self._startup(self.ctx)
        async for _ in poll(self.poll_delay_s):
            await self._poll_iteration()
            # Leaving by ourselves once stopping and idle does not depend on main_task.cancel()
            # arriving: a cancellation absorbed inside a client library must not keep us alive.
            if self._stopping and not self._running():
                return
            if self.burst and not self.tasks and await self._queue_empty():
                return

    def _running(self) -> int:
        return sum(not t.done() for t in self.tasks.values())

    async def _queue_empty(self) -> bool:
        with contextlib.suppress(*_REDIS_ERRORS):
            return bool(await self.pool.zcard(self.queue_name) == 0)
        return False

    async def _poll_iteration(self) -> None:
        try:
            await self._protection_poll()
            await super()._poll_iteration()
        except _REDIS_ERRORS as exc:
            self._redis_failures += 1
            delay = min(self.settings.redis_reconnect_backoff_max, 0.25 * 2 ** min(self._redis_failures, 8))
            log.warning("redis_unavailable", error=repr(exc), failures=self._redis_failures, retry_in=delay)
            await asyncio.sleep(delay)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_poll_error")
            await asyncio.sleep(1.0)
            return
        if self._redis_failures:
            log.info("redis_reconnected", after_failures=self._redis_failures)
            self._redis_failures = 0

    async def _protection_poll(self) -> None:
        """The pause flag decides whether to take jobs at all; then VIP jobs go before arq's poll."""
        pause = await read_pause(self.pool)
        if pause is not None and self._pause_seen != pause.raw:
            log.info("worker_sees_pause", mode=pause.mode, reason=pause.reason, running=len(self.tasks))
        elif pause is None and self._pause_seen is not None:
            log.info("worker_sees_resume")
        self._pause_seen = None if pause is None else pause.raw
        self.allow_pick_jobs = pause is None and not self._stopping
        if not self.allow_pick_jobs:
            return
        # Read on every poll that may start anything, so arq's poll below never uses a stale set.
        paused_tenants = await read_paused_tenants(self.pool)
        if paused_tenants != self._paused_tenants:
            log.info("worker_sees_tenant_pauses", paused=sorted(paused_tenants))
            self._paused_tenants = paused_tenants
        if self.job_counter >= self.max_jobs or self._starts_blocked():
            return
        plan = await due_priority_ids(self.pool, self.queue_name, now_ms=timestamp_ms(), limit=self.queue_read_limit)
        if plan.start:
            await self.start_jobs([job_id.encode() for job_id in plan.start])
        await self._fair_starts()

    async def _fair_starts(self) -> None:
        """Start due jobs of the tenants' queues, round-robin, least recently started first."""
        slots = self.max_jobs - self.job_counter
        if slots <= 0 or not self.allow_pick_jobs or self._starts_blocked():
            return
        recheck_ms = int(self.settings.lease_seconds * 1000)
        plan = await plan_fair(
            self.pool,
            self.queue_name,
            now_ms=timestamp_ms(),
            slots=slots,
            scan_limit=self.settings.fair_scan_tenants,
            recheck_ms=recheck_ms,
            paused=self._paused_tenants,
        )
        started = 0
        for company_id, job_id in plan.start:
            outcome = await self._start_one(job_id)
            if outcome is None:
                break
            if outcome:
                started += 1
                await note_started(self.pool, company_id, job_id, now_ms=timestamp_ms(), recheck_ms=recheck_ms)
                log.debug("fair_start", job_id=job_id, company_id=company_id)
        if started and self.runtime is not None and self.runtime.protection is not None:
            await self.runtime.protection.counters.bump(counter_names.FAIR_STARTS, started)

    def _starts_blocked(self) -> bool:
        return time.time() < self._starts_blocked_until

    # --- starting jobs -------------------------------------------------------------------------
    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's poll and the VIP set come here; jobs of tenants paused by the tenant brake are
        left queued (found in the paused tenants' queues: one read, and only while any is paused)."""
        ids = [raw.decode() for raw in job_ids]
        held = await ids_of_paused_tenants(self.pool, ids, self._paused_tenants)
        for job_id in ids:
            if job_id in held:
                continue
            if await self._start_one(job_id) is None:
                return

    async def _start_one(self, job_id: str) -> bool | None:
        """True: started; False: not this one; None: no more starts in this poll."""
        if not self.allow_pick_jobs or self._starts_blocked():
            return None
        await self.sem.acquire()
        if self.job_counter >= self.max_jobs:
            self.sem.release()
            return None
        self.job_counter += 1
        started = False
        try:
            started = await self._try_start(job_id)
        finally:
            if not started:
                self.job_counter -= 1
                self.sem.release()
        return started

    async def _try_start(self, job_id: str) -> bool:
        """Take the job if nobody holds its lease; True when a task was started for it."""
        running = self.tasks.get(job_id)
        if running is not None and not running.done():
            # Our own lease lapsed (a slow renewal) while we still run the job: keep running it
            # here rather than starting a second copy in this process; the keeper re-takes the key.
            return False
        key = in_progress_key(job_id)
        async with self.pool.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            held = await pipe.exists(key)
            score = await pipe.zscore(self.queue_name, job_id)
            if held or not score or score > timestamp_ms():
                return False
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.psetex(key, int(self.in_progress_timeout_s * 1000), b"1")
            try:
                await pipe.execute()
            except WatchError:
                return False
        if not await self._take_start_token(job_id, key):
            return False
        task = self.loop.create_task(self.run_job(job_id, int(score)))
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = task
        return True

    async def _take_start_token(self, job_id: str, claim_key: str) -> bool:
        """The queue-wide job-start limit, asked only after the claim is won (a lost race costs
        no token). Without a token the claim is undone: the job stays queued, no try spent."""
        protection = self.runtime.protection if self.runtime is not None else None
        if protection is None:
            return True
        try:
            wait = await protection.limiter.take_job_start()
        except BaseException:
            with contextlib.suppress(*_REDIS_ERRORS):
                await self.pool.delete(claim_key)
            raise
        if wait is None:
            return True
        with contextlib.suppress(*_REDIS_ERRORS):
            # If this fails the claim expires after one lease; the job waits that long, no more.
            await self.pool.delete(claim_key)
        self._starts_blocked_until = time.time() + wait
        await protection.counters.bump(counter_names.QUEUE_START_THROTTLES)
        log.info(
            "queue_start_throttled",
            job_id=job_id,
            retry_in=round(wait, 2),
            limit_per_min=self.settings.queue_start_limit_per_min,
        )
        return False

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq gave up on a job without running our function (max tries, expired): record it."""
        await super().finish_failed_job(job_id, result_data)
        if self.runtime is None:
            return
        try:
            async with self.runtime.db.acquire() as conn:
                failed = await jobs.fail(conn, UUID(job_id), "retries exhausted: arq refused to run the job again")
            if failed is not None:
                log.error("job_failed", job_id=job_id, reason=failed.error)
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            log.warning("job_fail_record_failed", job_id=job_id, error=repr(exc))

    # --- stopping --------------------------------------------------------------------------------
    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stopping:
            log.warning("worker_second_signal", signal=sig.name, detail="stopping now")
            self._cancel_all()
            return
        self._stopping = True
        self._stop_started = time.monotonic()
        self.allow_pick_jobs = False
        if self.runtime is not None:
            self.runtime.shutdown.set()
        running = self._running()
        log.info(
            "worker_stopping",
            signal=sig.name,
            running_jobs=running,
            grace=self.settings.shutdown_grace_seconds,
        )
        self.loop.create_task(self._graceful_stop())

    async def _graceful_stop(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        try:
            await asyncio.wait_for(self._tasks_done(), timeout=grace)
        except TimeoutError:
            log.warning("worker_grace_exceeded", still_running=sum(not t.done() for t in self.tasks.values()))
            self._cancel_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tasks_done(), timeout=10)
        if self.main_task is not None:
            self.main_task.cancel()

    async def _tasks_done(self) -> None:
        # Tasks come and go in arq's dict; polling it is simpler than wiring events into arq.
        while any(not t.done() for t in self.tasks.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def _cancel_all(self) -> None:
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
        if self.main_task is not None and all(t.done() for t in self.tasks.values()):
            self.main_task.cancel()

    async def close(self) -> None:
        """Close pools even when Redis is down: a stopping worker must still exit 0.

        Every step is bounded by the shutdown grace: a pool that cannot close cleanly (a peer
        that stopped answering) must not turn a SIGTERM into a SIGKILL by the supervisor.
        """
        log.info("worker_closing", running_jobs=self._running())
        bound = max(1.0, self.settings.shutdown_grace_seconds)
        try:
            with contextlib.suppress(*_REDIS_ERRORS):
                await asyncio.wait_for(asyncio.gather(*self.tasks.values(), return_exceptions=True), bound)
                await asyncio.wait_for(self.pool.delete(self.health_check_key), bound)
            try:
                await asyncio.wait_for(self._shutdown(self.ctx), bound)
            except TimeoutError:
                log.warning("worker_close_timeout", step="runtime", bound=bound)
        finally:
            with contextlib.suppress(*_REDIS_ERRORS):
                await asyncio.wait_for(self.pool.aclose(close_connection_pool=True), bound)
            self._pool = None
        if self._stop_started is not None:
            log.info("worker_stopped", shutdown_duration=round(time.monotonic() - self._stop_started, 3))
        else:
            log.info("worker_stopped")


def _job_function() -> Any:
    from arq.worker import func

    return func(import_catalog, name=JOB_FUNCTION)
