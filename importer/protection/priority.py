"""VIP jobs ahead of the line, on a queue (arq) that has no priorities.

Design: arq's own scores are left untouched, and a VIP job's id is *also* put in a separate
sorted set, ``importer:queue:priority`` (score = when it is due, ms). On every poll a worker
first takes the due ids of that set and starts them through its normal ``_try_start`` (which
checks the job is still in ``arq:queue``, is due there, and wins the in-progress claim), then
does arq's normal poll of ``arq:queue`` with whatever slots are left. So a VIP job starts
before every non-VIP job that is waiting, however long they have waited.

Why not just give VIP jobs a lower arq score (the obvious lever)? The score is also what says
how long a job has waited: a VIP job scored "an hour ago" would make the oldest-waiting age,
and so the health level, lie; and arq would run a VIP job deferred by a retry early. With a
side set, scores stay honest and a VIP job that is retried waits its backoff like any other.

Housekeeping happens during the poll, bounded by the number of ids read: ids no longer in
``arq:queue`` (finished, failed) are removed; ids whose arq score moved into the future (a
retry or deferral) get the same score in the side set, so they neither clog its head nor lose
their priority when they come due again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from importer.protection.keys import PRIORITY_QUEUE


@dataclass(frozen=True)
class PriorityPlan:
    start: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    reschedule: dict[str, float] = field(default_factory=dict)


def plan_priority(candidates: list[str], arq_scores: list[float | None], now_ms: int) -> PriorityPlan:
    """Given due VIP ids (oldest first) and their scores in ``arq:queue``: what to do with each."""
    plan = PriorityPlan()
    for job_id, score in zip(candidates, arq_scores, strict=True):
        if score is None:
            plan.drop.append(job_id)
        elif score > now_ms:
            plan.reschedule[job_id] = score
        else:
            plan.start.append(job_id)
    return plan


async def mark_priority(redis: Any, job_id: str, *, due_ms: int) -> None:
    await redis.zadd(PRIORITY_QUEUE, {job_id: due_ms})


async def due_priority_ids(redis: Any, queue_name: str, *, now_ms: int, limit: int) -> PriorityPlan:
    """Read up to ``limit`` due VIP ids, tidy the side set, and return the ones to start."""
    raw = await redis.zrangebyscore(PRIORITY_QUEUE, "-inf", now_ms, start=0, num=limit)
    if not raw:
        return PriorityPlan()
    ids = [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
    scores = await redis.zmscore(queue_name, ids)
    plan = plan_priority(ids, [None if s is None else float(s) for s in scores], now_ms)
    if plan.drop or plan.reschedule:
        async with redis.pipeline(transaction=False) as pipe:
            if plan.drop:
                pipe.zrem(PRIORITY_QUEUE, *plan.drop)
            if plan.reschedule:
                pipe.zadd(PRIORITY_QUEUE, plan.reschedule, xx=True)
            await pipe.execute()
    return plan
