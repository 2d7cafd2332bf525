"""Runs one experiment: hypothesis → method → hypothesis → rollbacks, always writing a journal.

The order is the Chaos Toolkit's. What matters most is what happens when things go wrong:

- the hypothesis does not hold before the method: the method is skipped (a fault injected
  into a sick system proves nothing) and the run is ``failed``;
- an activity of the method raises or times out: the remaining method is skipped, the run is
  ``aborted``;
- the run is cancelled (Ctrl-C): ``interrupted``;
- in every case **every rollback runs**, each on its own (one failing rollback does not skip
  the next), inside a task of its own that a second Ctrl-C cannot cut short (each rollback is
  bounded by its own timeout), and the journal is written last.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from chaos.journal import ActivityRecord, Journal, SteadyState, jsonable, now
from chaos.model import Activity, Experiment
from chaos.progress import Progress


async def run_activity(activity: Activity, progress: Progress | None = None) -> ActivityRecord:
    """Run one activity within its timeout; never raises (but lets cancellation through)."""
    if progress is not None:
        progress(f"{activity.kind} {activity.name}")
    start = now()
    began = time.monotonic()
    output: object = None
    error: str | None = None
    try:
        output = await asyncio.wait_for(activity.run(), activity.timeout)
    except TimeoutError:
        error = f"timed out after {activity.timeout:g}s"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an activity's failure is data for the journal, not a crash
        error = f"{type(exc).__name__}: {exc}"
    tolerance_met: bool | None = None
    if error is None and activity.tolerance is not None:
        try:
            tolerance_met = bool(activity.tolerance.accepts(output))
        except Exception as exc:
            error = f"tolerance could not be evaluated: {type(exc).__name__}: {exc}"
    record = ActivityRecord(
        name=activity.name,
        kind=activity.kind,
        status="failed" if error is not None or tolerance_met is False else "succeeded",
        start=start,
        end=now(),
        duration=round(time.monotonic() - began, 3),
        output=jsonable(output),
        error=error,
        tolerance=activity.tolerance.describe if activity.tolerance is not None else None,
        tolerance_met=tolerance_met,
    )
    if progress is not None and record.status == "failed":
        why = error or f"value {record.output!r} not {record.tolerance}"
        progress(f"  FAILED {activity.name}: {why}")
    if activity.pause_after > 0 and record.status == "succeeded":
        await asyncio.sleep(activity.pause_after)
    return record


async def check_steady_state(probes: Sequence[Activity], progress: Progress | None = None) -> SteadyState:
    records = [await run_activity(p, progress) for p in probes]
    return SteadyState(met=all(r.status == "succeeded" for r in records), probes=records)


async def _run_rollbacks(rollbacks: Sequence[Activity], progress: Progress | None) -> list[ActivityRecord]:
    records: list[ActivityRecord] = []
    for rollback in rollbacks:
        try:
            records.append(await run_activity(rollback, progress))
        except asyncio.CancelledError:
            # run_activity only lets cancellation through; record it and go on with the next.
            records.append(
                ActivityRecord(
                    name=rollback.name,
                    kind=rollback.kind,
                    status="failed",
                    start=now(),
                    end=now(),
                    duration=0.0,
                    error="cancelled",
                )
            )
    return records


async def run_experiment(
    experiment: Experiment,
    journal: Journal,
    *,
    run_dir: Path | None = None,
    progress: Progress | None = None,
) -> Journal:
    """Run ``experiment``, filling ``journal``; writes it to ``run_dir`` when given."""
    started = time.monotonic()
    journal.status = "running"
    cancelled: BaseException | None = None
    try:
        if progress is not None:
            progress.phase = "steady state (before)"
        journal.steady_state_before = await check_steady_state(experiment.hypothesis, progress)
        if not journal.steady_state_before.met:
            journal.status = "failed"
            journal.reason = "the steady-state hypothesis did not hold before the method; no fault injected"
        else:
            if progress is not None:
                progress.phase = "method"
            for activity in experiment.method:
                record = await run_activity(activity, progress)
                journal.method.append(record)
                if record.status == "failed":
                    journal.status = "aborted"
                    journal.reason = f"method activity {activity.name!r} failed: {record.error or record.output}"
                    break
            else:
                if progress is not None:
                    progress.phase = "steady state (after)"
                journal.steady_state_after = await check_steady_state(experiment.hypothesis, progress)
                journal.deviated = not journal.steady_state_after.met
                journal.status = "failed" if journal.deviated else "completed"
                if journal.deviated:
                    journal.reason = "the steady state deviated: the hypothesis did not hold after the method"
    except (asyncio.CancelledError, KeyboardInterrupt) as exc:
        cancelled = exc
        journal.status = "interrupted"
        journal.reason = "interrupted; rollbacks ran"
    finally:
        if progress is not None:
            progress.phase = "rollbacks"
        task = asyncio.ensure_future(_run_rollbacks(experiment.rollbacks, progress))
        while not task.done():
            # A second cancellation must not abandon the rollbacks half-way: each is bounded by
            # its own timeout, so waiting for the task always ends.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        journal.rollbacks = task.result()
        journal.end = now()
        journal.duration = round(time.monotonic() - started, 3)
        if run_dir is not None:
            journal.write(run_dir)
        if progress is not None:
            progress.phase = ""
    if cancelled is not None:
        raise cancelled
    return journal
