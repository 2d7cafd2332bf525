"""A run directory is reused only when its stack is dead, and only what that stack created is wiped."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from lab.stack.errors import RunDirError, StackAlreadyRunningError
from lab.stack.info import StackInfo, save_info
from lab.stack.process import ProcessRecord
from lab.stack.stackdir import StackDir


def record_of(pid: int, create_time: float) -> ProcessRecord:
    return ProcessRecord(
        name="api",
        role="api",
        pid=pid,
        create_time=create_time,
        log_path="/dev/null",
        argv=["importer", "api"],
        user="root",
        started_at=datetime.now(UTC),
    )


def test_new_directory_is_created_enterable(tmp_path: Path) -> None:
    run_dir = StackDir(tmp_path / "fresh")
    run_dir.prepare_fresh()
    assert run_dir.path.is_dir()
    assert run_dir.path.stat().st_mode & 0o005 == 0o005, "the postgres account must be able to enter it"


def test_foreign_content_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("do not delete")
    with pytest.raises(RunDirError, match="not empty"):
        StackDir(tmp_path).prepare_fresh()
    assert (tmp_path / "thesis.tex").exists()


def test_dead_stack_is_wiped_but_only_what_it_created(tmp_path: Path) -> None:
    for name in ("postgres", "redis", "logs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    dead = record_of(pid=2**22 + 12345, create_time=1.0)  # beyond pid_max: certainly not running
    save_info(tmp_path, StackInfo(run_dir=str(tmp_path), paths=["postgres", "redis"], processes=[dead]))
    StackDir(tmp_path).prepare_fresh()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_live_stack_is_refused(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    alive = record_of(pid=me.pid, create_time=me.create_time())
    save_info(tmp_path, StackInfo(run_dir=str(tmp_path), api_url="http://127.0.0.1:1", processes=[alive]))
    with pytest.raises(StackAlreadyRunningError, match="already running"):
        StackDir(tmp_path).prepare_fresh()
    assert (tmp_path / "stack.json").exists()


def test_a_recycled_pid_does_not_count_as_a_live_stack(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    recycled = record_of(pid=me.pid, create_time=me.create_time() - 3600)
    save_info(tmp_path, StackInfo(run_dir=str(tmp_path), processes=[recycled]))
    StackDir(tmp_path).prepare_fresh()
    assert not (tmp_path / "stack.json").exists()


def test_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = StackDir(tmp_path), StackDir(tmp_path)
    with first.locked(), pytest.raises(StackAlreadyRunningError, match="another drill command"), second.locked():
        pass
    with second.locked():
        pass
