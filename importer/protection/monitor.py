"""The health monitor: computes queue health on an interval, publishes it, and drives the brake.

Runs inside the reconciler process, the one background process every deployment runs, so
there is exactly one place that decides to pause or resume (several reconcilers are harmless:
the pause flag is set with NX and lifted with compare-and-delete). The health report carries
the per-company waiting counts (one bounded GROUP BY per tick), which the queue brake and the
tenant brake (``tenant_brake``) read to tell a single noisy tenant from a general overload.
"""

from __future__ import annotations

from typing import Any

from importer.logs import get_logger
from importer.protection.counters import Counters
from importer.protection.health import HealthReport, Level, compute_report, publish
from importer.protection.pause import BrakeAction, EmergencyBrake
from importer.protection.tenant_brake import TenantBrake
from importer.settings import Settings

log = get_logger(__name__)


class HealthMonitor:
    def __init__(self, settings: Settings, db: Any, redis: Any) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.brake = EmergencyBrake(settings, redis, Counters(redis))
        self.tenant_brake = TenantBrake(settings, redis, db, Counters(redis))
        self._last_level: Level | None = None
        self._last_noisy: list[str] = []

    async def tick(self) -> tuple[HealthReport, BrakeAction]:
        report = await compute_report(self.settings, self.redis, self.db, computed_by="reconciler")
        await publish(self.redis, report, ttl=self.settings.health_stale_after * 3)
        if report.level is not self._last_level:
            fields: dict[str, Any] = {
                "level": report.level.value,
                "previous": None if self._last_level is None else self._last_level.value,
                "waiting": report.waiting,
                "active": report.active,
                "deferred": report.deferred,
                "oldest_waiting_age": report.oldest_waiting_age,
                "reasons": report.reasons,
            }
            if report.level.rank >= Level.CRITICAL.rank:
                log.warning("queue_health_changed", alert=True, **fields)
            else:
                log.info("queue_health_changed", **fields)
            self._last_level = report.level
        noisy = report.noisy_tenants if report.level.rank >= Level.CRITICAL.rank else []
        if noisy != self._last_noisy:
            self._last_noisy = noisy
            log.warning(
                "noisy_tenants",
                level=report.level.value,
                noisy=noisy,
                pending_total=report.tenants_pending_total,
                top=[(t.company_id, t.waiting) for t in report.tenants_top[:3]],
            )
        action = await self.brake.evaluate(report)
        await self.tenant_brake.evaluate(report)
        return report, action
