"""Who ``POST /v1/imports`` admits, given the queue's health, the caller's tier and its own load.

In order:
- intake closed (``importer ops drain``) → 503 "intake closed", for everyone;
- the company already has its tier's limit of active + waiting jobs → 429 ``company_limit``
  (whatever the health: one tenant alone must never be able to fill the queue);
- critical or overload, and the company is *the cause* (its share of all waiting jobs is at
  least ``tenant_shed_share``) → 429 ``tenant_shed``, VIP included: the tenant causing the
  trouble is refused before anyone else is;
- overload caused by such a noisy tenant → the other companies are still admitted, as at
  critical (their jobs are not the problem, and the tenant brake holds the noisy one back);
- overload with no single cause → 503 with ``Retry-After``, for everyone (VIP and ENTERPRISE
  included: at overload the job row itself is load we cannot take);
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
    status: int = 503  # of a refusal
    code: str | None = None  # of a refusal, for the error body (None: the API's generic one)


@dataclass(frozen=True)
class CompanyLoad:
    """What admission knows about the caller's own load (None fields: not known)."""

    active: int | None = None  # its PENDING + IN_PROGRESS jobs
    limit: int | None = None  # its tier's limit of those
    limit_retry_after: int = 30
    noisy: bool = False  # it holds at least the shed share of all waiting jobs
    noisy_elsewhere: bool = False  # another company does (the overload has a single cause)


def decide_admission(
    level: Level | None,
    *,
    tier: Tier,
    vip: bool,
    intake_closed: bool,
    basic_defer: float,
    overload_retry_after: int,
    load: CompanyLoad | None = None,
) -> Admission:
    load = load or CompanyLoad()
    if intake_closed:
        return Admission(
            admit=False,
            reason="intake_closed",
            retry_after=overload_retry_after,
            message="intake closed: the import queue is being drained for maintenance; retry later",
        )
    if load.active is not None and load.limit is not None and load.active >= load.limit:
        return Admission(
            admit=False,
            reason="company_limit",
            status=429,
            code="company_limit",
            retry_after=load.limit_retry_after,
            message=(
                f"your company has {load.limit} or more imports waiting or running, the limit of "
                f"the {tier.value} tier; retry after some of them finish"
            ),
        )
    if level in (Level.CRITICAL, Level.OVERLOAD) and load.noisy:
        return Admission(
            admit=False,
            reason="tenant_shed",
            status=429,
            code="tenant_shed",
            retry_after=overload_retry_after,
            message=(
                "the import queue is congested and your company holds most of the waiting imports; "
                f"retry after {overload_retry_after} seconds"
            ),
        )
    if level is Level.OVERLOAD and not load.noisy_elsewhere:
        return Admission(
            admit=False,
            reason="overload",
            retry_after=overload_retry_after,
            message=(
                "the import queue is overloaded and not accepting new imports; "
                f"retry after {overload_retry_after} seconds"
            ),
        )
    congested = level in (Level.CRITICAL, Level.OVERLOAD)
    if congested and tier is Tier.BASIC and not vip and basic_defer > 0:
        return Admission(admit=True, reason="critical_basic_deferred", defer_by=basic_defer, priority=False)
    reason = "admitted_beside_noisy_tenant" if level is Level.OVERLOAD else "admitted"
    return Admission(admit=True, reason=reason, priority=vip)
