"""A small shared counter store: one Redis hash, one field per event kind.

Every process bumps the same hash, so the health report (and later the metrics exporter) can
show fleet-wide totals without a metrics backend. Counting is best effort by design: a Redis
hiccup must never fail the request or job that was being protected, so a failed bump is logged
(with what was lost) rather than raised.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from importer.logs import get_logger
from importer.protection.keys import COUNTERS

log = get_logger(__name__)

# The names in use, so dashboards and docs have one list to read.
RATELIMIT_WAITS = "ratelimit_waits"
RATELIMIT_DEFERRALS = "ratelimit_deferrals"
BREAKER_OPENS = "breaker_opens"
BREAKER_REJECTIONS = "breaker_rejections"
JOBS_DEFERRED = "jobs_deferred"
QUEUE_START_THROTTLES = "queue_start_throttles"
INTAKE_REJECTED_OVERLOAD = "intake_rejected_overload"
INTAKE_REJECTED_CLOSED = "intake_rejected_closed"
INTAKE_DEFERRED_BASIC = "intake_deferred_basic"
BRAKE_AUTO_PAUSES = "brake_auto_pauses"
BRAKE_AUTO_RESUMES = "brake_auto_resumes"
# Fairness between tenants (several also per tier as ``name:TIER``).
INTAKE_REJECTED_COMPANY_LIMIT = "intake_rejected_company_limit"
INTAKE_REJECTED_TENANT_SHED = "intake_rejected_tenant_shed"
INTAKE_ADMITTED_BESIDE_NOISY = "intake_admitted_beside_noisy_tenant"
FAIR_STARTS = "fair_starts"
TENANT_BRAKE_PAUSES = "tenant_brake_pauses"
TENANT_BRAKE_RESUMES = "tenant_brake_resumes"


class Counters:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def bump(self, name: str, by: int = 1, *, detail: str | None = None) -> None:
        """Add ``by`` to ``name`` (and to ``name:detail`` when a detail such as a provider is given)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(COUNTERS, name, by)
                if detail:
                    pipe.hincrby(COUNTERS, f"{name}:{detail}", by)
                await pipe.execute()
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("counter_bump_failed", counter=name, by=by, detail=detail, error=repr(exc))

    async def read(self) -> dict[str, int]:
        raw: dict[Any, Any] = await self._redis.hgetall(COUNTERS)
        return {_text(k): int(v) for k, v in sorted(raw.items(), key=lambda kv: _text(kv[0]))}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
