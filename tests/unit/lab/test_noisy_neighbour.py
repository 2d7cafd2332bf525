"""noisy-neighbour: tenant groups, phased submissions, and F1's ratio of two p95s of one run."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.criteria import Verdict, evaluate_criterion, load_criteria
from lab.expressions import ExpressionError, evaluate_threshold, parse_threshold
from lab.metrics import Metrics, size_classes_of
from lab.plans import Company, SetupError, StoreRequest, build_plan, store_requests
from lab.rundir import AcknowledgedJob
from lab.scenarios import Scenario, get_scenario
from loadtests.plan import Assignment, Plan, PlanError, write_plan

API = "http://127.0.0.1:8000"
F1 = 'p95(job_duration{size_class="beside-flood"}) <= 2 * p95(job_duration{size_class="alone"})'


def durations(alone: list[float], beside: list[float]) -> Metrics:
    metrics = Metrics()
    for value in alone:
        metrics.add("job_duration", value, {"size_class": "alone", "products": "10"})
    for value in beside:
        metrics.add("job_duration", value, {"size_class": "beside-flood", "products": "10"})
    return metrics


# --- the expression: value * term ------------------------------------------------------------


def test_a_target_may_be_a_factor_times_another_measurement_of_the_run() -> None:
    t = parse_threshold(F1)
    assert t.metric == "job_duration" and t.percentile == 95 and t.target == 2
    assert t.reference is not None and t.reference.percentile == 95
    assert t.reference.subject == 'p95(job_duration{size_class=="alone"})'
    assert t.target_text == '<= 2 x p95(job_duration{size_class=="alone"})'


def test_fair_starts_pass_and_the_report_shows_both_p95s_and_the_ratio() -> None:
    outcome = evaluate_threshold(parse_threshold(F1), durations([1.0] * 10, [1.5] * 10))
    assert outcome.passed is True and outcome.measured == 1.5 and outcome.reference == 1.0
    assert outcome.ratio == pytest.approx(1.5)
    assert "= 1.5" in outcome.measured_text and "= 1" in outcome.measured_text and "ratio 1.50" in outcome.measured_text


def test_a_small_tenant_waiting_out_the_flood_backlog_fails() -> None:
    # today's main: first come, first served; the small jobs wait behind 300 flood jobs
    outcome = evaluate_threshold(parse_threshold(F1), durations([0.8, 0.9, 1.0, 1.1], [30.0, 41.0, 52.0, 60.0]))
    assert outcome.passed is False and outcome.ratio is not None and outcome.ratio > 40


def test_without_either_phase_it_is_not_measured_never_a_pass() -> None:
    threshold = parse_threshold(F1)
    assert evaluate_threshold(threshold, durations([], [1.0])).passed is None
    assert evaluate_threshold(threshold, durations([1.0], [])).passed is None
    assert evaluate_threshold(threshold, Metrics()).passed is None


@pytest.mark.parametrize(
    "text",
    ["p95(a) <= 2s * p95(b)", "p95(a) <= 2 * ", "p95(a) <= 2 * p95(b) * 3", "p95(a) <= * p95(b)"],
)
def test_malformed_reference_targets_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_threshold(text)


def test_f1_in_the_table_judges_a_starved_run_as_failed() -> None:
    (f1,) = [c for c in load_criteria() if c.id == "F1"]
    assert f1.applies("load") and not f1.applies("chaos")
    assert evaluate_criterion(f1, durations([1.0] * 8, [1.2] * 8)).verdict is Verdict.PASS
    starved = evaluate_criterion(f1, durations([1.0] * 8, [1.0] * 4 + [45.0] * 4))
    assert starved.verdict is Verdict.FAIL and "ratio" in starved.measured_text
    # other load runs have no such classes: not measured, not an error
    other = durations([], [])
    other.add("job_duration", 3.0, {"size_class": "10"})
    assert evaluate_criterion(f1, other).verdict is Verdict.NOT_MEASURED


# --- the scenario and its plan ---------------------------------------------------------------


def test_the_shipped_scenario_floods_within_the_company_limit_after_a_baseline() -> None:
    s = get_scenario("noisy-neighbour")
    classes = {c.size_class: c for c in s.catalogs}
    assert classes["flood"].jobs == 300 and classes["flood"].tenant == "flooder"
    assert classes["alone"].start_after_s + classes["alone"].spread_s < classes["flood"].start_after_s
    assert classes["beside-flood"].start_after_s > classes["flood"].start_after_s
    assert {t.name: t.tier for t in s.tenants} == {"small": "PRO", "flooder": "PRO"}
    assert s.users >= s.total_jobs  # every client holds one job: the flood is submitted at once
    assert s.workers.autoscale is None  # fixed workers: both phases see the same capacity


def test_phased_requests_are_ordered_by_their_submission_time() -> None:
    requests = store_requests(get_scenario("noisy-neighbour"))
    times = [r.not_before_s for r in requests]
    assert times == sorted(times)
    alone = [r for r in requests if r.size_class == "alone"]
    assert alone[0].not_before_s == 0 and max(r.not_before_s for r in alone) < 45  # before the flood
    assert {r.not_before_s for r in requests if r.size_class == "flood"} == {45.0}


def scenario_with_tenants(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "nn",
        "kind": "load",
        "description": "tenant groups and phases",
        "users": 10,
        "spawn_rate": 5,
        "run_time_s": 60,
        "drain_timeout_s": 60,
        "tenants": [{"name": "small", "companies": 2}, {"name": "big", "companies": 1, "tier": "ENTERPRISE"}],
        "catalogs": [
            {"size_class": "alone", "tenant": "small", "jobs": 4, "products": 10, "spread_s": 8},
            {"size_class": "flood", "tenant": "big", "jobs": 5, "products": 10, "start_after_s": 10},
        ],
    }
    data.update(overrides)
    return Scenario.model_validate(data)


def test_tenant_groups_get_their_own_companies_round_robin() -> None:
    s = scenario_with_tenants()
    assert s.total_companies == 3
    small = [Company(id=f"s{i}", api_key=f"ks{i}", name=f"s{i}") for i in range(2)]
    big = [Company(id="b0", api_key="kb0", name="b0")]
    stores: list[tuple[StoreRequest, str]] = [(r, f"st_{r.order}") for r in store_requests(s)]
    plan = build_plan(s, API, [*small, *big], stores, tenants={"small": small, "big": big})
    by_class = Counter((a.size_class, a.company_id) for a in plan.assignments)
    assert by_class == {("alone", "s0"): 2, ("alone", "s1"): 2, ("flood", "b0"): 5}
    assert [a.not_before_s for a in plan.assignments if a.size_class == "alone"] == [0.0, 2.0, 4.0, 6.0]
    with pytest.raises(SetupError):
        build_plan(s, API, [*small, *big], stores, tenants={"small": small})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenants": []}, "has no tenants"),
        ({"tenants": [{"name": "small"}, {"name": "small"}]}, "unique"),
        (
            {"catalogs": [{"size_class": "x", "tenant": "nobody", "jobs": 1, "products": 1}]},
            "not one of the tenant groups",
        ),
        (
            {"catalogs": [{"size_class": "x", "tenant": "small", "jobs": 1, "products": 1, "start_after_s": 60}]},
            "do not fit",
        ),
    ],
)
def test_inconsistent_tenants_and_phases_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario_with_tenants(**change)


def test_an_assignment_waits_for_its_phase_and_the_offset_is_bounded() -> None:
    a = Assignment(index=0, company_id="c", api_key="k", provider="roastify", store_id="s", products=1, not_before_s=45)
    assert a.wait_before_submit(started_at=1000.0, now=1010.0) == 35.0
    assert a.wait_before_submit(started_at=1000.0, now=1050.0) == 0.0
    assert Assignment.from_json(a.to_json()).not_before_s == 45
    with pytest.raises(PlanError):
        Assignment(index=0, company_id="c", api_key="k", provider="roastify", store_id="s", products=1, not_before_s=-1)
    with pytest.raises(PlanError):
        Assignment(
            index=0, company_id="c", api_key="k", provider="roastify", store_id="s", products=1, not_before_s=1e9
        )


# --- the label from plan.json -------------------------------------------------------------------


def test_job_durations_carry_the_size_class_of_their_store_from_plan_json(tmp_path: Path) -> None:
    assignments = tuple(
        Assignment(
            index=i, company_id="c", api_key="k", provider="roastify", store_id=f"st{i}", products=10, size_class=cls
        )
        for i, cls in enumerate(["alone", "beside-flood"])
    )
    write_plan(tmp_path / "plan.json", Plan(scenario="nn", api_url=API, assignments=assignments))
    classes = size_classes_of(tmp_path)
    assert classes == {"st0": "alone", "st1": "beside-flood"}
    now = datetime.now(UTC)
    jobs = [
        AcknowledgedJob(
            job_id=f"j{i}",
            company_id="c",
            provider="roastify",
            store_id=f"st{i}",
            products=10,
            submitted_at=now,
            ended_at=now,
            end_to_end_seconds=1.0 + i,
            final_status="COMPLETED",
        )
        for i in range(2)
    ]
    metrics = Metrics()
    metrics.add_jobs(jobs, None, size_classes=classes)
    assert evaluate_threshold(parse_threshold(F1), metrics).ratio == pytest.approx(2.0)
    (tmp_path / "plan.json").write_text(json.dumps({"schema_version": 99}))
    assert size_classes_of(tmp_path) is None
    assert size_classes_of(tmp_path / "nowhere") is None
