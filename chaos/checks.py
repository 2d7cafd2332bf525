"""Each experiment's own assertions, judged from its journal alone (pure functions).

The criteria (lab/criteria.toml, docs/architecture.md §10) judge the figures every experiment shares: recovery times,
data loss, success rate. What is specific to one experiment ("every SIGTERMed worker exited
0", "the brake resumed by itself") is judged here, from the evidence the experiment wrote into
its journal, so a recorded run can be re-judged and a run that should fail is seen to fail.
Each check becomes an ``experiment_check`` measurement (1 pass, 0 fail) that criterion E1
requires to be all ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos import verdicts
from chaos.journal import Check, Journal


def _check(name: str, passed: bool, detail: str = "") -> Check:
    return Check(name=name, passed=bool(passed), detail=detail)


def generic_checks(journal: Journal) -> list[Check]:
    before = journal.steady_state_before
    failed_rollbacks = [r.name for r in journal.rollbacks if r.status != "succeeded"]
    checks = [
        _check(
            "steady state held before the fault",
            before is not None and before.met,
            ""
            if before is None
            else "; ".join(f"{p.name}: {p.output!r}" for p in before.probes if p.status != "succeeded"),
        ),
        _check(
            "the method ran to the end",
            journal.status in ("completed", "failed") and before is not None and before.met,
            journal.reason,
        ),
        _check("steady state held after recovery", not journal.deviated and journal.steady_state_after is not None),
        _check("every rollback succeeded", not failed_rollbacks, ", ".join(failed_rollbacks)),
    ]
    checker = journal.checker
    if checker is not None and "error" in checker:
        checks.append(_check("the data-loss checker could read everything", False, str(checker["error"])))
    elif checker is not None:
        # A job row no client was acknowledged for is only explained by a submission whose answer
        # never arrived (the row may have been written anyway); any more is a phantom job.
        unexpected = int(checker.get("unexpected_jobs", 0))
        ambiguous = int((journal.load or {}).get("ambiguous", 0))
        extra = (journal.load or {}).get("extra") or {}
        ambiguous += sum(int(v.get("ambiguous", 0)) for v in extra.values())
        checks.append(
            _check(
                "every unexpected job row is explained by a submission left unanswered",
                unexpected <= ambiguous,
                f"{unexpected} unexpected job row(s), {ambiguous} unanswered submission(s)",
            )
        )
    return checks


# --- per experiment ---------------------------------------------------------------------------


def redis_failover(evidence: dict[str, Any]) -> list[Check]:
    failover = evidence.get("failover") or {}
    new, old = failover.get("new_master"), failover.get("old_master")
    rejoined = failover.get("rejoined") or {}
    recovery = verdicts.recovery_summary(evidence).get("seconds")
    return [
        _check("Sentinel promoted a replica", bool(new) and new != old, f"{old} -> {new}"),
        _check("jobs completed again through the new primary", recovery is not None, f"recovery {recovery} s"),
        _check(
            "the killed node rejoined as a replica",
            rejoined.get("node") == old and rejoined.get("replica_of") not in (None, old),
            str(rejoined or "not rejoined"),
        ),
    ]


def worker_kill(evidence: dict[str, Any], measurements: list[dict[str, Any]]) -> list[Check]:
    kills = evidence.get("kills") or []
    lower = [m for m in measurements if m.get("metric") == "stall_detection" and m.get("bound") == "lower"]
    return [
        _check(
            "workers were killed mid-job", bool(kills) and all(k.get("jobs") for k in kills), f"{len(kills)} kill(s)"
        ),
        _check(
            "every abandoned job was taken over by another worker",
            bool(kills) and not lower,
            f"{len(lower)} job(s) never taken over" if lower else "",
        ),
    ]


def worker_term(evidence: dict[str, Any]) -> list[Check]:
    terms = evidence.get("terms") or []
    bad_exit = [t["worker"] for t in terms if t.get("exit_code") != 0]
    slow = [t["worker"] for t in terms if not t.get("exited") or float(t["seconds"]) > float(t.get("grace", 30)) + 5]
    burned = []
    for term in terms:
        for job, before in (term.get("jobs") or {}).items():
            after = (term.get("final") or {}).get(job, {})
            if after.get("queue_try", before) > before:
                burned.append(f"{job}: try {before} -> {after['queue_try']}")
    return [
        _check("workers were stopped mid-job", bool(terms) and all(t.get("jobs") for t in terms), f"{len(terms)}"),
        _check("every SIGTERMed worker exited 0", bool(terms) and not bad_exit, ", ".join(bad_exit)),
        _check("every worker stopped within its shutdown grace", bool(terms) and not slow, ", ".join(slow)),
        _check("no try burned by a hand-back (queue_try unchanged)", bool(terms) and not burned, "; ".join(burned[:5])),
    ]


def db_partition(evidence: dict[str, Any]) -> list[Check]:
    partitions = evidence.get("partitions") or []
    not_back = [f"{p['variant']} {p['duration']:g}s" for p in partitions if not p.get("recovered_at")]
    shortest: dict[str, float] = {}
    for p in partitions:
        shortest[p["variant"]] = min(shortest.get(p["variant"], float("inf")), float(p["duration"]))
    failed_at_shortest = [
        f"{p['variant']} {float(p['duration']):g}s: {len(failed)} failed"
        for p, failed in zip(partitions, verdicts.partition_failures(evidence), strict=True)
        if float(p["duration"]) == shortest.get(p["variant"]) and failed
    ]
    retried = evidence.get("retried") or {}
    still_failed = [j for j, status in retried.items() if status != "COMPLETED"]
    return [
        _check("partitions were injected", bool(partitions), f"{len(partitions)} partition(s)"),
        _check(
            "the importer reconnected after every partition", bool(partitions) and not not_back, ", ".join(not_back)
        ),
        _check(
            "the shortest partition of every variant cost no job",
            bool(partitions) and not failed_at_shortest,
            "; ".join(failed_at_shortest),
        ),
        _check("every job failed by a partition succeeded on retry", not still_failed, ", ".join(still_failed[:5])),
    ]


def provider_outage(evidence: dict[str, Any]) -> list[Check]:
    breaker = evidence.get("breaker") or {}
    outage = evidence.get("outage") or {}
    figures = {metric: value for metric, value, _ in verdicts.provider_outage(evidence)}
    opened = any(t.get("state") == "open" for t in breaker.get("transitions", []))
    probes = int(figures.get("breaker_probes", 0))
    return [
        _check("the breaker opened during the outage", opened, f"{len(breaker.get('transitions', []))} transition(s)"),
        _check("the breaker closed after the provider came back", bool(outage.get("closed_at"))),
        _check("half-open probes reached the provider", probes > 0, f"{probes} probe(s)"),
    ]


def overload(evidence: dict[str, Any]) -> list[Check]:
    o = evidence.get("overload") or {}
    pause = o.get("pause") or {}
    before = o.get("counters_before") or {}
    after = o.get("counters_after_resume") or {}
    auto_resumed = int(after.get("brake_auto_resumes", 0)) > int(before.get("brake_auto_resumes", 0))
    return [
        _check("the API answered 503 with Retry-After", int(o.get("rejections", 0)) > 0, f"{o.get('rejections')} 503s"),
        _check(
            "every 503 carried Retry-After",
            int(o.get("rejections", 0)) > 0 and int(o.get("rejections_without_retry_after", 1)) == 0,
            f"{o.get('rejections_without_retry_after')} without",
        ),
        _check("the emergency brake paused the queue", pause.get("mode") == "auto", str(pause.get("reason", ""))),
        _check(
            "the brake resumed by itself",
            bool(o.get("resumed_at")) and auto_resumed and not o.get("resumed_by_operator"),
            "lifted by the rollback (operator)" if o.get("resumed_by_operator") else "",
        ),
        _check("intake reopened after recovery", bool(o.get("intake_reopened_at"))),
    ]


def long_outage(evidence: dict[str, Any]) -> list[Check]:
    info = evidence.get("long_outage") or {}
    faults = info.get("faults") or []
    limit = float(info.get("stall_limit", 0))
    short = [f"{f['kind']} {float(f['seconds']):g} s" for f in faults if float(f["seconds"]) <= limit]
    kinds = sorted({f["kind"] for f in faults})
    idle = [f["kind"] for f in faults if not f.get("in_flight")]
    not_completed = [
        f"{f['kind']}: {job} {status}"
        for f in faults
        for job, (status, _) in sorted((f.get("final") or {}).items())
        if status != "COMPLETED"
    ]
    unseen = [
        f"{f['kind']}: {len(f.get('in_flight') or []) - len(f.get('final') or {})} not seen ending"
        for f in faults
        if len(f.get("final") or {}) < len(f.get("in_flight") or [])
    ]
    stalled = verdicts.stalled_jobs(evidence)
    failed = evidence.get("failed") or {}
    return [
        _check(
            "a provider outage and a Postgres partition were injected",
            kinds == ["postgres", "provider"],
            ", ".join(f"{f['kind']} {float(f['seconds']):g} s" for f in faults),
        ),
        _check(
            f"each fault outlasted the stall limit ({limit:g} s)",
            bool(faults) and limit > 0 and not short,
            ", ".join(short),
        ),
        _check("jobs were in flight when each fault began", bool(faults) and not idle, ", ".join(idle)),
        _check(
            "every job caught in flight resumed and completed",
            bool(faults) and not not_completed and not unseen,
            "; ".join([*not_completed[:5], *unseen]),
        ),
        _check("the stall sweep failed no job", not stalled, ", ".join(stalled[:5])),
        _check(
            "no job of the run failed",
            not failed,
            "; ".join(f"{j}: {str(e)[:80]}" for j, e in sorted(failed.items())[:3]),
        ),
    ]


_SPECIFIC: dict[str, Callable[[Journal], list[Check]]] = {
    "redis-failover": lambda j: redis_failover(j.evidence),
    "worker-kill": lambda j: worker_kill(j.evidence, [{"metric": m.metric, **m.labels} for m in j.measurements]),
    "worker-term": lambda j: worker_term(j.evidence),
    "db-partition": lambda j: db_partition(j.evidence),
    "provider-outage": lambda j: provider_outage(j.evidence),
    "overload": lambda j: overload(j.evidence),
    "long-outage": lambda j: long_outage(j.evidence),
}


def specific_checks(journal: Journal) -> list[Check]:
    judge = _SPECIFIC.get(journal.experiment)
    return judge(journal) if judge is not None else []


def judge(journal: Journal) -> list[Check]:
    """Every check of a recorded journal (what the runner stored, recomputed)."""
    return [*generic_checks(journal), *specific_checks(journal)]
