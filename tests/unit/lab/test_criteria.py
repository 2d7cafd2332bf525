"""The criteria table parses, and thresholds judge crafted metrics the way docs/architecture.md §10 reads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lab.criteria import (
    DEFAULT_CRITERIA,
    EXIT_FAIL,
    EXIT_PASS,
    CriteriaError,
    Criterion,
    Verdict,
    evaluate,
    evaluate_criterion,
    load_criteria,
)
from lab.expressions import ExpressionError, parse_threshold
from lab.metrics import Metrics


def criterion(cid: str, *seed: str, project: tuple[str, ...] = (), applies_to: tuple[str, ...] = ("*",)) -> Criterion:
    return Criterion(
        id=cid,
        title=cid,
        description=cid,
        seed_target=cid,
        seed=tuple(parse_threshold(s) for s in seed),
        project=tuple(parse_threshold(p) for p in project),
        applies_to=applies_to,
    )


def durations(*pairs: tuple[float, int]) -> Metrics:
    metrics = Metrics()
    for value, products in pairs:
        metrics.add("job_duration", value, {"products": str(products), "size": str(products), "provider": "roastify"})
    return metrics


# --- the table ---------------------------------------------------------------------------------


def test_every_criterion_of_the_table_parses() -> None:
    criteria = load_criteria(DEFAULT_CRITERIA)
    ids = [c.id for c in criteria]
    assert ids == ["P1", "P2", "P3", "P4", "P5", "R1", "R2", "R3", "R4", "R5", "O1", "O2", "O3", "E1", "F1", "R6", "M1"]
    for c in criteria:
        assert c.seed, c.id
        assert c.description and c.seed_target and c.applies_to


def test_the_table_states_the_seed_targets_of_design_md() -> None:
    by_id = {c.id: c for c in load_criteria()}
    assert by_id["P1"].seed[0].target == 300.0 and by_id["P1"].seed[0].filters[0].value == 100.0
    assert by_id["P2"].seed[0].target == pytest.approx(0.99)
    assert {t.text for t in by_id["P4"].seed} >= {"lost == 0", "duplicated == 0"}
    assert by_id["P5"].seed[0].target == 60.0
    assert by_id["R1"].seed[0].target == 600.0
    assert by_id["R2"].seed[0].target == 1800.0
    assert by_id["R3"].seed[0].target == 30.0


def test_a_bad_expression_names_its_criterion(tmp_path: Path) -> None:
    path = tmp_path / "criteria.toml"
    path.write_text(
        '[[criterion]]\nid = "P9"\ntitle = "t"\ndescription = "d"\nseed_target = "s"\n'
        'seed = ["p95(job_duration{products<100} < 5m"]\n'
    )
    with pytest.raises(CriteriaError, match=r"criterion P9: bad seed threshold .*expected '\)'"):
        load_criteria(path)


def test_unknown_keys_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    entry = '[[criterion]]\nid = "P1"\ntitle = "t"\ndescription = "d"\nseed_target = "s"\nseed = ["lost == 0"]\n'
    path = tmp_path / "criteria.toml"
    path.write_text(entry + entry)
    with pytest.raises(CriteriaError, match="used twice: P1"):
        load_criteria(path)
    path.write_text(entry + 'threshold = "x"\n')
    with pytest.raises(CriteriaError, match=r"criterion P1: unknown keys \['threshold'\]"):
        load_criteria(path)


# --- the expression language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target"),
    [("x < 500ms", 0.5), ("x < 30s", 30.0), ("x < 5m", 300.0), ("x < 2h", 7200.0), ("x >= 99%", 0.99), ("x == 3", 3.0)],
)
def test_units(text: str, target: float) -> None:
    assert parse_threshold(text).target == pytest.approx(target)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(x) < 3", "unknown aggregation 'foo'"),
        ("x = 3", "use == to compare"),
        ("x < 3 y", "unexpected text after the target"),
        ("x < 3parsecs", "unexpected character"),
        ("p95(x{a<}) < 1", "expected a label value"),
        ("p101(x) < 1", "outside p0..p100"),
        ("", "expected name"),
    ],
)
def test_syntax_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_threshold(text)


def test_percentile_with_numeric_label_filter() -> None:
    metrics = durations(*[(float(s), 10) for s in range(1, 101)], (5000.0, 1000))
    outcome = evaluate_criterion(criterion("P1", "p95(job_duration{products<100}) < 5m"), metrics)
    assert outcome.verdict is Verdict.PASS
    assert outcome.seed[0].measured == pytest.approx(95.05)  # the 1000-product job is filtered out
    assert outcome.seed[0].samples == 100


def test_string_label_filter_and_several_filters() -> None:
    metrics = durations((10.0, 10), (400.0, 1000), (500.0, 1000))
    metrics.add("job_duration", 9000.0, {"products": "1000", "size": "1000", "provider": "shopify"})
    result = evaluate_criterion(criterion("X", 'max(job_duration{size="1000", provider!="shopify"}) < 10m'), metrics)
    assert result.verdict is Verdict.PASS and result.seed[0].measured == 500.0
    result = evaluate_criterion(criterion("X", 'max(job_duration{size="1000"}) < 10m'), metrics)
    assert result.verdict is Verdict.FAIL and result.seed[0].measured == 9000.0
    assert 'max(job_duration{size=="1000"}) = 2.5 h, target < 10 min' in result.reason


def test_unfinished_jobs_count_as_infinitely_slow() -> None:
    metrics = durations((10.0, 10), (math.inf, 10))
    result = evaluate_criterion(criterion("P1", "p95(job_duration{products<100}) < 5m"), metrics)
    assert result.verdict is Verdict.FAIL
    assert "= ∞" in result.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("avg(v) == 2.5", True),
        ("min(v) == 0", True),
        ("max(v) == 6", True),
        ("sum(v) == 10", True),
        ("count(v) == 4", True),
        ("rate(v) == 75%", True),
        ("p50(v) == 2", True),
        ("p99(v) < 6", True),
        ("max(v) != 6", False),
        ("avg(v) > 2.5", False),
        ("count(v) <= 3", False),
    ],
)
def test_aggregations_and_comparisons(text: str, expected: bool) -> None:
    metrics = Metrics()
    for value in (0.0, 1.0, 3.0, 6.0):
        metrics.add("v", value)
    assert evaluate_criterion(criterion("X", text), metrics).verdict is (Verdict.PASS if expected else Verdict.FAIL)


def test_scalars_from_the_checker() -> None:
    metrics = Metrics()
    for name, value in {"lost": 0.0, "missing": 0.0, "duplicated": 2.0, "success_rate": 0.995}.items():
        metrics.add(name, value)
    p4 = evaluate_criterion(criterion("P4", "lost == 0", "missing == 0", "duplicated == 0"), metrics)
    assert p4.verdict is Verdict.FAIL
    assert p4.reason == "duplicated = 2, target == 0"
    p2 = evaluate_criterion(criterion("P2", "success_rate >= 99%", project=("success_rate >= 99.9%",)), metrics)
    assert p2.verdict is Verdict.PASS and p2.project_verdict is Verdict.FAIL
    assert p2.measured_text == "success_rate = 99.50%"


# --- not measured, errors, exit code ---------------------------------------------------------


def test_a_series_not_recorded_is_not_measured_not_a_pass() -> None:
    result = evaluate_criterion(criterion("R3", "max(shutdown_duration) < 30s"), Metrics())
    assert result.verdict is Verdict.NOT_MEASURED
    assert result.reason == "shutdown_duration not recorded in this run"
    assert result.measured_text == "not measured"


def test_filters_that_leave_nothing_are_not_measured_but_count_is_zero() -> None:
    metrics = durations((1000.0, 1000))
    p1 = evaluate_criterion(criterion("P1", "p95(job_duration{products<100}) < 5m"), metrics)
    assert p1.verdict is Verdict.NOT_MEASURED
    counted = evaluate_criterion(criterion("X", "count(job_duration{products<100}) == 0"), metrics)
    assert counted.verdict is Verdict.PASS


def test_one_failure_beats_a_missing_measurement_and_a_partial_one_is_not_measured() -> None:
    metrics = Metrics()
    metrics.add("rate_limit_violations", 0.0)
    partial = evaluate_criterion(criterion("R4", "rate_limit_violations == 0", "breaker_violations == 0"), metrics)
    assert partial.verdict is Verdict.NOT_MEASURED
    assert partial.measured_text == "rate_limit_violations = 0"
    metrics.add("lost", 1.0)
    failed = evaluate_criterion(criterion("P4", "lost == 0", "duplicated == 0"), metrics)
    assert failed.verdict is Verdict.FAIL


def test_a_misspelt_label_is_an_error_not_an_empty_series() -> None:
    result = evaluate_criterion(criterion("P1", "p95(job_duration{product<100}) < 5m"), durations((1.0, 10)))
    assert result.verdict is Verdict.ERROR
    assert "no label 'product'" in result.reason


def test_a_bare_series_with_many_values_asks_for_an_aggregation() -> None:
    metrics = Metrics()
    metrics.add("shutdown_duration", 1.0)
    metrics.add("shutdown_duration", 2.0)
    result = evaluate_criterion(criterion("R3", "shutdown_duration < 30s"), metrics)
    assert result.verdict is Verdict.ERROR and "max(shutdown_duration)" in result.reason


def test_a_failing_criterion_makes_the_exit_code_non_zero() -> None:
    metrics = Metrics()
    metrics.add("lost", 0.0)
    metrics.add("duplicated", 0.0)
    metrics.add("shutdown_duration", 12.0)
    ok = [criterion("P4", "lost == 0", "duplicated == 0"), criterion("R3", "max(shutdown_duration) < 30s")]
    unmeasured = criterion("P5", "max(failover_recovery) < 60s")
    passing = evaluate(metrics, run_kind="chaos", criteria=[*ok, unmeasured])
    assert passing.exit_code == EXIT_PASS and passing.verdict == "PASS"
    assert passing.reason == "2 criteria met, none failed; 1 not measured in this run"

    metrics.add("shutdown_duration", 31.0)
    failing = evaluate(metrics, run_kind="chaos", criteria=[*ok, unmeasured])
    assert failing.exit_code == EXIT_FAIL and failing.verdict == "FAIL"
    assert failing.reason.startswith("R3 R3: max(shutdown_duration) = 31 s, target < 30 s")


def test_an_error_also_fails_the_run_and_nothing_measured_passes_but_says_so() -> None:
    metrics = durations((1.0, 10))
    broken = evaluate(metrics, run_kind="load", criteria=[criterion("P1", "p95(job_duration{nope<1}) < 5m")])
    assert broken.exit_code == EXIT_FAIL
    empty = evaluate(Metrics(), run_kind="load", criteria=[criterion("P5", "max(failover_recovery) < 60s")])
    assert empty.exit_code == EXIT_PASS
    assert "none was measured" in empty.reason


def test_criteria_for_other_run_kinds_are_not_measured() -> None:
    metrics = durations((9999.0, 10))
    result = evaluate(
        metrics, run_kind="chaos", criteria=[criterion("P1", "max(job_duration) < 1s", applies_to=("load",))]
    )
    assert result.results[0].verdict is Verdict.NOT_MEASURED
    assert result.results[0].reason == "judged in load runs, not chaos"
    assert result.exit_code == EXIT_PASS


def test_project_gate_makes_the_stricter_target_decide() -> None:
    metrics = Metrics()
    metrics.add("success_rate", 0.995)
    c = criterion("P2", "success_rate >= 99%", project=("success_rate >= 99.9%",))
    assert evaluate(metrics, run_kind="load", criteria=[c]).exit_code == EXIT_PASS
    assert evaluate(metrics, run_kind="load", criteria=[c], gate="project").exit_code == EXIT_FAIL


@pytest.mark.parametrize(("violations", "verdict"), [((0.0, 0.0, 0.0), Verdict.PASS), ((0.0, 2.0, 0.0), Verdict.FAIL)])
def test_r4_judges_every_run_of_a_repeated_experiment(violations: tuple[float, ...], verdict: Verdict) -> None:
    """A DR suite measures breaker_violations once per provider-outage run: three values."""
    (r4,) = [c for c in load_criteria() if c.id == "R4"]
    metrics = Metrics()
    metrics.add("rate_limit_violations", 0.0)
    for value in violations:
        metrics.add("breaker_violations", value)
    assert evaluate_criterion(r4, metrics).verdict is verdict
