"""The arq job function: claim the job row, run the pipeline under a lease, settle the outcome.

This is where errors are sorted: transient → arq ``Retry`` with backoff (until the last try,
which fails the job with the last reason); permanent → FAILED with a readable reason;
shutdown → the job goes back to the queue at once without burning a try; deferred by our own
protection (rate limit, open breaker) → back to the queue for later, also without burning a
try; a lost lease → stop quietly, the newer run owns the job.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from arq import Retry
from redis.exceptions import RedisError

from importer.db import jobs
from importer.db.pool import is_transient_db_error
from importer.errors import JobDeferred, LeaseLost, PermanentError, ShutdownRequested, TransientError
from importer.logs import bound_context, get_logger
from importer.pipeline.run import ImportRun
from importer.protection import counters as counter_names
from importer.protection.deferral import deferral_delay
from importer.runtime import Runtime
from importer.worker.backoff import retry_delay
from importer.worker.keys import retry_key
from importer.worker.lease import LeaseKeeper

log = get_logger(__name__)


async def import_catalog(ctx: dict[str, Any], job_id: str) -> dict[str, Any]:
    rt: Runtime = ctx["runtime"]
    job_try: int = ctx.get("job_try", 1)
    with bound_context(job_id=job_id, job_try=job_try):
        try:
            return await _run(rt, UUID(job_id), job_try)
        except (Retry, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Whatever escaped the sorting in _run (e.g. a database error while recording a
            # failure) must not make arq drop the job for good: the row would stay active with
            # no queue entry. Retry it; arq's own try limit still bounds this (finish_failed_job).
            delay = _delay(rt, job_try, None)
            log.exception("job_unexpected_error", retry_in=round(delay, 2))
            raise Retry(defer=delay) from exc


async def _run(rt: Runtime, job_id: UUID, job_try: int) -> dict[str, Any]:
    token = uuid4()
    try:
        async with rt.db.acquire() as conn:
            job = await jobs.claim(conn, job_id, run_token=token, worker_id=rt.worker_id, queue_try=job_try)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        delay = _delay(rt, job_try, None)
        log.warning("job_claim_deferred", error=repr(exc), retry_in=round(delay, 2))
        raise Retry(defer=delay) from exc
    if job is None:
        log.info("job_already_finished")
        return {"status": "skipped"}

    with bound_context(company_id=str(job.company_id), correlation_id=job.correlation_id):
        log.info("job_started", provider=job.provider.value, store_id=job.store_id, phase=job.phase.value)
        await rt.events.publish(job.id, "status", status="IN_PROGRESS", phase=job.phase.value)
        try:
            async with LeaseKeeper(rt, job.id, token):
                done = await ImportRun(rt, job, token).execute()
            return {"status": done.status.value, **done.counts.as_dict()}
        except ShutdownRequested:
            await _hand_back(rt, job_id, token, reason=None)
            log.info("job_handed_back", reason="shutdown")
            raise Retry() from None
        except JobDeferred as exc:
            delay = deferral_delay(exc.retry_after, jitter=rt.settings.deferral_jitter)
            await _hand_back(rt, job_id, token, reason=f"deferred: {exc.reason}", announce=exc.reason, retry_in=delay)
            if rt.protection is not None:
                await rt.protection.counters.bump(counter_names.JOBS_DEFERRED)
            log.info("job_deferred", reason=exc.reason, retry_in=round(delay, 2))
            raise Retry(defer=delay) from None
        except LeaseLost as exc:
            log.warning("job_lease_lost", detail=str(exc))
            return {"status": "lease_lost"}
        except PermanentError as exc:
            return await _fail(rt, job_id, token, str(exc), job_try)
        except TransientError as exc:
            if job_try >= rt.settings.job_max_tries:
                return await _fail(rt, job_id, token, f"gave up after {job_try} tries; last error: {exc}", job_try)
            delay = _delay(rt, job_try, exc.retry_after)
            log.warning("job_retry_scheduled", error=str(exc), retry_in=round(delay, 2), kind=type(exc).__name__)
            await _release(rt, job_id, token, reason=f"retrying after: {exc}")
            await rt.events.publish(job_id, "status", status="PENDING", retry_in=delay, error=str(exc))
            raise Retry(defer=delay) from exc
        except asyncio.CancelledError:
            if rt.shutdown.is_set():
                # Shutdown grace ran out mid-step: give the job back, then let arq re-queue it.
                await asyncio.shield(_hand_back(rt, job_id, token, reason=None))
                log.info("job_handed_back", reason="shutdown grace exceeded")
            else:
                # arq's job timeout (or an abort): the job overran its budget; retrying won't help.
                await asyncio.shield(_fail(rt, job_id, token, "timeout: job exceeded job_timeout", job_try))
            raise
        except Exception as exc:
            log.exception("job_internal_error")
            return await _fail(rt, job_id, token, f"internal error: {type(exc).__name__}: {exc}", job_try)


def _delay(rt: Runtime, job_try: int, retry_after: float | None) -> float:
    s = rt.settings
    return retry_delay(job_try, base=s.retry_backoff_base, cap=s.retry_backoff_max, retry_after=retry_after)


async def _fail(rt: Runtime, job_id: UUID, token: UUID, reason: str, job_try: int) -> dict[str, Any]:
    try:
        async with rt.db.acquire() as conn:
            failed = await jobs.fail(conn, job_id, reason, run_token=token)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        # Cannot record the failure now: run again later, the same error will be recorded then.
        delay = _delay(rt, job_try, None)
        log.warning("job_fail_deferred", reason=reason, error=repr(exc), retry_in=round(delay, 2))
        raise Retry(defer=delay) from exc
    if failed is None:
        log.warning("job_lease_lost", detail="could not record failure: another run owns the job")
        return {"status": "lease_lost"}
    log.error("job_failed", reason=reason)
    await rt.events.publish(job_id, "status", status="FAILED", error=reason)
    return {"status": "FAILED", "error": reason}


async def _release(rt: Runtime, job_id: UUID, token: UUID, *, reason: str | None) -> None:
    """PENDING again in Postgres; best effort, because claim() also accepts IN_PROGRESS."""
    try:
        async with rt.db.acquire() as conn:
            await jobs.release(conn, job_id, token, reason=reason)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        log.warning("job_release_failed", error=repr(exc))


async def _hand_back(
    rt: Runtime,
    job_id: UUID,
    token: UUID,
    *,
    reason: str | None,
    announce: str = "worker shutdown",
    retry_in: float | None = None,
) -> None:
    """Give the job back without burning a try: arq bumped the counter when the job started."""
    await _release(rt, job_id, token, reason=reason)
    try:
        await rt.redis.decr(retry_key(str(job_id)))
    except (TimeoutError, RedisError, OSError) as exc:
        log.warning("job_try_refund_failed", error=repr(exc))
    extra = {} if retry_in is None else {"retry_in": round(retry_in, 2)}
    await rt.events.publish(job_id, "status", status="PENDING", reason=announce, **extra)
