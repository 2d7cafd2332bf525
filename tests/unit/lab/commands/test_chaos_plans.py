"""What `drill chaos` / `drill run chaos|dr` schedule, and the command-line mistakes they refuse."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from chaos.experiments import EXPERIMENTS
from chaos.experiments.db_partition import PartitionParams
from lab.cli import build_app
from lab.commands.chaos import plan_for


def test_the_chaos_suite_runs_every_experiment_once() -> None:
    plan, scenario, kind = plan_for(None, "chaos", 1, False, None, None)
    assert (scenario, kind) == ("chaos-suite", "chaos")
    assert [p.experiment for p in plan] == list(EXPERIMENTS)
    assert {p.run for p in plan} == {1}


def test_the_dr_suite_runs_every_experiment_three_times_in_rounds() -> None:
    plan, scenario, kind = plan_for(None, "dr", 1, False, None, None)
    assert (scenario, kind) == ("dr-suite", "dr")
    assert len(plan) == 3 * len(EXPERIMENTS)
    # rounds: all experiments once, then all again, then a third time
    assert [p.run for p in plan] == [k for k in (1, 2, 3) for _ in EXPERIMENTS]
    assert [p.experiment for p in plan[: len(EXPERIMENTS)]] == list(EXPERIMENTS)


def test_one_experiment_repeated_back_to_back() -> None:
    plan, scenario, _ = plan_for("worker-kill", None, 4, True, None, None)
    assert scenario == "worker-kill"
    assert [(p.experiment, p.run, p.runs) for p in plan] == [("worker-kill", k, 4) for k in (1, 2, 3, 4)]


def test_partition_durations_and_variants_reach_the_experiment() -> None:
    plan, _, _ = plan_for("db-partition", None, 1, False, "5,20", "down,latency")
    (item,) = plan
    assert isinstance(item.params, PartitionParams)
    assert item.params.durations == (5.0, 20.0)
    assert item.params.variants == ("down", "latency")


@pytest.mark.parametrize(
    ("experiment", "suite"),
    [(None, None), ("worker-kill", "chaos"), ("no-such-thing", None), (None, "weekly")],
)
def test_nonsense_is_refused(experiment: str | None, suite: str | None) -> None:
    with pytest.raises(typer.BadParameter):
        plan_for(experiment, suite, 1, False, None, None)


def test_drill_run_help_lists_the_chaos_suites_and_unknown_names_exit_2() -> None:
    runner = CliRunner()
    shown = runner.invoke(build_app(), ["run", "--help"])
    assert shown.exit_code == 0
    assert "chaos" in shown.output and "dr" in shown.output and "job-sizes" in shown.output
    unknown = runner.invoke(build_app(), ["run", "no-such-scenario"])
    assert unknown.exit_code == 2
