"""stack.json: written atomically and privately, read back identical, damaged files named."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab.stack.errors import RunDirError
from lab.stack.info import StackInfo, load_info, save_info, stack_json_path
from lab.stack.process import ProcessRecord


def record(name: str, pid: int, layer: int = 0) -> ProcessRecord:
    return ProcessRecord(
        name=name,
        role=name,
        layer=layer,
        pid=pid,
        create_time=1_700_000_000.25,
        log_path=f"/tmp/logs/{name}.log",
        argv=[name, "--flag"],
        user="root",
        stop_signal="SIGINT",
        stop_timeout=60.0,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    info = StackInfo(
        run_dir=str(tmp_path),
        state="running",
        api_url="http://127.0.0.1:20001",
        operator_token="tok",
        database_url="postgresql://importer:pw@127.0.0.1:20002/importer",
        redis_url="redis://127.0.0.1:20003/0",
        s3_endpoint="http://127.0.0.1:20004",
        s3_bucket="product-images",
        provider_url="http://127.0.0.1:20005",
        env_overrides={"IMPORTER_LEASE_SECONDS": "5"},
        importer_env={"IMPORTER_OPERATOR_TOKEN": "tok"},
        paths=["postgres", "redis"],
        processes=[record("postgres", 100), record("api", 101, layer=2)],
    )
    path = save_info(tmp_path, info)
    assert path == stack_json_path(tmp_path)
    loaded = load_info(tmp_path)
    assert loaded is not None
    assert loaded.model_dump(exclude={"updated_at"}) == info.model_dump(exclude={"updated_at"})
    assert loaded.updated_at >= info.updated_at
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "stack.json holds passwords"
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file is renamed away"


def test_with_process_replaces_by_name_and_appends_new_names(tmp_path: Path) -> None:
    info = StackInfo(run_dir=str(tmp_path), processes=[record("postgres", 1), record("redis", 2)])
    restarted = info.with_process(record("postgres", 9))
    assert [(p.name, p.pid) for p in restarted.processes] == [("postgres", 9), ("redis", 2)]
    grown = restarted.with_process(record("worker-1", 3, layer=2))
    assert [p.name for p in grown.processes] == ["postgres", "redis", "worker-1"]
    assert grown.process("redis") is not None and grown.process("nope") is None
    assert [p.pid for p in info.processes] == [1, 2], "the original is unchanged"


def test_missing_file_means_no_stack(tmp_path: Path) -> None:
    assert load_info(tmp_path) is None


def test_damaged_or_foreign_files_are_named(tmp_path: Path) -> None:
    path = stack_json_path(tmp_path)
    path.write_text("{not json")
    with pytest.raises(RunDirError, match="not JSON"):
        load_info(tmp_path)
    path.write_text(json.dumps({"schema_version": 99, "run_dir": "x"}))
    with pytest.raises(RunDirError, match="schema_version 99"):
        load_info(tmp_path)
    path.write_text(json.dumps({"schema_version": 1, "run_dir": "x", "state": "exploded"}))
    with pytest.raises(RunDirError, match=r"stack\.json"):
        load_info(tmp_path)
