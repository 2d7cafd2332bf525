"""The tenant brake: at overload caused by one tenant, pause that tenant's starts, not the queue.

The queue-wide brake (``pause``) stops every worker from taking jobs. When one tenant holds at
least ``tenant_shed_share`` of the waiting jobs, that would punish everyone for one tenant's
flood; instead this brake pauses that tenant alone: its state is a field of the hash
``importer:tenant:paused`` (company id → JSON like the queue's pause flag), and workers skip
its jobs (the fair scheduler does not pick them, and no start path starts a job found in that
tenant's queue). Everything else is the queue brake's rules, per tenant:

- pause at overload when the tenant is noisy and its cooldown is not running (alert);
- resume after ``brake_resume_after`` when the level is below overload **or** the tenant's own
  backlog (its PENDING jobs) did not grow while paused (admission sheds it with 429s, so it
  usually does not); otherwise hold for another period (alert);
- after a resume, no new pause of that tenant for ``brake_cooldown`` (a key with a TTL).

Runs in the reconciler's health monitor, after the queue brake, on the same report.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from importer.logs import get_logger
from importer.protection import counters as names
from importer.protection.counters import Counters
from importer.protection.health import HealthReport
from importer.protection.keys import TENANT_PAUSED, tenant_cooldown_key
from importer.protection.pause import BrakeAction, PauseState, brake_decision, decode_pause, encode_pause
from importer.settings import Settings

log = get_logger(__name__)

# Compare-and-delete / compare-and-set of one tenant's pause: only the state we decided on.
_DELETE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""
_REPLACE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return -1
"""


class TenantBrake:
    def __init__(self, settings: Settings, redis: Any, db: Any, counters: Counters) -> None:
        self._settings = settings
        self._redis = redis
        self._db = db
        self._counters = counters

    async def evaluate(self, report: HealthReport) -> dict[str, BrakeAction]:
        """One decision per tenant that is noisy now or paused; nothing without tenant counts."""
        if report.tenants_pending_total is None:
            return {}
        raw: dict[Any, Any] = await self._redis.hgetall(TENANT_PAUSED)
        pauses = {_text(k): decode_pause(v) for k, v in raw.items()}
        backlog = {t.company_id: t.waiting for t in report.tenants_top}
        missing = [c for c in pauses if c not in backlog]
        if missing:
            backlog.update(await self._pending(missing))
        actions: dict[str, BrakeAction] = {}
        now = time.time()
        for company in sorted(set(report.noisy_tenants) | set(pauses)):
            pause = pauses.get(company)
            if pause is None and company not in report.noisy_tenants:
                continue
            cooldown = bool(await self._redis.exists(tenant_cooldown_key(company)))
            action = brake_decision(
                level=report.level,
                backlog=backlog.get(company, 0),
                pause=pause,
                now=now,
                cooldown_active=cooldown,
                resume_after=self._settings.brake_resume_after,
            )
            if action is BrakeAction.PAUSE:
                await self._pause(company, report, backlog.get(company, 0))
            elif action is BrakeAction.RESUME and pause is not None:
                await self._resume(company, report, backlog.get(company, 0), pause)
            elif action is BrakeAction.HOLD and pause is not None:
                await self._hold(company, report, backlog.get(company, 0), pause)
            actions[company] = action
        return actions

    async def _pending(self, companies: list[str]) -> dict[str, int]:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT company_id::text AS company_id, count(*) AS n FROM product_import_jobs"
                " WHERE company_id = ANY($1::uuid[]) AND status = 'PENDING' GROUP BY company_id",
                [UUID(c) for c in companies if _is_uuid(c)],
            )
        return {c: 0 for c in companies} | {r["company_id"]: int(r["n"]) for r in rows}

    async def _pause(self, company: str, report: HealthReport, backlog: int) -> None:
        total = report.tenants_pending_total or 0
        state = PauseState(
            mode="auto",
            reason=f"tenant causes the overload: {backlog} of {total} waiting jobs",
            at=time.time(),
            by="tenant-brake",
            backlog_at_pause=backlog,
        )
        if not await self._redis.hsetnx(TENANT_PAUSED, company, encode_pause(state)):
            return
        await self._counters.bump(names.TENANT_BRAKE_PAUSES)
        log.error(
            "tenant_auto_paused",
            alert=True,
            company_id=company,
            reason=state.reason,
            level=report.level.value,
            waiting=backlog,
            pending_total=total,
            resume_check_in=self._settings.brake_resume_after,
        )

    async def _resume(self, company: str, report: HealthReport, backlog: int, pause: PauseState) -> None:
        if not await self._redis.eval(_DELETE_IF_SAME, 1, TENANT_PAUSED, company, pause.raw):
            return
        cooldown_ms = int(self._settings.brake_cooldown * 1000)
        if cooldown_ms > 0:
            await self._redis.set(tenant_cooldown_key(company), str(time.time()), px=cooldown_ms)
        await self._counters.bump(names.TENANT_BRAKE_RESUMES)
        log.warning(
            "tenant_auto_resumed",
            company_id=company,
            level=report.level.value,
            backlog=backlog,
            backlog_at_pause=pause.backlog_at_pause,
            paused_for=round(time.time() - pause.at, 1),
            cooldown=self._settings.brake_cooldown,
        )

    async def _hold(self, company: str, report: HealthReport, backlog: int, pause: PauseState) -> None:
        renewed = PauseState(mode="auto", reason=pause.reason, at=time.time(), by=pause.by, backlog_at_pause=backlog)
        if await self._redis.eval(_REPLACE_IF_SAME, 1, TENANT_PAUSED, company, pause.raw, encode_pause(renewed)) == -1:
            return
        log.error(
            "tenant_brake_held",
            alert=True,
            company_id=company,
            level=report.level.value,
            backlog=backlog,
            backlog_at_pause=pause.backlog_at_pause,
            detail="the tenant's backlog grew while paused; checking again after another period",
        )


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
