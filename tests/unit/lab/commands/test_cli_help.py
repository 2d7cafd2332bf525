"""What `drill … --help` shows: enum choices, the `<run-id>` placeholder, no install paths.

typer's markdown mode (lab/cli.py) treats a bare ``<run-id>`` as an HTML tag and drops it; a
plain ``str`` option showed ``<str>`` instead of its choices; a default computed from the
package's location showed this machine's install path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from typer.testing import CliRunner

from chaos.experiments import EXPERIMENTS
from lab.choices import GateChoice, Suite, TopologyChoice
from lab.cli import build_app, missing_extra_message
from lab.commands.chaos import SUITES, complete_experiment
from lab.commands.run import complete_scenario
from lab.criteria import Gate
from lab.stack.stack import Topology

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[4]


def _help(*command: str) -> str:
    result = runner.invoke(build_app(), [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        (("run",), "--gate", "<seed|project>"),
        (("report",), "--gate", "<seed|project>"),
        (("up",), "--topology", "<single|ha>"),
        (("chaos",), "--suite", "<chaos|dr>"),
    ],
)
def test_choice_options_list_their_choices(command: tuple[str, ...], option: str, choices: str) -> None:
    text = _help(*command)
    assert f"{option} {choices}" in text, text


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("report", ["report", "somewhere", "--gate", "strictest"]),
        ("up", ["up", "--topology", "mesh"]),
        ("chaos", ["chaos", "--suite", "weekly"]),
        ("run", ["run", "smoke", "--gate", "lenient"]),
    ],
)
def test_a_value_outside_the_choices_is_a_usage_error_naming_them(command: str, argv: list[str]) -> None:
    result = runner.invoke(build_app(), argv, env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "is not one of" in result.output, result.output


def test_the_enums_are_exactly_the_literals_the_code_takes() -> None:
    assert {g.value for g in GateChoice} == set(get_args(Gate))
    assert {t.value for t in TopologyChoice} == set(get_args(Topology))
    assert {s.value for s in Suite} == set(SUITES)


def test_report_help_shows_the_run_id_placeholder() -> None:
    text = _help("report")
    assert "reports/out/<run-id>" in text, text


def test_run_help_shows_the_run_id_placeholder() -> None:
    assert "reports/out/<run-id>/" in _help("run")


@pytest.mark.parametrize("command", ["run", "report", "chaos", "up", "down", "status"])
def test_no_shown_default_is_an_absolute_path(command: str) -> None:
    text = _help(command)
    assert str(ROOT) not in text, text
    assert "[default: /" not in text, text


def test_report_names_its_default_criteria_file() -> None:
    assert "lab/criteria.toml" in _help("report")


def test_scenarios_and_experiments_complete_in_the_shell() -> None:
    assert complete_scenario("sm") == ["smoke"]
    assert set(complete_scenario("")) >= {"smoke", "chaos", "dr"}
    assert complete_experiment("") == list(EXPERIMENTS)
    assert complete_experiment("worker-k") == ["worker-kill"]


def test_the_root_help_offers_shell_completion() -> None:
    assert "--install-completion" in _help()


def test_drill_without_the_lab_extra_says_how_to_install_it() -> None:
    """`pip install .` brings the `drill` script but not the harness's libraries."""
    script = (  # sys.modules[name] = None makes `import name` fail as if it were not installed
        "import sys; sys.modules['pandas'] = None; sys.argv = ['drill', '--help']; from lab.cli import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "'pandas' is missing" in done.stderr and "pip install '.[lab]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_module_of_our_own_is_not_blamed_on_the_extra() -> None:
    error = ModuleNotFoundError("No module named 'lab.nowhere'", name="lab.nowhere")
    assert missing_extra_message(error) is None
