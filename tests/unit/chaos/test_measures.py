"""The recovery arithmetic on hand-made timelines (no stack, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chaos.measures import (
    BreakerWindow,
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
    retry_budget,
    stall_detections,
)
from chaos.profile import CHAOS_ENV, mismatches, up_command
from chaos.session import schedule

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def steady(n: int = 10) -> list[JobTimes]:
    return [JobTimes(f"pre{i}", "COMPLETED", t(i), t(i + 0.2), t(i + 1)) for i in range(n)]


def test_recovery_counts_only_jobs_started_after_the_fault() -> None:
    jobs = steady()
    # Jobs already running at the kill finish right after it: they prove nothing about the queue.
    jobs += [JobTimes(f"old{i}", "COMPLETED", t(9), t(9.5), t(10.5 + i * 0.1)) for i in range(5)]
    jobs += [JobTimes(f"new{i}", "COMPLETED", t(12 + i), t(20 + i), t(21 + i)) for i in range(6)]
    result = failover_recovery(jobs, fault_at=t(10), pre_window=(t(1), t(9)), window=5.0, threshold=0.5)
    assert result.pre_rate == pytest.approx(1.0)
    assert result.needed == pytest.approx(2.5)
    assert result.seconds == pytest.approx(13.0)  # the third post-fault completion, at t=23


def test_no_recovery_and_no_pre_fault_rate_are_none() -> None:
    assert failover_recovery(steady(), fault_at=t(10), pre_window=(t(1), t(9))).seconds is None
    assert failover_recovery([], fault_at=t(10), pre_window=(t(1), t(9))).seconds is None


def test_an_orphan_is_dated_back_to_the_last_good_look() -> None:
    created = {"a": t(0), "b": t(12)}
    ticks = [
        OrphanTick(t(5), True),
        OrphanTick(t(10), False),  # Redis unreadable: says nothing
        OrphanTick(t(15), True, ("a", "b")),
        OrphanTick(t(20), True, ("b",)),
        OrphanTick(t(25), True),
    ]
    lives = {life.job_id: life for life in orphan_lifetimes(ticks, created)}
    assert lives["a"].since == t(5) and lives["a"].seconds == pytest.approx(15.0)
    assert lives["b"].since == t(12) and lives["b"].seconds == pytest.approx(13.0)  # never seen fine: since creation
    assert all(life.healed for life in lives.values())


def test_an_orphan_still_there_at_the_end_is_a_lower_bound() -> None:
    (life,) = orphan_lifetimes([OrphanTick(t(1), True), OrphanTick(t(9), True, ("a",))], {"a": t(0)})
    assert not life.healed and life.seconds == pytest.approx(8.0)


def test_stall_detection_needs_a_newer_attempt_by_another_worker() -> None:
    kill = Kill(t(10), "victim", {"j1": 1, "j2": 1})
    changes = [
        JobChange(t(10.2), "j1", "IN_PROGRESS", "victim", 1),  # the victim's own last word
        JobChange(t(13.4), "j1", "IN_PROGRESS", "other", 2),
        JobChange(t(14), "j2", "PENDING", None, 1),
    ]
    found = {s.job_id: s for s in stall_detections([kill], changes)}
    assert found["j1"].seconds == pytest.approx(3.4) and found["j1"].by == "other"
    assert found["j2"].seconds is None


def test_breaker_traffic_sorts_probes_in_flight_requests_and_violations() -> None:
    transitions = [
        {"state": "open", "from": "closed", "at": 100.0},
        {"state": "half_open", "from": "open", "at": 103.0},
        {"state": "closed", "from": "half_open", "at": 103.5},
    ]
    windows = breaker_windows(transitions, until=110.0)
    assert windows[0] == BreakerWindow("open", 100.0, 103.0)
    requests = [
        {"ts": 99.0, "kind": "api"},  # closed
        {"ts": 100.05, "kind": "api"},  # admitted while closed, arrived just after opening
        {"ts": 101.0, "kind": "image"},  # the CDN is not behind the breaker
        {"ts": 102.0, "kind": "api"},  # violation
        {"ts": 103.1, "kind": "api"},  # the probe
        {"ts": 103.2, "kind": "api"},  # a second request in one half-open window: violation
        {"ts": 104.0, "kind": "api"},  # closed again
    ]
    traffic = breaker_traffic(requests, windows, grace=0.2)
    assert (traffic.probes, traffic.in_flight, traffic.violations, traffic.open_windows) == (1, 1, 2, 1)


def test_downtime_tolerated_stops_at_the_first_partition_that_cost_a_job() -> None:
    results = [
        PartitionResult("down", 5, 0, True),
        PartitionResult("down", 15, 0, True),
        PartitionResult("down", 30, 2, True),
        PartitionResult("down", 60, 0, True),  # a later success does not raise the limit
        PartitionResult("timeout", 5, 0, False),  # never reconnected: not tolerated
        PartitionResult("latency", 5, 0, True),
    ]
    assert downtime_tolerated(results) == {"down": 15.0, "timeout": 0.0, "latency": 5.0}


def test_retry_budget_matches_the_importer_backoff() -> None:
    assert retry_budget(base=1, cap=30, tries=10) == (75.5, 151.0)
    low, high = retry_budget(base=5, cap=300, tries=10)  # the production defaults
    assert low == pytest.approx(607.5) and high == pytest.approx(1215.0)


def test_brake_times_never_go_negative_and_need_both_ends() -> None:
    assert brake_times(crossed_at=10.0, paused_at=9.8, resumed_at=20.0).engage == 0.0
    assert brake_times(crossed_at=None, paused_at=9.8, resumed_at=None).engage is None
    assert brake_times(crossed_at=1.0, paused_at=2.0, resumed_at=None).resume is None


def test_dr_runs_go_in_rounds_and_single_experiments_back_to_back() -> None:
    rounds = schedule(["redis-failover", "overload"], runs=3, quick=True, rounds=True)
    assert [(s.experiment, s.run) for s in rounds[:3]] == [
        ("redis-failover", 1),
        ("overload", 1),
        ("redis-failover", 2),
    ]
    repeated = schedule(["worker-kill"], runs=2, quick=False, rounds=False)
    assert [(s.experiment, s.run, s.runs) for s in repeated] == [("worker-kill", 1, 2), ("worker-kill", 2, 2)]


def test_an_attached_stack_must_run_the_chaos_profile() -> None:
    assert mismatches(dict(CHAOS_ENV)) == {}
    env = {**CHAOS_ENV, "IMPORTER_LEASE_SECONDS": "30"}
    assert mismatches(env) == {"IMPORTER_LEASE_SECONDS": ("30", "3")}
    assert "--topology ha" in up_command() and "--env IMPORTER_LEASE_SECONDS=3" in up_command()
