"""Acting on the processes a stack.json records: status and stop, from any later process.

``drill down`` and ``drill status`` run long after ``drill up`` exited, so they cannot hold
the processes' handles; they find them again by pid and check the create time, and leave
alone any pid the kernel has since given to someone else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby

from lab.stack.errors import StackError
from lab.stack.info import StackInfo
from lab.stack.process import Identity, ManagedProcess, ProcessRecord, StopOutcome


@dataclass(frozen=True)
class ProcessStatus:
    record: ProcessRecord
    identity: Identity

    @property
    def alive(self) -> bool:
        return self.identity is Identity.ALIVE


def process_statuses(info: StackInfo) -> list[ProcessStatus]:
    return [ProcessStatus(record, ManagedProcess.attach(record).identity()) for record in info.processes]


def live_records(info: StackInfo) -> list[ProcessRecord]:
    return [s.record for s in process_statuses(info) if s.alive]


StopReport = Callable[[str, StopOutcome], None]


def stop_processes(
    processes: Sequence[ManagedProcess], report: StopReport | None = None, timeout: float | None = None
) -> dict[str, StopOutcome]:
    """Stop by layer, the highest first (importer, then services, then data stores).

    Within a layer the processes stop in parallel: each worker may take its whole shutdown
    grace to hand jobs back, and N workers one after another would take N times as long.
    ``timeout`` replaces each process's own stop timeout before SIGKILL. A process that
    cannot be stopped (say, permission denied) does not keep the others running: every
    layer is still stopped, and the failures are raised together at the end.
    """
    outcomes: dict[str, StopOutcome] = {}
    failures: list[str] = []

    def stop_one(process: ManagedProcess) -> tuple[str, StopOutcome]:
        try:
            return process.name, process.stop(timeout=timeout)
        except Exception as exc:
            failures.append(f"{process.name} (pid {process.pid}): {type(exc).__name__}: {exc}")
            return process.name, StopOutcome.FAILED

    ordered = sorted(processes, key=lambda p: p.record.layer, reverse=True)
    for _, layer in groupby(ordered, key=lambda p: p.record.layer):
        members = list(layer)
        with ThreadPoolExecutor(max_workers=max(1, len(members)), thread_name_prefix="stack-stop") as pool:
            results = list(pool.map(stop_one, members))
        for name, outcome in results:
            outcomes[name] = outcome
            if report is not None:
                report(name, outcome)
    if failures:
        raise StackError("could not stop: " + "; ".join(failures))
    return outcomes


def stop_recorded(records: Iterable[ProcessRecord], report: StopReport | None = None) -> dict[str, StopOutcome]:
    return stop_processes([ManagedProcess.attach(r) for r in records], report)
