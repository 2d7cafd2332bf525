"""Queue health: how many jobs wait, for how long, and what level that makes.

Reading arq's queue right takes care, because arq keeps a *running* job in ``arq:queue`` until
it finishes (score = when it was enqueued or deferred to, in ms):

- waiting  = due entries (score <= now) that hold no ``arq:in-progress:<id>`` key;
- deferred = entries with score > now (retries, BASIC jobs deferred at critical, deferrals);
- active   = ``arq:in-progress:*`` keys (running jobs);
- oldest waiting age = now - score of the first due entry that is not running, found by
  walking the due entries in score order and skipping running ones, at most
  ``health_age_scan_limit`` of them (then the age is a lower bound, flagged as such).

Levels come from two thresholds each (waiting count and oldest waiting age); the worse one
wins. The report also carries the companies with the most waiting jobs (PENDING rows, one
bounded GROUP BY) and which of them are *noisy* (at least ``tenant_shed_share`` of all waiting
jobs): admission sheds those first, and the brakes tell a one-tenant overload from a general
one by them (see ``fairness``). The reconciler's monitor computes the report every ``health_cache_seconds`` and
publishes it to Redis (``importer:health``); API processes read that and compute it themselves
only when it is stale (the monitor is down), so N API processes do not each scan Redis.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass, field
from typing import Any

from importer.logs import get_logger
from importer.models import Provider
from importer.protection.breaker import CircuitBreakers
from importer.protection.counters import Counters
from importer.protection.fairness import TenantWaiting, noisy_tenants, waiting_by_tenant
from importer.protection.keys import HEALTH, INTAKE_CLOSED, PAUSED, TENANT_PAUSED
from importer.settings import Settings
from importer.worker.keys import WORKER_KEY_PREFIX, in_progress_key

log = get_logger(__name__)

_IN_PROGRESS_PREFIX = in_progress_key("")
_SCAN_COUNT = 1000
_MAX_SCAN_CALLS = 10_000  # a keyspace of ten million keys; past that the counts are approximate
_WALK_BATCH = 200


class Level(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    OVERLOAD = "overload"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)


_ORDER = [Level.HEALTHY, Level.DEGRADED, Level.CRITICAL, Level.OVERLOAD]


@dataclass(frozen=True)
class Thresholds:
    """(degraded, critical, overload) for the waiting count and the oldest waiting age (s)."""

    waiting: tuple[int, int, int]
    age: tuple[float, float, float]

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            waiting=(s.health_degraded_waiting, s.health_critical_waiting, s.health_overload_waiting),
            age=(s.health_degraded_age, s.health_critical_age, s.health_overload_age),
        )


def level_for(waiting: int, oldest_age: float | None, thresholds: Thresholds) -> tuple[Level, list[str]]:
    """The level (the worse of the two measures) and the thresholds that put it there."""
    by_rank: dict[int, list[str]] = {}
    for rank, limit in enumerate(thresholds.waiting, start=1):
        if waiting >= limit:
            by_rank.setdefault(rank, []).append(f"{waiting} waiting >= {limit}")
    if oldest_age is not None:
        for rank, limit_s in enumerate(thresholds.age, start=1):
            if oldest_age >= limit_s:
                by_rank.setdefault(rank, []).append(f"oldest waiting {oldest_age:.0f}s >= {limit_s:g}s")
    top = max(by_rank, default=0)
    return _ORDER[top], by_rank.get(top, [])


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    active: int
    deferred: int
    oldest_waiting_age: float | None
    oldest_age_is_lower_bound: bool = False
    workers_alive: int = 0
    approximate: bool = False


async def _scan_keys(redis: Any, pattern: str) -> tuple[list[bytes], bool]:
    """All keys matching ``pattern``; bounded in calls (True = stopped early, list incomplete)."""
    keys: list[bytes] = []
    cursor: int = 0
    for _ in range(_MAX_SCAN_CALLS):
        cursor, batch = await redis.scan(cursor=cursor, match=pattern, count=_SCAN_COUNT)
        keys.extend(batch)
        if int(cursor) == 0:
            return keys, False
    return keys, True


async def queue_stats(redis: Any, queue_name: str, *, scan_limit: int, now_ms: int | None = None) -> QueueStats:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue_name, "-inf", now_ms)
        pipe.zcount(queue_name, f"({now_ms}", "+inf")
        due, deferred = await pipe.execute()
    raw_running, cut_running = await _scan_keys(redis, f"{_IN_PROGRESS_PREFIX}*")
    running = {_text(k)[len(_IN_PROGRESS_PREFIX) :] for k in raw_running}
    running_due = 0
    ids = sorted(running)
    for start in range(0, len(ids), _SCAN_COUNT):
        chunk = ids[start : start + _SCAN_COUNT]
        scores = await redis.zmscore(queue_name, chunk)
        running_due += sum(1 for s in scores if s is not None and s <= now_ms)
    waiting = max(0, int(due) - running_due)
    oldest, lower_bound = await _oldest_waiting_age(redis, queue_name, running, now_ms, scan_limit)
    workers, cut_workers = await _scan_keys(redis, f"{WORKER_KEY_PREFIX}*")
    return QueueStats(
        waiting=waiting,
        active=len(running),
        deferred=int(deferred),
        oldest_waiting_age=oldest,
        oldest_age_is_lower_bound=lower_bound,
        workers_alive=len(workers),
        approximate=cut_running or cut_workers,
    )


async def _oldest_waiting_age(
    redis: Any, queue_name: str, running: set[str], now_ms: int, scan_limit: int
) -> tuple[float | None, bool]:
    """Walk the due entries oldest first, skipping running jobs, at most ``scan_limit`` of them."""
    offset = 0
    last_score: float | None = None
    while offset < scan_limit:
        batch = await redis.zrangebyscore(
            queue_name, "-inf", now_ms, start=offset, num=min(_WALK_BATCH, scan_limit - offset), withscores=True
        )
        if not batch:
            return None, False
        for member, score in batch:
            last_score = float(score)
            if _text(member) not in running:
                return max(0.0, (now_ms - last_score) / 1000), False
        offset += len(batch)
    # Only running jobs within the limit: the oldest waiting one is younger than the last seen.
    return (None, False) if last_score is None else (max(0.0, (now_ms - last_score) / 1000), True)


@dataclass
class HealthReport:
    level: Level
    reasons: list[str]
    waiting: int
    active: int
    deferred: int
    failed_last_hour: int | None
    oldest_waiting_age: float | None
    oldest_age_is_lower_bound: bool
    workers_alive: int
    breakers: dict[str, dict[str, Any]]
    paused: dict[str, Any] | None
    intake_closed: dict[str, Any] | None
    counters: dict[str, int]
    computed_at: float
    computed_by: str
    approximate: bool = False
    thresholds: dict[str, Any] = field(default_factory=dict)
    # Per-company waiting jobs (PENDING rows, most first, bounded) and their total; None when
    # Postgres did not answer. ``noisy``: companies at or over the shed share (see fairness).
    tenants_top: list[TenantWaiting] = field(default_factory=list)
    tenants_pending_total: int | None = None
    noisy_tenants: list[str] = field(default_factory=list)
    paused_tenants: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "reasons": self.reasons,
            "counts": {
                "waiting": self.waiting,
                "active": self.active,
                "deferred": self.deferred,
                "failed_last_hour": self.failed_last_hour,
            },
            "oldest_waiting_age": None if self.oldest_waiting_age is None else round(self.oldest_waiting_age, 3),
            "oldest_age_is_lower_bound": self.oldest_age_is_lower_bound,
            "workers_alive": self.workers_alive,
            "breakers": self.breakers,
            "paused": self.paused,
            "intake_closed": self.intake_closed,
            "counters": self.counters,
            "computed_at": self.computed_at,
            "computed_by": self.computed_by,
            "approximate": self.approximate,
            "thresholds": self.thresholds,
            "tenants": {
                "pending_total": self.tenants_pending_total,
                "top_waiting": [
                    {
                        "company_id": t.company_id,
                        "waiting": t.waiting,
                        "share": round(t.share(self.tenants_pending_total or 0), 4),
                    }
                    for t in self.tenants_top
                ],
                "noisy": self.noisy_tenants,
            },
            "paused_tenants": self.paused_tenants,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> HealthReport:
        counts = body["counts"]
        tenants = body.get("tenants") or {}
        return cls(
            level=Level(body["level"]),
            reasons=list(body.get("reasons", [])),
            waiting=int(counts["waiting"]),
            active=int(counts["active"]),
            deferred=int(counts["deferred"]),
            failed_last_hour=counts.get("failed_last_hour"),
            oldest_waiting_age=body.get("oldest_waiting_age"),
            oldest_age_is_lower_bound=bool(body.get("oldest_age_is_lower_bound", False)),
            workers_alive=int(body.get("workers_alive", 0)),
            breakers=dict(body.get("breakers", {})),
            paused=body.get("paused"),
            intake_closed=body.get("intake_closed"),
            counters=dict(body.get("counters", {})),
            computed_at=float(body["computed_at"]),
            computed_by=str(body.get("computed_by", "")),
            approximate=bool(body.get("approximate", False)),
            thresholds=dict(body.get("thresholds", {})),
            tenants_top=[
                TenantWaiting(str(t["company_id"]), int(t["waiting"])) for t in tenants.get("top_waiting", [])
            ],
            tenants_pending_total=tenants.get("pending_total"),
            noisy_tenants=[str(c) for c in tenants.get("noisy", [])],
            paused_tenants=dict(body.get("paused_tenants") or {}),
        )


async def failed_last_hour(db: Any) -> int:
    async with db.acquire() as conn:
        value = await conn.fetchval(
            "SELECT count(*) FROM product_import_jobs"
            " WHERE status = 'FAILED' AND finished_at > now() - interval '1 hour'"
        )
    return int(value or 0)


async def compute_report(settings: Settings, redis: Any, db: Any, *, computed_by: str) -> HealthReport:
    """Everything the health endpoint shows, read from Redis and Postgres now."""
    stats = await queue_stats(redis, settings.queue_name, scan_limit=settings.health_age_scan_limit)
    thresholds = Thresholds.from_settings(settings)
    level, reasons = level_for(stats.waiting, stats.oldest_waiting_age, thresholds)
    breakers = CircuitBreakers(redis, settings, Counters(redis))
    breaker_states = {p.value: await breakers.snapshot(p.value) for p in Provider}
    try:
        failed: int | None = await failed_last_hour(db)
    except Exception as exc:  # the queue's health must still be reported when Postgres is away
        log.warning("health_failed_count_unavailable", error=repr(exc))
        failed = None
    try:
        top, pending_total = await waiting_by_tenant(db, limit=settings.health_top_tenants)
        total: int | None = pending_total
    except Exception as exc:  # as above: no per-tenant view, but the level is still reported
        log.warning("health_tenant_counts_unavailable", error=repr(exc))
        top, total = [], None
    paused, intake = await _flags(redis)
    return HealthReport(
        level=level,
        reasons=reasons,
        waiting=stats.waiting,
        active=stats.active,
        deferred=stats.deferred,
        failed_last_hour=failed,
        oldest_waiting_age=stats.oldest_waiting_age,
        oldest_age_is_lower_bound=stats.oldest_age_is_lower_bound,
        workers_alive=stats.workers_alive,
        breakers=breaker_states,
        paused=paused,
        intake_closed=intake,
        counters=await Counters(redis).read(),
        computed_at=time.time(),
        computed_by=computed_by,
        approximate=stats.approximate,
        thresholds={"waiting": list(thresholds.waiting), "age": list(thresholds.age)},
        tenants_top=top,
        tenants_pending_total=total,
        noisy_tenants=noisy_tenants(top, total or 0, share=settings.tenant_shed_share),
        paused_tenants=await read_tenant_pauses(redis),
    )


async def _flags(redis: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(PAUSED)
        pipe.get(INTAKE_CLOSED)
        raw_pause, raw_intake = await pipe.execute()
    return _json_or_text(raw_pause), _json_or_text(raw_intake)


async def read_tenant_pauses(redis: Any) -> dict[str, Any]:
    """Company id → pause state of every tenant the tenant brake paused (read live)."""
    raw: dict[Any, Any] = await redis.hgetall(TENANT_PAUSED)
    return {_text(k): _json_or_text(v) for k, v in sorted(raw.items(), key=lambda kv: _text(kv[0]))}


def _json_or_text(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return {"reason": _text(raw)[:200]}
    return body if isinstance(body, dict) else {"reason": str(body)}


async def publish(redis: Any, report: HealthReport, *, ttl: float) -> None:
    await redis.set(HEALTH, json.dumps(report.to_json()), px=max(1, int(ttl * 1000)))


async def read_published(redis: Any) -> HealthReport | None:
    raw = await redis.get(HEALTH)
    if raw is None:
        return None
    try:
        return HealthReport.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("health_published_unreadable", error=repr(exc))
        return None


class HealthCache:
    """Health for an API process: its own copy for ``health_cache_seconds``, else the published
    report while fresh, else computed here (one computation at a time) and published."""

    def __init__(self, settings: Settings, redis: Any, db: Any, *, name: str = "api") -> None:
        self._settings = settings
        self._redis = redis
        self._db = db
        self._name = name
        self._report: HealthReport | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> HealthReport:
        if self._report is not None and time.monotonic() - self._fetched_at < self._settings.health_cache_seconds:
            return self._report
        async with self._lock:
            if self._report is not None and time.monotonic() - self._fetched_at < self._settings.health_cache_seconds:
                return self._report
            report = await read_published(self._redis)
            if report is None or time.time() - report.computed_at > self._settings.health_stale_after:
                report = await compute_report(self._settings, self._redis, self._db, computed_by=self._name)
                await publish(self._redis, report, ttl=self._settings.health_stale_after * 3)
            self._report = report
            self._fetched_at = time.monotonic()
            return report

    async def live_flags(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Pause and intake flags read now: an operator's pause must show at once, not in 10 s."""
        return await _flags(self._redis)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
