"""A local autoscaler with the seed's policy, and the measurement of how fast it responds (P3).

Policy (seed checklist, "Configure Auto-Scaling"), as target tracking: the metric is the jobs
per worker, waiting + active (arq keeps running jobs in ``arq:queue``, so this is the count of
due entries); the wanted worker count is ``ceil(depth / target)`` within ``[min, max]``.

- scale out to the wanted count at once, at most once per scale-out cooldown (60 s);
- scale in to the wanted count once nothing scaled for the scale-in cooldown (300 s): a worker
  is never stopped right after the queue made us add one;
- below the minimum (a worker died) the pool is topped up without waiting for a cooldown.

``decide`` is the policy as a pure function. ``Autoscaler`` runs it every tick against the
real queue and scales through a WorkerPool (Stack.start_worker / stop_worker, SIGTERM so the
stopped worker hands its jobs back). Its response time per scale-out event — from the tick
the queue first crossed the current workers' capacity to the first new worker taking a job
— goes to measurements.jsonl as ``autoscale_response`` (criterion P3). Every action goes to
``journal-autoscaler.jsonl``. The loop is bounded by ``max_duration`` and stops when told.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
from redis.asyncio import Redis

from lab.probes import RedisTarget, probe_queue
from lab.rundir import Measurement, append_measurement
from lab.workerpool import WorkerPool

log = logging.getLogger(__name__)

JOURNAL = "journal-autoscaler.jsonl"
RESPONSE_METRIC = "autoscale_response"
WORKER_KEY_PREFIX = "importer:workers:"

Action = Literal["hold", "out", "in"]


@dataclass(frozen=True)
class Policy:
    target_per_worker: int = 10
    min_workers: int = 2
    max_workers: int = 50
    scale_out_cooldown_s: float = 60.0
    scale_in_cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        if self.target_per_worker < 1 or self.min_workers < 0 or self.min_workers > self.max_workers:
            raise ValueError(f"invalid policy {self}")

    def wanted(self, depth: int) -> int:
        return min(self.max_workers, max(self.min_workers, math.ceil(max(depth, 0) / self.target_per_worker)))


@dataclass(frozen=True)
class Decision:
    action: Action
    target: int
    reason: str


def decide(
    policy: Policy,
    *,
    depth: int,
    current: int,
    now: float,
    last_scale_out: float | None,
    last_scale_in: float | None,
) -> Decision:
    """How many workers there should be now, and why (times in seconds, any monotonic clock)."""
    wanted = policy.wanted(depth)
    if current < policy.min_workers:
        return Decision("out", max(wanted, policy.min_workers), f"{current} workers, below the minimum")
    if current > policy.max_workers:
        return Decision("in", policy.max_workers, f"{current} workers, above the maximum")
    if wanted > current:
        if last_scale_out is not None and now - last_scale_out < policy.scale_out_cooldown_s:
            left = policy.scale_out_cooldown_s - (now - last_scale_out)
            return Decision("hold", current, f"depth {depth} wants {wanted}; scale-out cooldown, {left:.0f}s left")
        return Decision("out", wanted, f"depth {depth} > {current} x {policy.target_per_worker}")
    if wanted < current:
        last = max((t for t in (last_scale_out, last_scale_in) if t is not None), default=None)
        if last is not None and now - last < policy.scale_in_cooldown_s:
            left = policy.scale_in_cooldown_s - (now - last)
            return Decision("hold", current, f"depth {depth} wants {wanted}; scale-in cooldown, {left:.0f}s left")
        return Decision("in", wanted, f"depth {depth} needs only {wanted}")
    return Decision("hold", current, f"depth {depth}: {current} workers is the target")


@dataclass
class Crossing:
    """When the queue went above what the current workers are meant to carry, until it is served.

    The clock of P3 starts at the first tick where the wanted count exceeds the current one
    and stops when a worker added for it takes a job; a queue that falls back below the
    threshold before anything was added resets it.
    """

    since: float | None = None
    since_wall: datetime | None = None

    def update(self, policy: Policy, depth: int, current: int, now: float) -> None:
        above = policy.wanted(depth) > current
        if above and self.since is None:
            self.since, self.since_wall = now, datetime.now(UTC)
        elif not above:
            self.since, self.since_wall = None, None

    def take(self) -> tuple[float | None, datetime | None]:
        since, wall = self.since, self.since_wall
        self.since, self.since_wall = None, None
        return since, wall


@dataclass
class AutoscalerStats:
    ticks: int = 0
    blind_ticks: int = 0  # the queue could not be read: no decision taken
    scale_outs: int = 0
    scale_ins: int = 0
    responses: list[float] = field(default_factory=list)
    min_seen: int | None = None
    max_seen: int | None = None
    errors: list[str] = field(default_factory=list)
    stopped_by: str = ""


class Autoscaler:
    def __init__(
        self,
        policy: Policy,
        pool: WorkerPool,
        *,
        redis: RedisTarget,
        database_url: str,
        run_dir: Path,
        interval: float = 1.0,
        max_duration: float = 4 * 3600.0,
        take_timeout: float = 300.0,
        queue: str = "arq:queue",
    ) -> None:
        self.policy = policy
        self.pool = pool
        self.redis_target = redis
        self.database_url = database_url
        self.run_dir = run_dir
        self.interval = interval
        self.max_duration = max_duration
        self.take_timeout = take_timeout
        self.queue = queue
        self.stats = AutoscalerStats()
        self.crossing = Crossing()
        self.last_scale_out: float | None = None
        self.last_scale_in: float | None = None
        self.last_depth: int | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[AutoscalerStats] | None = None
        self._action: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._redis: Redis | None = None
        self._events = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[AutoscalerStats]:
        self._task = asyncio.create_task(self.run(), name="autoscaler")
        return self._task

    async def stop(self, grace: float = 120.0) -> AutoscalerStats:
        """Stop deciding; let a scale action in flight and the response watchers finish (bounded)."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self.stats.stopped_by = "cancelled"
        return self.stats

    async def run(self) -> AutoscalerStats:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        max_ticks = math.ceil(self.max_duration / self.interval) + 1
        try:
            for _ in range(max_ticks):
                if self._stop.is_set():
                    self.stats.stopped_by = "stop"
                    break
                if loop.time() - origin >= self.max_duration:
                    self.stats.stopped_by = "max_duration"
                    break
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)
            else:
                self.stats.stopped_by = "max_ticks"
        finally:
            await self._settle()
        return self.stats

    async def _settle(self) -> None:
        pending = [t for t in (self._action, *self._watchers) if t is not None and not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.take_timeout + 60)
            for task in late:
                task.cancel()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    # --- one tick -------------------------------------------------------------------------

    async def read_depth(self) -> int:
        if self._redis is None:
            self._redis = self.redis_target.client(timeout=2.0)
        counts = await probe_queue(self._redis, queue=self.queue, scan_batch=1000, scan_max_iterations=100)
        return counts.due  # waiting + active: arq keeps running jobs in the queue

    async def tick(self) -> Decision | None:
        self.stats.ticks += 1
        try:
            depth = await asyncio.wait_for(self.read_depth(), 5.0)
        except Exception as exc:  # a Redis outage: no decision on blind data
            self.stats.blind_ticks += 1
            log.debug("autoscaler: queue unreadable: %r", exc)
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
                self._redis = None
            return None
        self.last_depth = depth
        live = await asyncio.to_thread(self.pool.live_workers)
        current = len(live)
        self.stats.min_seen = current if self.stats.min_seen is None else min(self.stats.min_seen, current)
        self.stats.max_seen = current if self.stats.max_seen is None else max(self.stats.max_seen, current)
        busy = self._action is not None and not self._action.done()
        if busy:
            return None
        now = time.monotonic()
        self.crossing.update(self.policy, depth, current, now)
        decision = decide(
            self.policy,
            depth=depth,
            current=current,
            now=now,
            last_scale_out=self.last_scale_out,
            last_scale_in=self.last_scale_in,
        )
        if decision.action == "out":
            self.last_scale_out = now
            crossed, crossed_wall = self.crossing.take()
            self._action = asyncio.create_task(
                self._scale_out(current, decision, crossed or now, crossed_wall or datetime.now(UTC), depth)
            )
        elif decision.action == "in":
            self.last_scale_in = now
            self._action = asyncio.create_task(self._scale_in(current, decision, depth))
        return decision

    # --- actions --------------------------------------------------------------------------

    async def _scale_out(
        self, current: int, decision: Decision, crossed: float, crossed_wall: datetime, depth: int
    ) -> None:
        self._events += 1
        event = self._events
        count = decision.target - current
        log.info("autoscaler: scale out %d -> %d (%s)", current, decision.target, decision.reason)
        self._journal(
            "scale_out_started",
            event=event,
            current=current,
            target=decision.target,
            depth=depth,
            reason=decision.reason,
            crossed_at=crossed_wall.isoformat(),
        )
        results = await asyncio.gather(
            *(asyncio.to_thread(self.pool.start_worker) for _ in range(count)), return_exceptions=True
        )
        started = [r for r in results if isinstance(r, str)]
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            message = f"scale out: a worker failed to start: {type(failure).__name__}: {str(failure).splitlines()[0]}"
            self.stats.errors.append(message)
            log.error("autoscaler: %s", message)
        registered = time.monotonic()
        self.stats.scale_outs += 1
        self._journal(
            "scale_out_done",
            event=event,
            started=started,
            failed=len(failures),
            registered_after_s=round(registered - crossed, 3),
        )
        if started:
            watcher = asyncio.create_task(self._watch_first_job(event, started, crossed, registered))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)

    async def _scale_in(self, current: int, decision: Decision, depth: int) -> None:
        candidates = self.pool.stoppable()
        victims = candidates[-(current - decision.target) :] if current > decision.target else []
        log.info("autoscaler: scale in %d -> %d (%s): %s", current, decision.target, decision.reason, victims)
        self._journal(
            "scale_in_started",
            current=current,
            target=decision.target,
            depth=depth,
            reason=decision.reason,
            workers=victims,
        )
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(self.pool.stop_worker, w) for w in victims), return_exceptions=True
        )
        self.stats.scale_ins += 1
        self._journal("scale_in_done", outcomes={w: str(o) for w, o in zip(victims, outcomes, strict=True)})

    async def _watch_first_job(self, event: int, workers: list[str], crossed: float, registered: float) -> None:
        """Poll until one of ``workers`` holds a job (its id on a job row, or ``running`` > 0 in its
        registration); record the response from the crossing. Gives up when the queue has
        nothing left for it to take, or after ``take_timeout``."""
        deadline = time.monotonic() + self.take_timeout
        conn: Any = None
        try:
            conn = await asyncpg.connect(self.database_url, timeout=5)
            while time.monotonic() < deadline:
                taker = await self._first_taker(conn, workers)
                if taker is not None:
                    taken = time.monotonic()
                    response = taken - crossed
                    self.stats.responses.append(response)
                    append_measurement(
                        self.run_dir,
                        Measurement(
                            metric=RESPONSE_METRIC,
                            value=round(response, 3),
                            labels={
                                "event": str(event),
                                "worker": taker,
                                "workers_added": str(len(workers)),
                                "registered_after_s": f"{registered - crossed:.3f}",
                            },
                            at=datetime.now(UTC),
                        ),
                    )
                    self._journal("scale_out_served", event=event, worker=taker, response_s=round(response, 3))
                    return
                if self._stop.is_set():
                    self._journal("scale_out_not_observed", event=event, detail="the run ended first")
                    return
                if self.last_depth == 0:
                    self._journal(
                        "scale_out_unused", event=event, detail="the queue emptied before a new worker took a job"
                    )
                    return
                await asyncio.sleep(0.5)
            # Still not serving after take_timeout with work waiting: that is the response time
            # (a lower bound), and P3 must see it.
            response = time.monotonic() - crossed
            append_measurement(
                self.run_dir,
                Measurement(
                    metric=RESPONSE_METRIC,
                    value=round(response, 3),
                    labels={"event": str(event), "worker": "", "timed_out": "true"},
                    at=datetime.now(UTC),
                ),
            )
            self._journal("scale_out_not_served", event=event, after_s=round(response, 3))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            message = f"scale-out event {event}: cannot watch the new workers: {exc!r}"
            self.stats.errors.append(message)
            log.warning("autoscaler: %s", message)
        finally:
            if conn is not None:
                await conn.close(timeout=5)

    async def _first_taker(self, conn: Any, workers: list[str]) -> str | None:
        row = await conn.fetchrow(
            "SELECT worker_id FROM product_import_jobs WHERE worker_id = ANY($1::text[]) LIMIT 1",
            workers,
            timeout=5,
        )
        if row is not None:
            return str(row["worker_id"])
        if self._redis is not None:
            with contextlib.suppress(Exception):
                values = await self._redis.mget([WORKER_KEY_PREFIX + w for w in workers])
                for worker, value in zip(workers, values, strict=True):
                    if value and json.loads(value).get("running", 0) > 0:
                        return worker
        return None

    def _journal(self, kind: str, **fields: Any) -> None:
        record = {"at": datetime.now(UTC).isoformat(), "kind": kind, **fields}
        with (self.run_dir / JOURNAL).open("a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")


def policy_from_scenario(autoscale: Any) -> Policy:
    """lab.scenarios.Autoscale → Policy (kept apart so this module needs no scenario to run)."""
    return Policy(
        target_per_worker=autoscale.target_per_worker,
        min_workers=autoscale.min_workers,
        max_workers=autoscale.max_workers,
        scale_out_cooldown_s=autoscale.scale_out_cooldown_s,
        scale_in_cooldown_s=autoscale.scale_in_cooldown_s,
    )
