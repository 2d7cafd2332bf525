"""One process the stack started, identified by pid *and* create time.

A pid alone is not an identity: after a reboot or a long run the kernel hands the same pid
to an unrelated process, and ``drill down`` must never signal that one. Every signal goes
through :meth:`ManagedProcess.verified`, which compares the process's create time with the
one recorded at start.

Every process gets its own session (``start_new_session``): Ctrl-C in the terminal that ran
``drill up`` does not reach it, it outlives ``drill up``, and its whole process group (a
postmaster's backends, Redis's AOF-rewrite child) can be cleaned up when the leader is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

from lab.stack.accounts import ServiceAccount

# psutil derives create time from boot time + start ticks: identical on every read of the
# same process, so the tolerance only absorbs float formatting through JSON.
CREATE_TIME_TOLERANCE = 0.01
KILL_WAIT_SECONDS = 5.0
LOG_TAIL_CHARS = 4000


class StopOutcome(StrEnum):
    NOT_RUNNING = "not running"  # already gone, or the pid now belongs to someone else
    STOPPED = "stopped"  # exited after the stop signal
    KILLED = "killed"  # needed SIGKILL
    STUCK = "stuck"  # survived SIGKILL for KILL_WAIT_SECONDS (uninterruptible sleep)
    FAILED = "failed"  # stopping raised (e.g. permission denied); the error is reported


class ProcessRecord(BaseModel):
    """What stack.json remembers of a process: enough to find it again, and only it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: str
    layer: int = 0
    pid: int
    create_time: float
    log_path: str
    argv: list[str]
    user: str
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 15.0
    started_at: datetime


def log_marker(event: str, **fields: object) -> bytes:
    """A line the stack writes into a process's log (a start, a restart, initdb).

    JSON with the importer's own log fields, so the rule "every line of an importer log is
    a JSON object with timestamp, level and event" holds for the whole file.
    """
    record: dict[str, object] = {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "info",
        "event": event,
        "logger": "lab.stack",
    }
    record.update(fields)
    return (json.dumps(record) + "\n").encode()


def signal_by_name(name: str) -> signal.Signals:
    try:
        return signal.Signals[name]
    except KeyError as exc:
        raise ValueError(f"unknown signal {name!r}") from exc


def same_process(recorded_create_time: float, actual_create_time: float) -> bool:
    return abs(recorded_create_time - actual_create_time) <= CREATE_TIME_TOLERANCE


def find_recorded(pid: int, create_time: float) -> psutil.Process | None:
    """The live process with this pid *and* create time, or None (gone, or pid recycled)."""
    try:
        proc = psutil.Process(pid)
        actual = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return proc if same_process(create_time, actual) else None


class Identity(StrEnum):
    ALIVE = "alive"  # the very process that was started, running
    GONE = "gone"  # exited (or a zombie nobody reaped yet)
    RECYCLED = "recycled"  # the pid now belongs to a different process


def identify(pid: int, create_time: float) -> Identity:
    """What became of a recorded process, telling "exited" apart from "pid reused"."""
    try:
        proc = psutil.Process(pid)
        actual = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return Identity.GONE
    except psutil.AccessDenied:
        return Identity.RECYCLED  # not ours to inspect, so certainly not ours to signal
    if not same_process(create_time, actual):
        return Identity.RECYCLED
    return Identity.GONE if _is_zombie(proc) else Identity.ALIVE


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return True


class ManagedProcess:
    """A process started by the stack (``spawn``) or found again from stack.json (``attach``)."""

    def __init__(self, record: ProcessRecord, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.record = record
        self._popen = popen

    # --- creation -----------------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        role: str | None = None,
        layer: int = 0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        account: ServiceAccount | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = 15.0,
    ) -> ManagedProcess:
        """Start ``argv`` in its own session, output appended to ``log_path``."""
        account = account or ServiceAccount.current()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ if env is None else env)
        if not account.is_current:
            environment.update(account.environment())
        with log_path.open("ab") as log:
            log.write(log_marker("process_started", process=name, argv=list(argv)))
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=environment,
                start_new_session=True,
                close_fds=True,
                **account.popen_kwargs(),
            )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:
            # Exited (and was reaped) before we could look: keep the pid; nothing to signal later.
            create_time = 0.0
        record = ProcessRecord(
            name=name,
            role=role or name,
            layer=layer,
            pid=popen.pid,
            create_time=create_time,
            log_path=str(log_path),
            argv=list(argv),
            user=account.name,
            stop_signal=stop_signal.name,
            stop_timeout=stop_timeout,
            started_at=datetime.now(UTC),
        )
        return cls(record, popen)

    @classmethod
    def attach(cls, record: ProcessRecord) -> ManagedProcess:
        """A process from stack.json; it may be long gone or its pid reused, which is checked per call."""
        return cls(record, None)

    # --- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def pid(self) -> int:
        return self.record.pid

    @property
    def log_path(self) -> Path:
        return Path(self.record.log_path)

    @property
    def is_child(self) -> bool:
        return self._popen is not None

    def verified(self) -> psutil.Process | None:
        """The process if it still is the one we started (same pid and create time), else None."""
        if self._popen is not None and self._popen.poll() is not None:
            return None
        proc = find_recorded(self.record.pid, self.record.create_time)
        if proc is None or _is_zombie(proc):
            return None
        return proc

    def is_alive(self) -> bool:
        return self.verified() is not None

    def identity(self) -> Identity:
        if self._popen is not None and self._popen.poll() is not None:
            return Identity.GONE
        return identify(self.record.pid, self.record.create_time)

    @property
    def returncode(self) -> int | None:
        """Exit code, known only for our own children; None while running or when attached."""
        return None if self._popen is None else self._popen.poll()

    # --- signals ------------------------------------------------------------------------------

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> bool:
        """Send ``sig`` to the process itself; False when it is gone (nothing was signalled)."""
        proc = self.verified()
        if proc is None:
            return False
        try:
            proc.send_signal(sig)  # psutil re-checks the create time right before signalling
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        return True

    def group_members(self) -> list[psutil.Process]:
        """Live processes of this process's group (its session), the leader included if alive.

        The group id is the leader's pid. When that pid now belongs to another process the
        group is that process's, and nothing is returned.
        """
        leader_pid = self.record.pid
        try:
            holder = psutil.Process(leader_pid)
            if not same_process(self.record.create_time, holder.create_time()):
                return []
        except psutil.NoSuchProcess:
            pass
        except (psutil.ZombieProcess, psutil.AccessDenied):
            return []
        members: list[psutil.Process] = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) != leader_pid:
                    continue
                if proc.create_time() + CREATE_TIME_TOLERANCE < self.record.create_time:
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
            except (ProcessLookupError, psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            members.append(proc)
        return members

    def kill_group(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Signal every live member of the group; returns how many were signalled."""
        count = 0
        for proc in self.group_members():
            try:
                proc.send_signal(sig)
                count += 1
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return count

    # --- waiting and stopping ------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; True when it has."""
        if self._popen is not None:
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        proc = self.verified()
        if proc is None:
            return True
        deadline = time.monotonic() + timeout
        # Not our child (attached from stack.json): poll; a zombie counts as ended.
        while time.monotonic() < deadline:
            if self.verified() is None:
                return True
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.verified() is None

    def _wait_group(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.group_members():
                return True
            time.sleep(0.1)
        return not self.group_members()

    def stop(self, sig: signal.Signals | None = None, timeout: float | None = None) -> StopOutcome:
        """Ask the process to stop (its own stop signal by default), then SIGKILL its group.

        Only the leader gets the polite signal: PostgreSQL's and Redis's children are the
        server's to shut down. Whatever of the group is left afterwards is SIGKILLed, so
        nothing of ours survives a stop.
        """
        sig = sig or signal_by_name(self.record.stop_signal)
        timeout = self.record.stop_timeout if timeout is None else timeout
        if self.kill(sig) and self.wait(timeout):
            outcome = StopOutcome.STOPPED
        elif self.verified() is None and self.wait(0):
            outcome = StopOutcome.NOT_RUNNING
        else:
            outcome = StopOutcome.KILLED
        leftovers = self.kill_group(signal.SIGKILL)
        if outcome is StopOutcome.KILLED or leftovers:
            self.wait(KILL_WAIT_SECONDS)
            if not self._wait_group(KILL_WAIT_SECONDS):
                return StopOutcome.STUCK
        return outcome

    # --- diagnostics --------------------------------------------------------------------------

    def log_tail(self, max_chars: int = LOG_TAIL_CHARS) -> str:
        return read_tail(self.log_path, max_chars)


def read_tail(path: Path, max_chars: int = LOG_TAIL_CHARS, *, start: int = 0) -> str:
    """The end of a log (from byte ``start`` at the earliest), never reading a huge file whole."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, start, size - max_chars * 4))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return text[-max_chars:]
