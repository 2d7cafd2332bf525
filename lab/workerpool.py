"""The workers an autoscaler may add and remove: those of a Stack object, or of a stack found on disk.

``drill run`` either owns its stack (a ``Stack`` it started: workers come and go through
``Stack.start_worker`` / ``Stack.stop_worker``) or attaches to one ``drill up`` started
(``--attach``): then it only has stack.json. For that case ``AttachedWorkers`` starts worker
processes the same way the stack does (same component, same environment, same logs) and
records each in stack.json at once, so ``drill down`` stops them even if this run dies; it
never stops a worker it did not start.

Every method blocks (a start waits until the worker registered in Redis, a stop waits for the
graceful hand-back): callers in asyncio run them in a thread.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Protocol

from redis import Redis

from lab.stack.component import base_environment
from lab.stack.importer import ImporterWorker
from lab.stack.info import StackInfo, load_info, save_info
from lab.stack.process import Identity, ManagedProcess, StopOutcome
from lab.stack.stack import Stack
from lab.stack.stackdir import StackDir


class WorkerPool(Protocol):
    def start_worker(self) -> str:
        """Start one worker; its id once it registered in Redis."""
        ...

    def stop_worker(self, worker_id: str) -> StopOutcome:
        """SIGTERM (the worker hands its jobs back), SIGKILL after the grace."""
        ...

    def live_workers(self) -> list[str]:
        """Ids of every live worker of the stack, oldest first."""
        ...

    def stoppable(self) -> list[str]:
        """Ids this pool may stop when scaling in, newest last."""
        ...

    def stop_started(self) -> dict[str, StopOutcome]:
        """Stop what this pool started that is still running (the end of a run)."""
        ...


class StackWorkers:
    """The workers of a Stack this process owns; the stack stops them all at its own end."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def start_worker(self) -> str:
        return self.stack.start_worker().worker_id

    def stop_worker(self, worker_id: str) -> StopOutcome:
        return self.stack.stop_worker(self.stack.workers[worker_id])

    def live_workers(self) -> list[str]:
        return [w.worker_id for w in self.stack.live_workers()]

    def stoppable(self) -> list[str]:
        return self.live_workers()

    def stop_started(self) -> dict[str, StopOutcome]:
        return {}  # Stack.stop() stops every worker it ever started


class AttachedWorkers:
    """Workers added to a running stack known only from its stack.json (``drill run --attach``)."""

    def __init__(self, stack_dir: Path, prefix: str = "scaled") -> None:
        self.dir = StackDir(stack_dir)
        info = load_info(self.dir.path)
        if info is None:
            raise FileNotFoundError(f"no stack.json in {self.dir.path}")
        self.info: StackInfo = info
        self._prefix = prefix
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._ours: dict[str, ImporterWorker] = {}
        if not info.redis_url:
            raise ValueError(f"{self.dir.path}: stack.json has no redis_url (a Sentinel stack is not supported here)")
        self._redis_url = info.redis_url

    def _client(self) -> Redis:
        client: Redis = Redis.from_url(self._redis_url, socket_timeout=5, socket_connect_timeout=5)
        return client

    def _new_id(self) -> str:
        taken = {p.name for p in self.info.processes}
        while True:
            candidate = f"{self._prefix}-{next(self._numbers)}"
            if candidate not in taken and candidate not in self._ours:
                return candidate

    def _record(self, process: ManagedProcess) -> None:
        with self._lock:
            current = load_info(self.dir.path) or self.info
            self.info = current.with_process(process.record)
            save_info(self.dir.path, self.info)

    def start_worker(self) -> str:
        with self._lock:
            worker_id = self._new_id()
            env = {**base_environment(), **self.info.importer_env}
            component = ImporterWorker(worker_id, env=env, log_dir=self.dir.logs_dir, redis_client=self._client)
            self._ours[worker_id] = component
        component.on_spawn = self._record
        try:
            component.start()
        except BaseException:
            with self._lock:
                self._ours.pop(worker_id, None)
            raise
        return worker_id

    def stop_worker(self, worker_id: str) -> StopOutcome:
        component = self._ours.get(worker_id)
        if component is None:
            raise ValueError(f"worker {worker_id} was not started by this run; it is not ours to stop")
        return component.stop()

    def live_workers(self) -> list[str]:
        info = load_info(self.dir.path) or self.info
        alive = []
        for record in info.processes:
            if record.role != "worker":
                continue
            ours = self._ours.get(record.name)
            if ours is not None:
                if ours.is_alive():
                    alive.append(record.name)
            elif ManagedProcess.attach(record).identity() is Identity.ALIVE:
                alive.append(record.name)
        return alive

    def stoppable(self) -> list[str]:
        return [w for w, c in self._ours.items() if c.is_alive()]

    def stop_started(self) -> dict[str, StopOutcome]:
        return {w: c.stop() for w, c in list(self._ours.items()) if c.is_alive()}
