"""A process is identified by pid *and* create time: a recycled pid is never signalled."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lab.stack.process import Identity, ManagedProcess, StopOutcome, find_recorded, identify, same_process

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', 6 * 7, flush=True); time.sleep(60)"
)
# A parent that leaves a grandchild behind in its process group when it is killed.
WITH_CHILD = 'sleep 60 & echo "child pid $!"; wait'


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """Whatever a test spawns is SIGKILLed afterwards, whatever the test did."""
    processes: list[ManagedProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.kill_group(signal.SIGKILL)
            process.wait(5)


def spawn(spawned: list[ManagedProcess], tmp_path: Path, name: str, argv: list[str]) -> ManagedProcess:
    process = ManagedProcess.spawn(name, argv, log_path=tmp_path / f"{name}.log", stop_timeout=5.0)
    spawned.append(process)
    return process


def wait_for_log(process: ManagedProcess, pattern: str, timeout: float = 10.0) -> re.Match[str]:
    """The process's own output (never the argv echoed in the log's header line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, process.log_tail())
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {process.log_path}: {process.log_tail()}")


def test_same_process_tolerates_only_float_noise() -> None:
    assert same_process(1000.25, 1000.25)
    assert same_process(1000.25, 1000.255)
    assert not same_process(1000.25, 1001.25)


def test_a_recorded_pid_with_another_create_time_is_refused(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    real = spawn(spawned, tmp_path, "sleeper", ["sleep", "60"])
    assert real.is_alive()
    # What stack.json would say if the pid had been recycled: same pid, older create time.
    recycled = real.record.model_copy(update={"create_time": real.record.create_time - 3600})
    impostor = ManagedProcess.attach(recycled)
    assert find_recorded(recycled.pid, recycled.create_time) is None
    assert not impostor.is_alive()
    assert impostor.kill(signal.SIGKILL) is False
    assert impostor.stop(timeout=1.0) is StopOutcome.NOT_RUNNING
    assert impostor.group_members() == []
    assert real.is_alive(), "the process that owns the pid now must not have been touched"

    genuine = ManagedProcess.attach(real.record)
    assert genuine.is_alive()
    assert genuine.stop(timeout=5.0) is StopOutcome.STOPPED
    assert real.wait(5)


def test_stop_of_an_exited_process_is_harmless(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    done = spawn(spawned, tmp_path, "true", ["true"])
    assert done.wait(5)
    assert not done.is_alive()
    assert done.stop(timeout=1.0) is StopOutcome.NOT_RUNNING
    assert ManagedProcess.attach(done.record).stop(timeout=1.0) is StopOutcome.NOT_RUNNING


def test_stop_escalates_to_sigkill(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    stubborn = spawn(spawned, tmp_path, "stubborn", [sys.executable, "-c", IGNORES_SIGTERM])
    wait_for_log(stubborn, r"ready 42")
    started = time.monotonic()
    assert stubborn.stop(signal.SIGTERM, timeout=0.5) is StopOutcome.KILLED
    assert time.monotonic() - started < 10
    assert not stubborn.is_alive()
    assert stubborn.returncode == -signal.SIGKILL


def test_stop_leaves_nothing_of_the_process_group(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    parent = spawn(spawned, tmp_path, "parent", ["sh", "-c", WITH_CHILD])
    child_pid = int(wait_for_log(parent, r"child pid (\d+)").group(1))
    assert os.getpgid(child_pid) == parent.pid, "children share the session's process group"
    assert {p.pid for p in parent.group_members()} == {parent.pid, child_pid}

    parent.stop(signal.SIGTERM, timeout=2.0)
    assert not parent.is_alive()
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert parent.group_members() == []


def test_attached_process_is_stopped_without_being_our_child(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    owner = spawn(spawned, tmp_path, "sleeper", ["sleep", "60"])
    attached = ManagedProcess.attach(owner.record)
    assert not attached.is_child and attached.returncode is None
    assert attached.stop(timeout=5.0) is StopOutcome.STOPPED
    assert owner.wait(5) and owner.returncode == -signal.SIGTERM


def test_log_captures_output_and_marks_each_start(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    first = spawn(spawned, tmp_path, "echo", ["sh", "-c", "echo one; echo two >&2"])
    first.wait(5)
    lines = first.log_path.read_text().splitlines()
    marker = json.loads(lines[0])
    assert marker["event"] == "process_started" and marker["process"] == "echo"
    assert {"timestamp", "level", "event"} <= marker.keys(), "the marker is a log line like the importer's"
    assert lines[1:] == ["one", "two"]
    second = ManagedProcess.spawn("echo", ["echo", "three"], log_path=first.log_path)
    spawned.append(second)
    second.wait(5)
    assert first.log_path.read_text().count('"process_started"') == 2, "restarts append to the same log"


def test_identity_tells_exited_from_recycled(tmp_path: Path, spawned: list[ManagedProcess]) -> None:
    sleeper = spawn(spawned, tmp_path, "sleeper", ["sleep", "60"])
    record = sleeper.record
    assert identify(record.pid, record.create_time) is Identity.ALIVE
    assert identify(record.pid, record.create_time - 3600) is Identity.RECYCLED
    sleeper.stop(timeout=5)
    assert identify(record.pid, record.create_time) is Identity.GONE
    assert sleeper.identity() is Identity.GONE
