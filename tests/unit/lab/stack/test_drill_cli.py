"""The drill CLI's shape: commands registered from lab/commands, and a safe down/status without a stack."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
from typer.testing import CliRunner

from lab.cli import build_app, command_modules
from lab.stack.info import StackInfo, load_info, save_info
from lab.stack.process import ManagedProcess

runner = CliRunner()


def test_commands_are_collected_from_their_modules() -> None:
    assert "lab.commands.stack" in command_modules()
    result = runner.invoke(build_app(), ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("up", "down", "status", "report"):
        assert command in result.output


def test_each_stack_command_explains_itself() -> None:
    app = build_app()
    for command, words in (("up", "--workers"), ("down", "recycled"), ("status", "alive")):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert words in " ".join(result.output.split()), result.output


def test_down_without_a_stack_is_a_no_op(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["down", "--run-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "nothing to stop" in result.output
    assert not (tmp_path / "none").exists(), "down must not create the directory"


def test_status_without_a_stack_fails(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["status", "--run-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no stack" in result.output


def test_up_rejects_malformed_env(tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["up", "--run-dir", str(tmp_path), "--env", "NOEQUALS"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_down_stops_its_own_process_and_leaves_a_recycled_pid_alone(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    ours = ManagedProcess.spawn("worker-1", ["sleep", "60"], log_path=tmp_path / "logs" / "worker-1.log", layer=2)
    try:
        # A record whose pid is this very test process, started "an hour earlier": a recycled pid.
        recycled = ours.record.model_copy(update={"name": "api", "pid": me.pid, "create_time": me.create_time() - 3600})
        save_info(tmp_path, StackInfo(run_dir=str(tmp_path), state="running", processes=[recycled, ours.record]))

        status = runner.invoke(build_app(), ["status", "--run-dir", str(tmp_path)])
        assert status.exit_code == 1 and "dead*" in status.output, status.output

        down = runner.invoke(build_app(), ["down", "--run-dir", str(tmp_path)])
        assert down.exit_code == 0, down.output
        assert f"left alone: pid {me.pid} now belongs to another process" in down.output
        assert "worker-1     stopped" in down.output
        assert ours.wait(5) and ours.returncode == -signal.SIGTERM
        info = load_info(tmp_path)
        assert info is not None and info.state == "stopped"

        again = runner.invoke(build_app(), ["down", "--run-dir", str(tmp_path)])
        assert again.exit_code == 0 and "nothing to stop" in again.output
    finally:
        ours.kill_group(signal.SIGKILL)
        ours.wait(5)
