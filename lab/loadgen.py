"""Locust as drill runs it: its own processes, its own command line, never imported here.

Locust monkey-patches the standard library with gevent when imported, and the proving ground
is asyncio (redis, asyncpg, moto): the two cannot share a process (docs/architecture.md §9). So drill
starts ``locust -f loadtests/locustfile.py --headless ...`` as subprocesses — one local
process, or a master plus N workers (``--master``/``--worker``, bound to loopback) — each in
its own session with its output in the run directory, and stops them (SIGTERM, then SIGKILL
of the whole group) however the run ends.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.stack.binaries import find_console_script
from lab.stack.component import base_environment
from lab.stack.ports import PortAllocator
from lab.stack.process import ManagedProcess, StopOutcome
from loadtests.plan import PLAN_ENV, RECORDS_ENV, require_loopback

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
LOCUST_LOG = "locust.log"
LOCUST_CSV_PREFIX = "locust"  # → locust_stats.csv, locust_stats_history.csv, locust_failures.csv, ...
LOCUST_HTML = "locust.html"
STOP_TIMEOUT = 20.0
EXIT_OK = (0, 1)  # 1: some requests failed; the criteria, not Locust, judge that


class LoadGeneratorError(Exception):
    """Locust could not be started, or ended in a way that means the load did not run."""


@dataclass(frozen=True)
class LocustSettings:
    host: str
    users: int
    spawn_rate: float
    run_time_s: int
    plan_path: Path
    records_dir: Path
    run_dir: Path
    workers: int = 0  # 0: one local process; N: a master and N workers
    locustfile: Path = LOCUSTFILE

    def __post_init__(self) -> None:
        require_loopback(self.host)
        if self.users < 1 or self.spawn_rate <= 0 or self.run_time_s < 1 or self.workers < 0:
            raise ValueError(f"invalid Locust settings: {self}")


def locust_command() -> list[str]:
    script = find_console_script("locust")
    return [str(script)] if script is not None else [sys.executable, "-m", "locust"]


def locust_argv(settings: LocustSettings, role: str, master_port: int | None = None) -> list[str]:
    """The command line of one Locust process; ``role`` is local, master or worker."""
    base = [*locust_command(), "-f", str(settings.locustfile), "--loglevel", "INFO"]
    if role == "worker":
        if master_port is None:
            raise ValueError("a worker needs the master's port")
        return [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    argv = [
        *base,
        "--headless",
        "--host",
        settings.host,
        "--users",
        str(settings.users),
        "--spawn-rate",
        f"{settings.spawn_rate:g}",
        "--run-time",
        f"{settings.run_time_s}s",
        "--csv",
        str(settings.run_dir / LOCUST_CSV_PREFIX),
        "--html",
        str(settings.run_dir / LOCUST_HTML),
        "--only-summary",
    ]
    if role == "master":
        if master_port is None:
            raise ValueError("a master needs a port to bind")
        argv += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(settings.workers),
            "--expect-workers-max-wait",
            "60",
        ]
    elif role != "local":
        raise ValueError(f"unknown Locust role {role!r}")
    return argv


def locust_environment(settings: LocustSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(base_environment() if base is None else base)
    env[PLAN_ENV] = str(settings.plan_path)
    env[RECORDS_ENV] = str(settings.records_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class LocustRun:
    """The Locust processes of one run: started together, waited for, stopped without leftovers."""

    def __init__(self, settings: LocustSettings, ports: PortAllocator | None = None) -> None:
        self.settings = settings
        self.ports = ports or PortAllocator()
        self.main: ManagedProcess | None = None  # the local process, or the master
        self.workers: list[ManagedProcess] = []

    @property
    def processes(self) -> list[ManagedProcess]:
        return [p for p in (self.main, *self.workers) if p is not None]

    def start(self) -> None:
        s = self.settings
        env = locust_environment(s)
        cwd = s.run_dir
        if s.workers == 0:
            self.main = self._spawn("locust", locust_argv(s, "local"), env, cwd, s.run_dir / LOCUST_LOG)
            return
        port = self.ports.allocate()
        self.main = self._spawn("locust-master", locust_argv(s, "master", port), env, cwd, s.run_dir / LOCUST_LOG)
        for number in range(1, s.workers + 1):
            log_path = s.run_dir / f"locust-worker-{number}.log"
            self.workers.append(
                self._spawn(f"locust-worker-{number}", locust_argv(s, "worker", port), env, cwd, log_path)
            )

    @staticmethod
    def _spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> ManagedProcess:
        try:
            return ManagedProcess.spawn(
                name, argv, log_path=log_path, role="locust", env=env, cwd=cwd, stop_timeout=STOP_TIMEOUT
            )
        except OSError as exc:
            raise LoadGeneratorError(f"cannot start {name} ({argv[0]}): {exc}") from exc

    def running(self) -> bool:
        return self.main is not None and self.main.is_alive()

    @property
    def returncode(self) -> int | None:
        return None if self.main is None else self.main.returncode

    def wait(self, timeout: float) -> int | None:
        """The main process's exit code once it ended, or None if it still runs after ``timeout``."""
        if self.main is None:
            return None
        if not self.main.wait(timeout):
            return None
        for worker in self.workers:  # the master told them to quit; give them a moment
            worker.wait(10.0)
        return self.main.returncode

    def stop(self) -> dict[str, StopOutcome]:
        """SIGTERM (Locust writes its stats and exits), SIGKILL of the group after the timeout."""
        outcomes: dict[str, StopOutcome] = {}
        for process in [*self.workers, *([self.main] if self.main else [])]:
            outcomes[process.name] = process.stop(signal.SIGTERM, STOP_TIMEOUT)
        return outcomes

    def log_tail(self, max_chars: int = 3000) -> str:
        return self.main.log_tail(max_chars) if self.main is not None else ""


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
    return {0: "finished", 1: "finished (some requests failed)", 2: "refused to start"}.get(code, f"exit code {code}")
