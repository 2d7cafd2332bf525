"""Fair starts between tenants, on a queue (arq) that starts jobs oldest-score-first.

arq keeps every job in one sorted set, ``arq:queue``, and each poll starts the oldest due
entries. A tenant with 300 queued jobs therefore stands in front of a tenant who submits one
job a second later: that job waits for all 300. Here, like the VIP side set (``priority``),
arq's scores stay untouched (queue ages stay honest) and side structures say who goes next:

- ``importer:tenantq:<company>``: a sorted set of that company's queued job ids (score = when
  due, ms), written at enqueue (``mark_tenant``) next to arq's own entry;
- ``importer:tenant:ring``: the companies that have queued jobs, scored by when one of their
  jobs last started (0 for a company new to the ring, so a newcomer goes first).

Each worker poll, after the VIP set, reads the companies of the ring least recently started
first (at most ``fair_scan_tenants`` of them, skipping tenants the tenant brake paused), reads
a few due ids of each, and starts them round-robin (one job of each company, then a second of
each, …) through the worker's normal ``_try_start``, which checks arq's queue and wins the
in-progress claim. A started job moves its company to the back of the ring. arq's own poll
stays the fallback for any job without a tenant entry.

Housekeeping is done on the ids read, so it is bounded like the poll itself:
- an id no longer in ``arq:queue`` (finished, failed) is dropped;
- an id whose arq score moved into the future (retry, deferral) gets that score;
- an id that is running (its in-progress key exists) is looked at again one lease later, so
  running jobs do not clog the head of their company's queue (and a job whose worker died is
  due again once its lease has expired);
- a company with no due job left is moved in the ring to its next due time, or removed from
  the ring when its queue is empty (atomically, so an enqueue racing with it is never lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from importer.protection.keys import TENANT_PAUSED, TENANT_RING, tenant_queue_key
from importer.worker.keys import in_progress_key

# Remove the company from the ring if its queue is empty; else move it (never earlier) to the
# score of its first entry, so a company whose jobs are all deferred leaves the ring's head.
# One script, so an enqueue between the check and the removal cannot leave a job unreachable.
_SETTLE = """
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first == 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return redis.call('ZADD', KEYS[1], 'XX', 'GT', first[2], ARGV[1])
"""


@dataclass(frozen=True)
class TenantDue:
    """One company of the ring and the due ids read from its queue (oldest first)."""

    company_id: str
    due: list[str]


@dataclass
class FairPlan:
    start: list[tuple[str, str]] = field(default_factory=list)  # (company, job id) in start order
    drop: dict[str, list[str]] = field(default_factory=dict)  # company → ids to remove
    reschedule: dict[str, dict[str, float]] = field(default_factory=dict)  # company → id → score
    settle: list[str] = field(default_factory=list)  # companies with nothing to start now
    skipped_paused: list[str] = field(default_factory=list)


def plan_fair_starts(
    tenants: list[TenantDue],
    arq_scores: dict[str, float | None],
    running: set[str],
    paused: set[str],
    *,
    now_ms: int,
    slots: int,
    recheck_ms: int,
) -> FairPlan:
    """Pure: given the ring's companies (least recently started first), the due ids read from
    each, their arq scores and which are running, what to start (round-robin) and tidy."""
    plan = FairPlan()
    ready: list[tuple[str, list[str]]] = []
    for tenant in tenants:
        company = tenant.company_id
        if company in paused:
            plan.skipped_paused.append(company)
            continue
        startable: list[str] = []
        for job_id in tenant.due:
            score = arq_scores.get(job_id)
            if score is None:
                plan.drop.setdefault(company, []).append(job_id)
            elif score > now_ms:
                plan.reschedule.setdefault(company, {})[job_id] = score
            elif job_id in running:
                plan.reschedule.setdefault(company, {})[job_id] = float(now_ms + recheck_ms)
            else:
                startable.append(job_id)
        if startable:
            ready.append((company, startable))
        else:
            plan.settle.append(company)
    depth = 0
    while len(plan.start) < slots:
        took = False
        for company, ids in ready:
            if depth < len(ids) and len(plan.start) < slots:
                plan.start.append((company, ids[depth]))
                took = True
        if not took:
            break
        depth += 1
    return plan


async def mark_tenant(redis: Any, job_id: str, company_id: str, *, due_ms: int) -> None:
    """Put a queued job in its company's queue and the company in the ring (enqueue side)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(tenant_queue_key(company_id), {job_id: due_ms})
        pipe.zadd(TENANT_RING, {company_id: 0}, nx=True)  # a newcomer goes first
        # A company parked at a future time (all its jobs deferred) is due again with this job.
        pipe.zadd(TENANT_RING, {company_id: due_ms}, xx=True, lt=True)
        await pipe.execute()


async def read_paused_tenants(redis: Any) -> set[str]:
    raw: list[Any] = await redis.hkeys(TENANT_PAUSED)
    return {_text(k) for k in raw}


async def plan_fair(
    redis: Any,
    queue_name: str,
    *,
    now_ms: int,
    slots: int,
    scan_limit: int,
    recheck_ms: int,
    paused: set[str],
) -> FairPlan:
    """Read the ring and the due ids of its first companies, tidy, and return what to start."""
    if slots <= 0:
        return FairPlan()
    raw = await redis.zrangebyscore(TENANT_RING, "-inf", now_ms, start=0, num=scan_limit)
    companies = [_text(c) for c in raw]
    if not companies:
        return FairPlan()
    active = [c for c in companies if c not in paused]
    tenants: list[TenantDue] = []
    if active:
        async with redis.pipeline(transaction=False) as pipe:
            for company in active:
                pipe.zrangebyscore(tenant_queue_key(company), "-inf", now_ms, start=0, num=slots)
            dues = await pipe.execute()
        tenants = [TenantDue(c, [_text(i) for i in d]) for c, d in zip(active, dues, strict=True)]
    ids = [job_id for t in tenants for job_id in t.due]
    scores: dict[str, float | None] = {}
    running: set[str] = set()
    if ids:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zmscore(queue_name, ids)
            for job_id in ids:
                pipe.exists(in_progress_key(job_id))
            answers = await pipe.execute()
        scores = {i: None if s is None else float(s) for i, s in zip(ids, answers[0], strict=True)}
        running = {i for i, held in zip(ids, answers[1:], strict=True) if held}
    plan = plan_fair_starts(
        tenants,
        scores,
        running,
        paused,
        now_ms=now_ms,
        slots=slots,
        recheck_ms=recheck_ms,
    )
    plan.skipped_paused = [c for c in companies if c in paused]
    await _tidy(redis, plan, now_ms=now_ms)
    return plan


async def _tidy(redis: Any, plan: FairPlan, *, now_ms: int) -> None:
    if not (plan.drop or plan.reschedule or plan.settle or plan.skipped_paused):
        return
    async with redis.pipeline(transaction=False) as pipe:
        for company, dropped in plan.drop.items():
            pipe.zrem(tenant_queue_key(company), *dropped)
        for company, moved in plan.reschedule.items():
            pipe.zadd(tenant_queue_key(company), moved, xx=True)
        for company in plan.settle:
            pipe.eval(_SETTLE, 2, TENANT_RING, tenant_queue_key(company), company)
        if plan.skipped_paused:
            # A paused tenant goes to the back of the ring so it does not fill the scan window.
            pipe.zadd(TENANT_RING, dict.fromkeys(plan.skipped_paused, now_ms), xx=True)
        await pipe.execute()


async def note_started(redis: Any, company_id: str, job_id: str, *, now_ms: int, recheck_ms: int) -> None:
    """A job of this company started: the company goes to the back of the ring, and the job's
    entry is looked at again one lease later (it is running; see the module docstring)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(TENANT_RING, {company_id: now_ms}, xx=True)
        pipe.zadd(tenant_queue_key(company_id), {job_id: now_ms + recheck_ms}, xx=True)
        await pipe.execute()


async def ids_of_paused_tenants(redis: Any, job_ids: list[str], paused: set[str]) -> set[str]:
    """Which of ``job_ids`` belong to a paused tenant (found in that tenant's queue)."""
    if not job_ids or not paused:
        return set()
    companies = sorted(paused)
    async with redis.pipeline(transaction=False) as pipe:
        for company in companies:
            pipe.zmscore(tenant_queue_key(company), job_ids)
        answers = await pipe.execute()
    held: set[str] = set()
    for scores in answers:
        held.update(job_id for job_id, s in zip(job_ids, scores, strict=True) if s is not None)
    return held


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
