"""The runner's promises: rollbacks always run, the journal always says what happened."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chaos.journal import Journal, read_journal
from chaos.model import Experiment, action, at_least, probe
from chaos.runner import run_experiment


class Calls:
    def __init__(self) -> None:
        self.log: list[str] = []

    def step(self, name: str, result: object = None, error: Exception | None = None):  # type: ignore[no-untyped-def]
        async def run() -> object:
            self.log.append(name)
            if error is not None:
                raise error
            return result

        return run


def experiment(calls: Calls, *, method_error: Exception | None = None, steady: int = 3) -> Experiment:
    return Experiment(
        name="demo",
        title="demo",
        description="",
        hypothesis=[probe("workers", calls.step("probe", steady), at_least(2))],
        method=[
            action("inject", calls.step("inject", "done"), timeout=5),
            action("explode", calls.step("explode", error=method_error), timeout=5),
            action("never reached after an explosion", calls.step("after"), timeout=5),
        ],
        rollbacks=[
            action("undo 1", calls.step("undo 1", error=RuntimeError("rollback 1 broke")), timeout=5),
            action("undo 2", calls.step("undo 2", "healed"), timeout=5),
        ],
    )


async def test_a_clean_run_checks_the_hypothesis_twice_and_rolls_back(tmp_path: Path) -> None:
    calls = Calls()
    journal = await run_experiment(experiment(calls), Journal(experiment="demo", title="demo"), run_dir=tmp_path)
    assert calls.log == ["probe", "inject", "explode", "after", "probe", "undo 1", "undo 2"]
    assert journal.status == "completed" and not journal.deviated
    assert [r.status for r in journal.rollbacks] == ["failed", "succeeded"]
    assert journal.rollbacks[0].error == "RuntimeError: rollback 1 broke"
    written = read_journal(tmp_path / "journal-demo-1.json")
    assert written.status == "completed" and written.method[0].output == "done"


async def test_rollbacks_run_when_an_action_raises(tmp_path: Path) -> None:
    calls = Calls()
    journal = await run_experiment(
        experiment(calls, method_error=ValueError("proxy API down")),
        Journal(experiment="demo", title="demo"),
        run_dir=tmp_path,
    )
    assert calls.log == ["probe", "inject", "explode", "undo 1", "undo 2"]
    assert journal.status == "aborted"
    assert "explode" in journal.reason and "ValueError: proxy API down" in journal.reason
    assert journal.steady_state_after is None
    assert [r.name for r in journal.rollbacks] == ["undo 1", "undo 2"]
    assert read_journal(tmp_path / "journal-demo-1.json").status == "aborted"


async def test_no_fault_is_injected_into_a_system_not_in_its_steady_state() -> None:
    calls = Calls()
    journal = await run_experiment(experiment(calls, steady=1), Journal(experiment="demo", title="demo"))
    assert calls.log == ["probe", "undo 1", "undo 2"]
    assert journal.status == "failed" and journal.steady_state_before is not None
    assert journal.steady_state_before.probes[0].tolerance_met is False


async def test_an_action_that_hangs_times_out_and_the_rollbacks_still_run() -> None:
    calls = Calls()

    async def hang() -> None:
        calls.log.append("hang")
        await asyncio.sleep(3600)

    exp = experiment(calls)
    exp.method = [action("hang", hang, timeout=0.2)]
    journal = await run_experiment(exp, Journal(experiment="demo", title="demo"))
    assert journal.status == "aborted" and journal.method[0].error == "timed out after 0.2s"
    assert calls.log[-2:] == ["undo 1", "undo 2"]


async def test_rollbacks_run_when_the_run_is_cancelled(tmp_path: Path) -> None:
    calls = Calls()
    started = asyncio.Event()

    async def long_fault() -> None:
        started.set()
        await asyncio.sleep(3600)

    exp = experiment(calls)
    exp.method = [action("long fault", long_fault, timeout=3600)]
    task = asyncio.create_task(run_experiment(exp, Journal(experiment="demo", title="demo"), run_dir=tmp_path))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.log[-2:] == ["undo 1", "undo 2"]
    written = read_journal(tmp_path / "journal-demo-1.json")
    assert written.status == "interrupted" and len(written.rollbacks) == 2
