"""The live progress line, the Locust command lines drill builds, and the sabotage option."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lab.loadgen import LocustSettings, describe_exit, locust_argv, locust_environment
from lab.progress import Progress, ProgressLog, format_elapsed, format_progress, last_sample, sample_int
from lab.sabotage import Sabotage, SabotageError, parse_sabotage
from loadtests.plan import PLAN_ENV, RECORDS_ENV, NotLoopbackError


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (5.9, "5s"), (65, "1m05s"), (3600, "60m00s"), (-3, "0s")])
def test_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_progress_line_is_one_short_line_with_every_figure() -> None:
    line = format_progress(
        Progress(
            elapsed_s=65,
            phase="load",
            planned=1000,
            acknowledged=512,
            completed=120,
            failed=0,
            waiting=380,
            active=30,
            deferred=2,
            workers=6,
        )
    )
    assert line == (
        "load   jobs 512/1,000 acked, 120 completed, 0 failed | queue 380 waiting, 30 active, 2 deferred | 6 workers"
    )
    assert "\n" not in line and len(line) < 120


def test_every_progress_line_is_stamped_alike_and_goes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``drill run`` and ``drill chaos`` write through the same ProgressLog: one format, stderr."""
    from chaos.progress import Progress as ChaosProgress

    assert ChaosProgress is ProgressLog
    clock = iter([100.0, 165.0, 170.0])
    monkeypatch.setattr("lab.progress.time.monotonic", lambda: next(clock))
    log = ProgressLog()
    log("stack up in 4.2s")
    log.context, log.phase = "redis-failover #1/3", "method"
    log("primary killed")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "[ 1m05s] stack up in 4.2s",
        "[ 1m10s] redis-failover #1/3 method: primary killed",
    ]


def test_a_quiet_log_writes_nothing() -> None:
    stream = io.StringIO()
    ProgressLog(stream, quiet=True)("anything")
    assert stream.getvalue() == ""


def test_unknown_figures_show_as_question_marks_not_zeros() -> None:
    line = format_progress(Progress(elapsed_s=1, phase="drain", planned=20, acknowledged=20))
    assert "? completed, ? failed | queue ? waiting, ? active, ? deferred | ? workers" in line


def test_last_sample_reads_the_newest_complete_row(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    assert last_sample(path) is None
    path.write_text("at,waiting,jobs_completed\n")
    assert last_sample(path) is None
    path.write_text("at,waiting,jobs_completed\nt1,5,1\nt2,,7\nt3,9")  # t3 is being written
    row = last_sample(path)
    assert row == {"at": "t2", "waiting": "", "jobs_completed": "7"}
    assert sample_int(row, "jobs_completed") == 7
    assert sample_int(row, "waiting") is None, "an empty cell is 'not observed'"
    assert sample_int(None, "waiting") is None


def settings(tmp_path: Path, **overrides: object) -> LocustSettings:
    fields: dict[str, object] = {
        "host": "http://127.0.0.1:8000",
        "users": 20,
        "spawn_rate": 20.0,
        "run_time_s": 60,
        "plan_path": tmp_path / "plan.json",
        "records_dir": tmp_path / "records",
        "run_dir": tmp_path,
    }
    fields.update(overrides)
    return LocustSettings(**fields)  # type: ignore[arg-type]


def test_local_locust_is_headless_bounded_and_writes_into_the_run_directory(tmp_path: Path) -> None:
    argv = locust_argv(settings(tmp_path), "local")
    joined = " ".join(argv)
    for part in ("--headless", "--users 20", "--spawn-rate 20", "--run-time 60s", f"--csv {tmp_path}/locust"):
        assert part in joined
    assert f"--html {tmp_path}/locust.html" in joined
    assert "--master" not in argv and "--worker" not in argv


def test_distributed_locust_binds_and_connects_on_loopback(tmp_path: Path) -> None:
    s = settings(tmp_path, workers=2)
    master = " ".join(locust_argv(s, "master", 5557))
    assert "--master --master-bind-host 127.0.0.1 --master-bind-port 5557 --expect-workers 2" in master
    worker = locust_argv(s, "worker", 5557)
    assert "--worker" in worker and "--headless" not in worker
    assert worker[worker.index("--master-host") + 1] == "127.0.0.1"
    with pytest.raises(ValueError):
        locust_argv(s, "worker")
    with pytest.raises(ValueError):
        locust_argv(s, "boss", 1)


def test_locust_gets_the_plan_through_its_environment(tmp_path: Path) -> None:
    env = locust_environment(settings(tmp_path), base={"PATH": "/bin", "IMPORTER_X": "leak?"})
    assert env[PLAN_ENV] == str(tmp_path / "plan.json") and env[RECORDS_ENV] == str(tmp_path / "records")
    assert env["PATH"] == "/bin"


def test_locust_refuses_a_remote_host(tmp_path: Path) -> None:
    with pytest.raises(NotLoopbackError):
        settings(tmp_path, host="http://203.0.113.9:80")


def test_exit_codes_are_described() -> None:
    assert describe_exit(0) == "finished"
    assert describe_exit(2) == "refused to start"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(None) == "still running"


def test_sabotage_option() -> None:
    assert parse_sabotage("delete-products=5") == Sabotage("delete-products", 5)
    assert str(parse_sabotage(" delete-products = 12 ")) == "delete-products=12"
    for bad in ("delete-products", "delete-products=0", "drop-tables=1", "delete-products=-1"):
        with pytest.raises(SabotageError):
            parse_sabotage(bad)
