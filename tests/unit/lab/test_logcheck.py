import json
from pathlib import Path

from lab.logcheck import check_logs, problem


def _line(**fields: object) -> str:
    return json.dumps({"timestamp": "2026-11-28T00:00:00Z", "level": "info", **fields})


def test_plain_and_job_lines() -> None:
    assert problem(_line(event="worker_started")) is None
    ok = _line(event="phase_finished", job_id="j", company_id="c", correlation_id="x", duration=1.5)
    assert problem(ok) is None
    assert "duration" in (problem(_line(event="phase_finished", job_id="j", company_id="c", correlation_id="x")) or "")
    assert "correlation_id" in (problem(_line(event="phase_started", job_id="j", company_id="c")) or "")
    assert "not JSON" in (problem("=== starting worker") or "")
    assert "lacks level" in (problem(json.dumps({"timestamp": "t", "event": "e"})) or "")


def test_counts_lines_and_keeps_examples(tmp_path: Path) -> None:
    log = tmp_path / "worker-1.log"
    log.write_text("\n".join([_line(event="a"), "garbage", "", _line(event="b"), "{}"]) + "\n")
    result = check_logs([log, tmp_path / "missing.log"])
    assert (result.files, result.lines, result.invalid) == (1, 4, 2)
    assert result.examples[0].startswith("worker-1.log:2")
