"""long-outage's verdict, judged from hand-made evidence: a run whose stall sweep failed jobs
that were only waiting out an outage (today's main) must fail; a run where they resumed passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaos.checks import long_outage as checks
from chaos.experiments import EXPERIMENTS
from chaos.experiments.long_outage import LongOutageParams, stall_events
from chaos.verdicts import long_outage as measures
from chaos.verdicts import stalled_jobs
from lab.criteria import Verdict, evaluate_criterion, load_criteria
from lab.metrics import Metrics

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def evidence(*, stalled: bool) -> dict[str, Any]:
    """Two faults of 40 s with a 20 s stall limit; with ``stalled``, the sweep failed j1 and j3."""
    status = "FAILED" if stalled else "COMPLETED"
    reason = "timeout: job stalled in IN_PROGRESS for more than 20 s"
    return {
        "load_started_at": at(0),
        "observed_until": at(300),
        "long_outage": {
            "stall_limit": 20.0,
            "stall_sweep_interval": 2.0,
            "settings": {"IMPORTER_STALL_LIMIT": "20", "IMPORTER_STALL_SWEEP_INTERVAL": "2"},
            "faults": [
                {
                    "kind": "provider",
                    "seconds": 40.0,
                    "start": at(20),
                    "end": at(60),
                    "in_flight": ["j1", "j2"],
                    "final": {"j1": [status, at(62)], "j2": ["COMPLETED", at(70)]},
                },
                {
                    "kind": "postgres",
                    "seconds": 40.0,
                    "start": at(100),
                    "end": at(140),
                    "in_flight": ["j3"],
                    "final": {"j3": [status, at(145)]},
                },
            ],
        },
        "failed": {"j1": reason, "j3": reason} if stalled else {},
        "stall_events": [[at(62), "j1", "reconciler-long-outage-1.log"]] if stalled else [],
    }


def failed_checks(e: dict[str, Any]) -> set[str]:
    return {c.name for c in checks(e) if not c.passed}


def test_jobs_that_waited_out_both_faults_and_completed_pass() -> None:
    e = evidence(stalled=False)
    assert failed_checks(e) == set()
    points = {(m, tuple(sorted(labels.items()))): v for m, v, labels in measures(e)}
    assert points[("long_outage_stalled_jobs", ())] == 0
    assert points[("long_outage_resumed", (("fault", "provider"), ("seconds", "40")))] == 10.0
    assert points[("long_outage_in_flight", (("fault", "postgres"), ("seconds", "40")))] == 1


def test_a_stall_sweep_judging_by_the_first_start_fails_the_run() -> None:
    e = evidence(stalled=True)
    # j3's stall is known from its row only (its reconciler log was lost): still counted
    assert stalled_jobs(e) == ["j1", "j3"]
    assert failed_checks(e) == {
        "every job caught in flight resumed and completed",
        "the stall sweep failed no job",
        "no job of the run failed",
    }
    metrics = Metrics()
    for metric, value, labels in measures(e):
        metrics.add(metric, value, labels)
    (r6,) = [c for c in load_criteria() if c.id == "R6"]
    result = evaluate_criterion(r6, metrics)
    assert result.verdict is Verdict.FAIL and "2" in result.reason
    resumed = [labels for m, _, labels in measures(e) if m == "long_outage_resumed"]
    assert all(labels.get("bound") == "lower" for labels in resumed)


def test_faults_shorter_than_the_stall_limit_or_with_nothing_in_flight_prove_nothing() -> None:
    e = evidence(stalled=False)
    e["long_outage"]["faults"][0]["seconds"] = 15.0
    e["long_outage"]["faults"][1]["in_flight"] = []
    e["long_outage"]["faults"][1]["final"] = {}
    assert failed_checks(e) == {
        "each fault outlasted the stall limit (20 s)",
        "jobs were in flight when each fault began",
    }
    e["long_outage"]["faults"] = e["long_outage"]["faults"][:1]
    assert "a provider outage and a Postgres partition were injected" in failed_checks(e)


def test_a_caught_job_never_seen_ending_fails() -> None:
    e = evidence(stalled=False)
    del e["long_outage"]["faults"][0]["final"]["j2"]
    assert failed_checks(e) == {"every job caught in flight resumed and completed"}


def test_stall_events_are_read_from_every_reconciler_log_for_this_runs_jobs(tmp_path: Path) -> None:
    lines = [
        {"timestamp": at(30), "level": "error", "event": "job_stalled", "job_id": "j1"},
        {"timestamp": at(-30), "level": "error", "event": "job_stalled", "job_id": "j2"},  # before the run
        {"timestamp": at(31), "level": "error", "event": "job_stalled", "job_id": "other-run"},
        {"timestamp": at(32), "level": "info", "event": "orphan_requeued", "job_id": "j2"},
    ]
    (tmp_path / "reconciler.log").write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json job_stalled\n")
    (tmp_path / "reconciler-long-outage-1.log").write_text(
        json.dumps({"timestamp": "2026-12-02T06:01:00Z", "event": "job_stalled", "job_id": "j2"}) + "\n"
    )
    (tmp_path / "worker-1.log").write_text(json.dumps(lines[0]) + "\n")  # not a reconciler
    found = stall_events(tmp_path, {"j1", "j2"}, T0)
    assert sorted((job, name) for _, job, name in found) == [
        ("j1", "reconciler.log"),
        ("j2", "reconciler-long-outage-1.log"),
    ]


def test_params_keep_every_fault_longer_than_the_stall_limit() -> None:
    for params in (LongOutageParams(), LongOutageParams.quick()):
        assert min(params.provider_seconds, params.partition_seconds) > params.stall_limit
        assert params.stall_sweep_interval < params.stall_limit
    assert LongOutageParams().reconciler_env() == {"IMPORTER_STALL_LIMIT": "20", "IMPORTER_STALL_SWEEP_INTERVAL": "2"}
    with pytest.raises(ValueError, match="outlast"):
        LongOutageParams(stall_limit=45.0)
    with pytest.raises(ValueError, match="several times"):
        LongOutageParams(stall_sweep_interval=25.0)
    assert list(EXPERIMENTS)[-2:] == ["long-outage", "db-partition"]  # in the chaos and dr suites
