"""From an experiment's recorded evidence to its measurements: pure, so recorded runs re-judge.

Each experiment writes what its watchers saw into the journal's ``evidence`` (plain JSON: job
timelines, kills, orphan ticks, breaker transitions, provider requests, brake ticks) and then
asks this module for its measurements. The same functions run on a journal read back from
disk, which is how the verdict logic is tested on recorded runs that must fail, and how a
run can be re-judged after a definition changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from chaos.measures import (
    JobChange,
    JobTimes,
    Kill,
    OrphanTick,
    PartitionResult,
    brake_times,
    breaker_traffic,
    breaker_windows,
    downtime_tolerated,
    failover_recovery,
    orphan_lifetimes,
    stall_detections,
)

Point = tuple[str, float, dict[str, str]]
RECOVERY_WINDOW = 5.0
RECOVERY_SHARE = 0.5
BREAKER_GRACE = 0.2


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _until(evidence: dict[str, Any]) -> datetime:
    """When the watchers stopped looking: the end of every "still not recovered" lower bound."""
    return datetime.fromisoformat(evidence["observed_until"])


# --- redis-failover -------------------------------------------------------------------------------


def jobs_of(evidence: dict[str, Any]) -> list[JobTimes]:
    out = []
    for job_id, status, created, started, finished in evidence.get("jobs", []):
        created_at = _dt(created)
        assert created_at is not None
        out.append(JobTimes(job_id, status, created_at, _dt(started), _dt(finished)))
    return out


def orphan_ticks_of(evidence: dict[str, Any]) -> list[OrphanTick]:
    return [
        OrphanTick(datetime.fromisoformat(at), bool(ok), tuple(ids)) for at, ok, ids in evidence.get("orphan_ticks", [])
    ]


def redis_failover(evidence: dict[str, Any]) -> list[Point]:
    failover = evidence.get("failover") or {}
    killed = _dt(failover.get("killed_at"))
    if killed is None:
        return []
    points: list[Point] = []
    promoted = _dt(failover.get("promoted_at"))
    if promoted is not None:
        points.append(("sentinel_promotion", (promoted - killed).total_seconds(), {}))
    jobs = jobs_of(evidence)
    start, end = (datetime.fromisoformat(t) for t in evidence["pre_window"])
    result = failover_recovery(
        jobs, fault_at=killed, pre_window=(start, end), window=RECOVERY_WINDOW, threshold=RECOVERY_SHARE
    )
    if result.seconds is not None:
        points.append(("failover_recovery", result.seconds, {}))
    else:  # never recovered while we watched: the wait is a lower bound, never a pass
        points.append(("failover_recovery", (_until(evidence) - killed).total_seconds(), {"bound": "lower"}))
    created = {j.job_id: j.created_at for j in jobs}
    lives = orphan_lifetimes(orphan_ticks_of(evidence), created)
    for life in lives:
        points.append(("orphan_lifetime", life.seconds, {"job": life.job_id, "healed": "yes" if life.healed else "no"}))
    if "orphan_ticks" in evidence:
        points.append(("orphans_observed", float(len(lives)), {}))
    return points


def recovery_summary(evidence: dict[str, Any]) -> dict[str, Any]:
    failover = evidence.get("failover") or {}
    killed = _dt(failover.get("killed_at"))
    if killed is None or "pre_window" not in evidence:
        return {}
    start, end = (datetime.fromisoformat(t) for t in evidence["pre_window"])
    r = failover_recovery(
        jobs_of(evidence), fault_at=killed, pre_window=(start, end), window=RECOVERY_WINDOW, threshold=RECOVERY_SHARE
    )
    return {"seconds": r.seconds, "pre_rate": round(r.pre_rate, 3), "needed": r.needed, "window": r.window}


# --- worker-kill -------------------------------------------------------------------------------------


def changes_of(evidence: dict[str, Any]) -> list[JobChange]:
    return [
        JobChange(datetime.fromisoformat(at), job, status, worker, int(attempts), int(queue_try))
        for at, job, status, worker, attempts, queue_try in evidence.get("changes", [])
    ]


def worker_kill(evidence: dict[str, Any]) -> list[Point]:
    changes = changes_of(evidence)
    points: list[Point] = []
    for number, raw in enumerate(evidence.get("kills", []), start=1):
        kill = Kill(datetime.fromisoformat(raw["at"]), raw["worker"], raw["jobs"])
        for t in stall_detections([kill], changes):
            labels = {"job": t.job_id, "kill": str(number), "worker": t.worker_id}
            if t.seconds is not None:
                points.append(("stall_detection", t.seconds, labels))
            else:
                points.append(
                    ("stall_detection", (_until(evidence) - kill.at).total_seconds(), labels | {"bound": "lower"})
                )
    return points


# --- worker-term ---------------------------------------------------------------------------------------


def worker_term(evidence: dict[str, Any]) -> list[Point]:
    points: list[Point] = []
    for term in evidence.get("terms", []):
        labels = {"worker": term["worker"]}
        if not term.get("exited"):
            labels["bound"] = "lower"
        points.append(("shutdown_duration", float(term["seconds"]), labels))
    return points


# --- db-partition -----------------------------------------------------------------------------------------


def partition_failures(evidence: dict[str, Any]) -> list[list[str]]:
    """Per partition (in order), the jobs that failed from its start until the next one started."""
    partitions = evidence.get("partitions", [])
    failures = [(datetime.fromisoformat(at), job) for at, job in evidence.get("failures", [])]
    out = []
    for i, part in enumerate(partitions):
        start = datetime.fromisoformat(part["start"])
        end = datetime.fromisoformat(partitions[i + 1]["start"]) if i + 1 < len(partitions) else _until(evidence)
        out.append(sorted({job for at, job in failures if start <= at < end}))
    return out


def db_partition(evidence: dict[str, Any]) -> list[Point]:
    points: list[Point] = []
    results = []
    for part, failed in zip(evidence.get("partitions", []), partition_failures(evidence), strict=True):
        labels = {"variant": part["variant"], "duration": f"{float(part['duration']):g}"}
        points.append(("db_partition_failed_jobs", float(len(failed)), labels))
        recovered = bool(part.get("recovered_at"))
        if recovered:
            seconds = (
                datetime.fromisoformat(part["recovered_at"]) - datetime.fromisoformat(part["healed_at"])
            ).total_seconds()
            points.append(("db_partition_recovery", seconds, labels))
        results.append(PartitionResult(part["variant"], float(part["duration"]), len(failed), recovered))
    for variant, seconds in downtime_tolerated(results).items():
        points.append(("db_downtime_tolerated", seconds, {"variant": variant}))
    for job_id, status in (evidence.get("retried") or {}).items():
        points.append(("retry_succeeded", 1.0 if status == "COMPLETED" else 0.0, {"job": job_id}))
    return points


# --- provider-outage ----------------------------------------------------------------------------------------


def provider_outage(evidence: dict[str, Any]) -> list[Point]:
    breaker = evidence.get("breaker")
    outage = evidence.get("outage")
    if not breaker or not outage:
        return []
    until = float(outage.get("closed_at") or outage["end"])
    windows = breaker_windows(breaker["transitions"], until=until)
    requests = [{"ts": ts, "status": status, "kind": "api"} for ts, status, *_ in breaker["requests"]]
    traffic = breaker_traffic(requests, windows, grace=float(breaker.get("grace_s", BREAKER_GRACE)))
    return [
        ("breaker_violations", float(traffic.violations), {}),
        ("breaker_probes", float(traffic.probes), {}),
        ("breaker_opens", float(traffic.open_windows), {}),
    ]


# --- overload ---------------------------------------------------------------------------------------------------


def overload(evidence: dict[str, Any]) -> list[Point]:
    o = evidence.get("overload")
    if not o:
        return []
    threshold = int(o["threshold"])
    crossed = next((at for at, waiting, *_ in o.get("ticks", []) if waiting is not None and waiting >= threshold), None)
    pause = o.get("pause") or {}
    times = brake_times(crossed_at=crossed, paused_at=pause.get("at"), resumed_at=o.get("resumed_at"))
    points: list[Point] = []
    if times.engage is not None:
        points.append(("brake_engage", times.engage, {}))
    if times.resume is not None:
        points.append(("brake_resume", times.resume, {}))
    points.append(("overload_rejections", float(o.get("rejections", 0)), {}))
    return points


# --- long-outage ---------------------------------------------------------------------------------------------


STALL_MARK = "stall"  # the stall sweep's reason names it ("timeout: job stalled in IN_PROGRESS ...")


def stalled_jobs(evidence: dict[str, Any]) -> list[str]:
    """Jobs the stall sweep failed: a reconciler logged ``job_stalled``, or the row says so."""
    logged = {job for _, job, *_ in evidence.get("stall_events", [])}
    rows = {job for job, error in (evidence.get("failed") or {}).items() if STALL_MARK in str(error).lower()}
    return sorted(logged | rows)


def fault_resumed(fault: dict[str, Any], until: datetime) -> tuple[float, bool]:
    """Seconds from the fault's end to the last caught job's COMPLETED; (waited, False) if one never did."""
    end = datetime.fromisoformat(fault["end"])
    finals = (fault.get("final") or {}).values()
    if not fault.get("in_flight"):
        return 0.0, True
    if len(finals) < len(fault["in_flight"]) or any(status != "COMPLETED" or not at for status, at in finals):
        return (until - end).total_seconds(), False
    last = max(datetime.fromisoformat(at) for _, at in finals)
    return max(0.0, (last - end).total_seconds()), True


def long_outage(evidence: dict[str, Any]) -> list[Point]:
    info = evidence.get("long_outage")
    if not info or not info.get("faults"):
        return []
    points: list[Point] = [
        ("long_outage_stalled_jobs", float(len(stalled_jobs(evidence))), {}),
        ("long_outage_failed_jobs", float(len(evidence.get("failed") or {})), {}),
    ]
    until = _until(evidence)
    for fault in info["faults"]:
        labels = {"fault": fault["kind"], "seconds": f"{float(fault['seconds']):g}"}
        points.append(("long_outage_in_flight", float(len(fault.get("in_flight") or [])), labels))
        seconds, resumed = fault_resumed(fault, until)
        points.append(("long_outage_resumed", seconds, labels if resumed else labels | {"bound": "lower"}))
    return points


MEASURES: dict[str, Callable[[dict[str, Any]], list[Point]]] = {
    "redis-failover": redis_failover,
    "worker-kill": worker_kill,
    "worker-term": worker_term,
    "db-partition": db_partition,
    "provider-outage": provider_outage,
    "overload": overload,
    "long-outage": long_outage,
}


def measurements_from_evidence(experiment: str, evidence: dict[str, Any]) -> list[Point]:
    compute = MEASURES.get(experiment)
    return compute(evidence) if compute is not None else []
