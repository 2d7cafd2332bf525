"""Real services for tests, started through lab.stack: nothing needs to run before pytest.

The fixtures in tests/conftest.py are thin wrappers around these helpers, which also work
on their own (``with running(RedisServer(...)) as redis: ...``) for a test that needs a
private instance to break.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from lab.stack.component import Component, base_environment
from lab.stack.importer import run_migrations
from lab.stack.process import StopOutcome
from lab.stack.stack import Stack, StackConfig, WorkerHandle

C = TypeVar("C", bound=Component)

KEEP_ENV = "DRILL_KEEP_TEST_DIRS"  # set to 1 to keep the services' data and logs after the run

# Settings of the shared test stack: small pools (many workers share one Postgres), short
# grace so stopping a test's workers is quick. Tests add their own per worker.
TEST_STACK_ENV: dict[str, str] = {
    "IMPORTER_DB_POOL_MIN": "1",
    "IMPORTER_SHUTDOWN_GRACE_SECONDS": "5",
}
WORKER_STOP_TIMEOUT = 15.0


def make_stack_root(prefix: str = "drill-test-") -> Path:
    """A fresh directory the ``postgres`` account can enter (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def remove_stack_root(path: Path) -> None:
    if os.environ.get(KEEP_ENV):
        print(f"\n{KEEP_ENV} is set: service data and logs kept in {path}")
        return
    failures: list[str] = []
    # onerror, not onexc: the latter exists from Python 3.12 only.
    shutil.rmtree(path, onerror=lambda _func, target, exc_info: failures.append(f"{target}: {exc_info[1]}"))
    if failures:
        warnings.warn(f"could not remove all of {path}: {'; '.join(failures[:5])}", stacklevel=2)


@contextmanager
def running(component: C) -> Iterator[C]:
    """Start ``component``, yield it, stop it however the block ends."""
    component.start()
    try:
        yield component
    finally:
        component.stop()


def migrate(database_url: str, log_dir: Path) -> None:
    """``importer migrate`` against ``database_url`` (raises with the log's tail if it fails)."""
    env = {**base_environment(), "IMPORTER_DATABASE_URL": database_url}
    run_migrations(env, log_path=log_dir / "migrate.log", cwd=log_dir)


@contextmanager
def running_stack(run_dir: Path, **config: object) -> Iterator[Stack]:
    """A whole stack in ``run_dir`` (``StackConfig`` fields as keywords), stopped at the end."""
    stack = Stack(StackConfig(run_dir=run_dir, **config))  # type: ignore[arg-type]
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


class WorkerFactory:
    """Starts workers for one test and stops every one of them when the test ends."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.started: list[WorkerHandle] = []

    def start(self, env: Mapping[str, str] | None = None, worker_id: str | None = None) -> WorkerHandle:
        handle = self.stack.start_worker(env_overrides=env, worker_id=worker_id)
        self.started.append(handle)
        return handle

    def kill(self, handle: WorkerHandle, sig: signal.Signals = signal.SIGKILL, timeout: float | None = None) -> bool:
        """Signal the worker and wait for it to exit; True when it did within the timeout."""
        return self.stack.kill_worker(handle, sig, wait=True, timeout=timeout)

    def stop_all(self) -> dict[str, StopOutcome]:
        live = [h for h in self.started if h.is_alive()]
        return self.stack.stop_workers(live, timeout=WORKER_STOP_TIMEOUT) if live else {}
