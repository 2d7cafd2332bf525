"""The recovery figures, computed from what the watchers recorded: pure functions, no I/O.

Experiments record raw evidence while they run (job rows as they changed, which jobs Redis
had forgotten at each tick, the breaker's transitions, the provider's request log) and turn
it into the named measurements the criteria read. Keeping the arithmetic here, apart from the
polling, is what lets the verdicts be tested on recorded data (a run that recovered too slowly
must fail) without a stack, and re-run on a run directory long after the stack is gone.

Every definition errs on the side of the importer looking worse, never better: an orphan is
counted from the last moment it was *seen* healthy, a recovery only counts jobs that started
after the fault, a request near a breaker transition is a violation unless it provably was in
flight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class JobTimes:
    job_id: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


# --- Redis failover: recovery ---------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    seconds: float | None  # None: completions never came back to the threshold
    pre_rate: float  # completions per second before the fault
    needed: float  # completions of post-fault jobs needed in one window
    window: float


def completion_rate(jobs: Iterable[JobTimes], start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds()
    if span <= 0:
        return 0.0
    done = [j for j in jobs if j.status == "COMPLETED" and j.finished_at is not None and start <= j.finished_at < end]
    return len(done) / span


def failover_recovery(
    jobs: Sequence[JobTimes],
    *,
    fault_at: datetime,
    pre_window: tuple[datetime, datetime],
    window: float = 5.0,
    threshold: float = 0.5,
) -> Recovery:
    """Seconds from the fault until jobs complete again at ``threshold`` x the pre-fault rate.

    Only jobs that *started after the fault* count: jobs already running when the primary died
    can finish without Redis, and would make a dead queue look alive. The moment is the end of
    the first ``window``-second span holding enough such completions.
    """
    pre_rate = completion_rate(jobs, *pre_window)
    needed = max(1.0, threshold * pre_rate * window)
    if pre_rate <= 0:
        return Recovery(None, 0.0, needed, window)
    finishes = sorted(
        j.finished_at
        for j in jobs
        if j.status == "COMPLETED"
        and j.finished_at is not None
        and j.started_at is not None
        and j.started_at > fault_at
        and j.finished_at > fault_at
    )
    for i, end in enumerate(finishes):
        count = sum(1 for f in finishes[: i + 1] if (end - f).total_seconds() < window)
        if count >= needed:
            return Recovery((end - fault_at).total_seconds(), pre_rate, needed, window)
    return Recovery(None, pre_rate, needed, window)


# --- orphans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrphanTick:
    """One look at Redis: which PENDING jobs it had forgotten (``ok`` False: Redis unreadable)."""

    at: datetime
    ok: bool
    orphaned: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrphanLife:
    job_id: str
    since: datetime
    seconds: float
    healed: bool  # False: still orphaned at the last tick (a lower bound)


def orphan_lifetimes(ticks: Sequence[OrphanTick], created: Mapping[str, datetime]) -> list[OrphanLife]:
    """How long each job stayed unknown to Redis, counted from the last tick it was seen fine.

    A job not listed as orphaned in a readable tick was fine then (in the queue, running,
    finished, or too young to judge). Ticks where Redis could not be read say nothing, so an
    orphan found after an outage is dated back to the last good look before it.
    """
    good = sorted((t for t in ticks if t.ok), key=lambda t: t.at)
    last_fine: dict[str, datetime] = {}
    open_since: dict[str, datetime] = {}
    lives: list[OrphanLife] = []
    for tick in good:
        orphaned = set(tick.orphaned)
        for job_id in orphaned:
            if job_id not in open_since:
                born = created.get(job_id, tick.at)
                open_since[job_id] = max(born, last_fine.get(job_id, born))
        for job_id in list(open_since):
            if job_id not in orphaned:
                since = open_since.pop(job_id)
                lives.append(OrphanLife(job_id, since, (tick.at - since).total_seconds(), True))
        for job_id, born in created.items():
            if job_id not in orphaned and born <= tick.at:
                last_fine[job_id] = tick.at
    if good:
        end = good[-1].at
        lives += [OrphanLife(j, s, (end - s).total_seconds(), False) for j, s in open_since.items()]
    return sorted(lives, key=lambda life: life.since)


# --- worker kills: stall detection --------------------------------------------------------------


@dataclass(frozen=True)
class JobChange:
    """A job row as the watcher saw it change."""

    at: datetime
    job_id: str
    status: str
    worker_id: str | None
    attempts: int
    queue_try: int = 0


@dataclass(frozen=True)
class Kill:
    at: datetime
    worker_id: str
    jobs: Mapping[str, int]  # abandoned job id -> its attempts when the worker died


@dataclass(frozen=True)
class Takeover:
    job_id: str
    worker_id: str  # the worker that died
    seconds: float | None  # None: never taken over
    by: str | None = None


def stall_detections(kills: Sequence[Kill], changes: Sequence[JobChange]) -> list[Takeover]:
    """For each abandoned job, how long until another worker claimed it (a newer attempt)."""
    ordered = sorted(changes, key=lambda c: c.at)
    out: list[Takeover] = []
    for kill in kills:
        for job_id, attempts in kill.jobs.items():
            taken = next(
                (
                    c
                    for c in ordered
                    if c.job_id == job_id
                    and c.at >= kill.at
                    and c.attempts > attempts
                    and c.worker_id not in (None, kill.worker_id)
                ),
                None,
            )
            seconds = None if taken is None else (taken.at - kill.at).total_seconds()
            out.append(Takeover(job_id, kill.worker_id, seconds, None if taken is None else taken.worker_id))
    return out


# --- provider outage: breaker traffic -----------------------------------------------------------


@dataclass(frozen=True)
class BreakerWindow:
    state: str  # closed | open | half_open
    start: float  # epoch seconds
    end: float


def breaker_windows(transitions: Sequence[Mapping[str, object]], *, until: float) -> list[BreakerWindow]:
    """State windows from the breaker's history (``{state, from, at}``, any order)."""
    ordered = sorted(transitions, key=lambda t: float(t["at"]))  # type: ignore[arg-type]
    windows: list[BreakerWindow] = []
    for i, t in enumerate(ordered):
        start = float(t["at"])  # type: ignore[arg-type]
        end = float(ordered[i + 1]["at"]) if i + 1 < len(ordered) else until  # type: ignore[arg-type]
        windows.append(BreakerWindow(str(t["state"]), start, end))
    return windows


@dataclass
class BreakerTraffic:
    probes: int = 0  # the one request a half-open window lets through
    violations: int = 0  # any other request while the breaker was not closed
    in_flight: int = 0  # reached the provider within the grace after opening: admitted while closed
    open_windows: int = 0
    details: list[str] = field(default_factory=list)


def breaker_traffic(
    requests: Iterable[Mapping[str, object]], windows: Sequence[BreakerWindow], *, grace: float = 0.2
) -> BreakerTraffic:
    """Sort provider API requests into probes, in-flight ones and violations.

    ``grace``: admission (in Redis) and arrival (at the provider) are milliseconds apart on
    loopback, so a request arriving within ``grace`` s of the breaker opening was admitted while
    it was still closed. Anything later in an open window, or a second request in one
    half-open window, went past the breaker.
    """
    traffic = BreakerTraffic(open_windows=sum(1 for w in windows if w.state == "open"))
    seen_in_half_open: dict[int, int] = {}
    for request in sorted(requests, key=lambda r: float(r["ts"])):  # type: ignore[arg-type]
        if request.get("kind") != "api":
            continue
        ts = float(request["ts"])  # type: ignore[arg-type]
        index = next((i for i, w in enumerate(windows) if w.start <= ts < w.end), None)
        if index is None or windows[index].state == "closed":
            continue
        window = windows[index]
        if window.state == "open":
            if ts - window.start <= grace:
                traffic.in_flight += 1
            else:
                traffic.violations += 1
                traffic.details.append(f"request at {ts:.3f} while open since {window.start:.3f}")
            continue
        seen = seen_in_half_open.get(index, 0)
        seen_in_half_open[index] = seen + 1
        if seen == 0:
            traffic.probes += 1
        else:
            traffic.violations += 1
            traffic.details.append(f"request at {ts:.3f}: probe number {seen + 1} of one half-open window")
    return traffic


# --- DB partitions: the longest outage tolerated ------------------------------------------------


@dataclass(frozen=True)
class PartitionResult:
    variant: str
    duration: float
    failed_jobs: int
    recovered: bool


def downtime_tolerated(results: Iterable[PartitionResult]) -> dict[str, float]:
    """Per variant, the longest duration survived with zero failed jobs (and all shorter ones).

    0 when even the shortest failed: nothing was tolerated.
    """
    by_variant: dict[str, list[PartitionResult]] = {}
    for r in results:
        by_variant.setdefault(r.variant, []).append(r)
    tolerated: dict[str, float] = {}
    for variant, runs in by_variant.items():
        best = 0.0
        for r in sorted(runs, key=lambda r: r.duration):
            if r.failed_jobs or not r.recovered:
                break
            best = r.duration
        tolerated[variant] = best
    return tolerated


def retry_budget(*, base: float, cap: float, tries: int) -> tuple[float, float]:
    """Shortest and longest total backoff a job waits across its tries (importer's formula:
    equal jitter on ``min(cap, base * 2**(n-1))``): outages longer than the shortest can fail
    jobs that keep hitting them."""
    ceilings = [min(cap, base * 2 ** max(0, n - 1)) for n in range(1, max(1, tries))]
    return sum(c / 2 for c in ceilings), float(sum(ceilings))


# --- overload: the emergency brake ----------------------------------------------------------------


@dataclass(frozen=True)
class BrakeTimes:
    engage: float | None  # threshold crossed -> queue paused
    resume: float | None  # paused -> resumed by itself


def brake_times(*, crossed_at: float | None, paused_at: float | None, resumed_at: float | None) -> BrakeTimes:
    engage = None if crossed_at is None or paused_at is None else max(0.0, paused_at - crossed_at)
    resume = None if paused_at is None or resumed_at is None else max(0.0, resumed_at - paused_at)
    return BrakeTimes(engage, resume)


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
