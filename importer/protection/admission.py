"""Who ``POST /v1/imports`` admits, given the queue's health and the caller's tier.

- intake closed (``importer ops drain``) → 503 "intake closed", for everyone;
- overload → 503 with ``Retry-After``, for everyone (VIP and ENTERPRISE included: at overload
  the job row itself is load we cannot take);
- critical → ENTERPRISE and PRO are admitted at once; BASIC is admitted but deferred
  ``basic_defer_seconds`` (its job runs later, it is not refused); a VIP company is never
  deferred, whatever its tier, since VIP means "ahead of the line";
- healthy / degraded → admitted at once;
- health unknown (Redis unreachable) → admitted at once: the job row is the state of record and
  the reconciler enqueues it when Redis is back, so refusing would only lose work.

VIP jobs are also marked for the priority set (see ``priority``).
"""

from __future__ import annotations

from dataclasses import dataclass

from importer.models import Tier
from importer.protection.health import Level


@dataclass(frozen=True)
class Admission:
    admit: bool
    reason: str
    defer_by: float | None = None
    priority: bool = False
    retry_after: int | None = None
    message: str = ""


def decide_admission(
    level: Level | None,
    *,
    tier: Tier,
    vip: bool,
    intake_closed: bool,
    basic_defer: float,
    overload_retry_after: int,
) -> Admission:
    if intake_closed:
        return Admission(
            admit=False,
            reason="intake_closed",
            retry_after=overload_retry_after,
            message="intake closed: the import queue is being drained for maintenance; retry later",
        )
    if level is Level.OVERLOAD:
        return Admission(
            admit=False,
            reason="overload",
            retry_after=overload_retry_after,
            message=(
                "the import queue is overloaded and not accepting new imports; "
                f"retry after {overload_retry_after} seconds"
            ),
        )
    if level is Level.CRITICAL and tier is Tier.BASIC and not vip and basic_defer > 0:
        return Admission(admit=True, reason="critical_basic_deferred", defer_by=basic_defer, priority=False)
    return Admission(admit=True, reason="admitted", priority=vip)
