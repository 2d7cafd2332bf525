"""``drill run`` for real, as a person or CI runs it: a subprocess, real services, real Locust.

- the smoke scenario on a fresh local stack passes (exit 0), writes the whole run directory
  and its checker finds nothing lost or duplicated;
- the checker's self-test: a run whose products are deleted behind the importer's back fails
  (exit 1), here on the session's running stack (``--attach``) with Locust in distributed
  mode (a master and one worker process), so the same run also proves both of those;
- bad input is refused before anything starts;
- nothing the runs started is left running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lab.rundir import read_acknowledged
from lab.stack.info import load_info
from lab.stack.process import Identity, ManagedProcess
from lab.stack.stack import Stack
from tests.support.services import make_stack_root, remove_stack_root

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 170.0  # the smoke scenario takes about 30 s here, stack start included

RUN_FILES = (
    "run.json",
    "acknowledged.csv",
    "samples.csv",
    "checker.json",
    "criteria.json",
    "summary.json",
    "junit.xml",
    "report.html",
    "report.md",
    "plan.json",
    "locust.html",
    "locust.log",
    "locust_stats.csv",
    "locust_failures.csv",
    "locust_stats_history.csv",
    "charts/queue_depth.png",
    "charts/job_durations.png",
    "charts/workers.png",
    "stack/stack.json",
    "stack/logs/api.log",
)


@pytest.fixture
def out() -> Iterator[Path]:
    path = make_stack_root("drill-run-test-")  # PostgreSQL (another account) must enter <out>/<run>/stack
    try:
        yield path
    finally:
        remove_stack_root(path)


def drill(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "drill"
    argv = [str(script), *args] if script.exists() else [sys.executable, "-m", "lab.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def only_run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def leftovers(path: Path) -> list[str]:
    """Live processes that mention ``path`` on their command line or run inside it."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status", "pid"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
            if str(path) in cmdline or cwd.startswith(str(path)):
                found.append(f"{proc.info['pid']}: {cmdline[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def assert_nothing_left(out: Path, run_dir: Path) -> None:
    deadline = time.monotonic() + 10
    while leftovers(out) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftovers(out), leftovers(out)
    info = load_info(run_dir / "stack")
    if info is not None:
        alive = [r.name for r in info.processes if ManagedProcess.attach(r).identity() is Identity.ALIVE]
        assert not alive, f"still running: {alive}"


def test_smoke_run_passes_and_leaves_a_complete_run_directory(out: Path) -> None:
    began = time.monotonic()
    done = drill("run", "smoke", "--out", str(out), "--progress-interval", "3")
    elapsed = time.monotonic() - began
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert elapsed < 120, f"smoke took {elapsed:.0f}s; it must stay under 2 minutes"
    run_dir = only_run_dir(out)
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    assert not missing, f"missing {missing} in {sorted(p.name for p in run_dir.iterdir())}"
    assert f"report: {run_dir / 'report.html'}" in done.stdout or "report.html" in done.stdout
    assert "jobs 20/20 acked" in done.stderr, done.stderr  # the live progress line: stderr, as in drill chaos

    checker = json.loads((run_dir / "checker.json").read_text())["totals"]
    assert checker["acknowledged"] == 20 and checker["completed"] == 20
    assert checker["lost"] == 0 and checker["duplicated"] == 0 and checker["missing"] == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "PASS" and summary["exit_code"] == 0 and summary["kind"] == "smoke"
    jobs = read_acknowledged(run_dir)
    assert len(jobs) == 20 and all(j.final_status == "COMPLETED" for j in jobs)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["ended_at"] and run["machine"]["cores"] and "workers" in run["stack"]
    assert "(redacted)" in (run_dir / "plan.json").read_text(), "API keys must not stay in the run directory"
    assert not (run_dir / "stack" / "postgres").exists(), "the stack's data goes, its logs stay"
    assert_nothing_left(out, run_dir)


def test_sabotage_fails_the_run_attached_and_distributed(out: Path, stack: Stack) -> None:
    processes_before = {p.name for p in (load_info(stack.dir.path) or stack.info).processes}
    done = drill(
        "run",
        "smoke",
        "--attach",
        "--run-dir",
        str(stack.dir.path),
        "--out",
        str(out),
        "--locust-workers",
        "1",
        "--sabotage",
        "delete-products=3",
    )
    assert done.returncode == 1, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    run_dir = only_run_dir(out)
    checker = json.loads((run_dir / "checker.json").read_text())["totals"]
    assert checker["products_missing"] == 3, checker
    assert checker["lost"] == 0, "the jobs themselves all ended"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "FAIL" and "P4" in summary["reason"]
    assert "sabotage" in json.loads((run_dir / "run.json").read_text())["stack"]

    # Distributed mode: a master and one worker process ran the smoke scenario's 20 clients.
    assert (run_dir / "locust-worker-1.log").is_file()
    assert "Got quit message from master" in (run_dir / "locust-worker-1.log").read_text()
    assert len(read_acknowledged(run_dir)) == 20

    # The session stack had no worker: the autoscaler topped it up to the scenario's minimum,
    # recorded the workers in the stack's stack.json, and stopped them at the end.
    info = load_info(stack.dir.path)
    assert info is not None
    added = [r for r in info.processes if r.name not in processes_before and r.role == "worker"]
    assert added, "the attached run should have started a worker"
    assert all(ManagedProcess.attach(r).identity() is not Identity.ALIVE for r in added)
    assert all(ManagedProcess.attach(r).identity() is Identity.ALIVE for r in info.processes if r.name == "api")
    assert not leftovers(out)


def test_bad_input_is_refused_before_anything_starts(out: Path) -> None:
    unknown = drill("run", "no-such-scenario", "--out", str(out), timeout=60)
    assert unknown.returncode == 2
    assert "unknown scenario 'no-such-scenario'; known scenarios:" in unknown.stderr

    nothing = drill("run", "smoke", "--attach", "--run-dir", str(out / "none"), "--out", str(out), timeout=60)
    assert nothing.returncode == 2
    assert "no stack is recorded" in nothing.stderr and "drill up" in nothing.stderr

    sabotage = drill("run", "smoke", "--sabotage", "drop-tables=1", "--out", str(out), timeout=60)
    assert sabotage.returncode == 2 and "--sabotage takes KIND=N" in sabotage.stderr
    assert not any(out.iterdir()), "a refused run must not leave a run directory"
