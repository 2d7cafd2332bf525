"""The pure parts of ``drill run``: what run.json records, what counts as a problem, attach checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.checker_inputs import CheckReport
from lab.drill_facts import checker_problems, run_notes, run_settings
from lab.drill_target import RunError, Target, attached_info
from lab.sabotage import Sabotage
from lab.scenarios import get_scenario
from lab.stack.info import StackInfo, save_info


def target(overrides: dict[str, str] | None = None) -> Target:
    return Target(
        api_url="http://127.0.0.1:1",
        provider_url="http://127.0.0.1:2",
        database_url="postgresql://x@127.0.0.1:3/x",
        redis_url="redis://127.0.0.1:4/0",
        s3_endpoint="http://127.0.0.1:5",
        s3_bucket="b",
        operator_token="t",
        overrides=dict(overrides or {}),
        description="fresh local stack",
    )


def test_every_non_default_setting_is_recorded_by_name_with_its_reason() -> None:
    scenario = get_scenario("concurrent-1000")
    settings = run_settings(scenario, target(scenario.importer_env), 0, None)
    assert settings["IMPORTER_QUEUE_START_LIMIT_PER_MIN"] == scenario.importer_env["IMPORTER_QUEUE_START_LIMIT_PER_MIN"]
    assert "autoscaled 2..8" in settings["workers"] and "1000 users" in settings["load"]
    assert "importer settings" not in settings
    notes = run_notes(scenario, target(scenario.importer_env), attach=False)
    assert any(n.startswith("IMPORTER_QUEUE_START_LIMIT_PER_MIN=") and "P1" in n for n in notes)
    assert any("2-core" in n for n in notes)


def test_a_run_with_defaults_says_so_and_a_sabotaged_run_says_it_is_meant_to_fail() -> None:
    settings = run_settings(get_scenario("smoke"), target(), 1, Sabotage("delete-products", 3))
    assert settings["importer settings"] == "all defaults"
    assert "master + 1 workers" in settings["load"]
    assert "meant to fail" in settings["sabotage"]


def test_an_attached_stack_that_ignores_the_scenarios_settings_is_called_out() -> None:
    scenario = get_scenario("concurrent-1000")
    notes = run_notes(scenario, target({}), attach=True)
    assert any("NOT applied" in n for n in notes)


def test_checker_problems_list_only_nonzero_problem_totals() -> None:
    report = CheckReport(totals={"lost": 0, "products_missing": 3, "completed": 20, "images_duplicated": 1})
    assert checker_problems(report) == ["Products missing: 3", "Images duplicated: 1"]


def test_attach_without_a_stack_or_with_a_dead_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no stack is recorded"):
        attached_info(tmp_path)
    save_info(tmp_path, StackInfo(run_dir=str(tmp_path), state="stopped"))
    with pytest.raises(RunError, match="not running"):
        attached_info(tmp_path)
