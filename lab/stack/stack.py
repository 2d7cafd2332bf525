"""The whole local stack: data stores, S3, the fake provider and the importer, on loopback.

Start order follows the dependencies: Postgres, Redis, S3 and the provider (independent of
each other, started in parallel), then ``importer migrate``, then the API, the reconciler
and the workers (in parallel). Every component is waited for with a bounded timeout; the
first that fails stops everything already started and the error names it with its log.

``stop()`` stops exactly the processes this object spawned (the importer first, the data
stores last) and nothing else. Every spawn is written to ``<run_dir>/stack.json`` at once,
so ``drill down`` can stop a stack whose ``drill up`` died half-way.

Chaos experiments and integration tests drive faults through the methods here
(``start_worker``/``kill_worker``, ``restart_redis``, ``restart_postgres``); an HA topology
(Redis replicas + Sentinels, Toxiproxy in front) will compose more components the same way,
overriding ``_data_stores`` and ``_endpoints``.
"""

from __future__ import annotations

import itertools
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from redis import Redis

from lab.stack.component import Component
from lab.stack.errors import StackError
from lab.stack.importer import (
    ImporterApi,
    ImporterEndpoints,
    ImporterReconciler,
    ImporterWorker,
    importer_argv,
    importer_environment,
    run_migrations,
)
from lab.stack.info import StackInfo, StackState, save_info
from lab.stack.ports import PortAllocator
from lab.stack.postgres import PostgresServer
from lab.stack.process import KILL_WAIT_SECONDS, ManagedProcess, StopOutcome
from lab.stack.provider import FakeProvider
from lab.stack.recorded import stop_processes
from lab.stack.redis import RedisServer
from lab.stack.s3 import CREDENTIALS, MotoS3
from lab.stack.stackdir import StackDir

ProgressStatus = Literal["starting", "ready", "failed", "stopped", "info"]
C = TypeVar("C", bound=Component)


@dataclass(frozen=True)
class ProgressEvent:
    component: str
    status: ProgressStatus
    detail: str = ""
    elapsed: float | None = None


ProgressCallback = Callable[[ProgressEvent], None]


Topology = Literal["single", "ha"]
TOPOLOGIES: tuple[Topology, ...] = ("single", "ha")


@dataclass
class StackConfig:
    run_dir: Path = Path(".drill")
    workers: int = 2
    # "single": one Redis, quick runs. "ha": Redis primary + 2 replicas + 3 Sentinels, and
    # Toxiproxy in front of Postgres and of each Redis node (lab/stack/ha.py), for chaos drills.
    topology: Topology = "single"
    sentinel_down_after_ms: int = 5000
    sentinel_failover_timeout_ms: int = 30000
    env_overrides: dict[str, str] = field(default_factory=dict)
    with_importer: bool = True
    reconciler: bool = True  # tests that drive `importer reconciler --once` themselves turn it off
    provider_args: list[str] = field(default_factory=list)
    s3_bucket: str = "product-images"
    environment: str = "drill"
    postgres_settings: dict[str, str] = field(default_factory=dict)
    start_timeout: float | None = None  # per component; None keeps each component's own default

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {', '.join(TOPOLOGIES)}, not {self.topology!r}")
        bad = [k for k in self.env_overrides if not k or "=" in k]
        if bad:
            raise ValueError(f"invalid environment variable names: {bad}")


@dataclass
class WorkerHandle:
    """One worker process of the stack: what tests and chaos steps kill, stop and inspect."""

    worker_id: str
    component: ImporterWorker
    env_overrides: dict[str, str]

    @property
    def process(self) -> ManagedProcess:
        if self.component.process is None:
            raise StackError(f"worker {self.worker_id} was never started")
        return self.component.process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.component.log_path

    def is_alive(self) -> bool:
        return self.component.is_alive()

    alive = is_alive  # the spelling the integration tests use

    def is_registered(self) -> bool:
        """Its ``importer:workers:<id>`` key exists (expires one lease after the worker dies)."""
        return self.component.is_registered()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> bool:
        """Send ``sig`` and return at once; False when the worker had already exited."""
        return self.process.kill(sig)

    def wait(self, timeout: float) -> int | None:
        """Wait for the exit; its exit code, or None if still running after ``timeout`` seconds."""
        return self.process.returncode if self.process.wait(timeout) else None

    def stop(self, timeout: float | None = None) -> StopOutcome:
        """SIGTERM, then SIGKILL after ``timeout`` (default: the shutdown grace plus a margin)."""
        return self.component.stop(signal.SIGTERM, timeout)

    def log_tail(self, max_chars: int = 4000) -> str:
        """The worker's log since it started."""
        return self.component.log_tail(max_chars)


class Stack:
    """Owns every process of one local stack. Use ``with Stack(config) as stack:`` or start/stop.

    ``Stack(StackConfig(topology="ha"))`` builds the HA topology (``lab.stack.ha.HaStack``).
    """

    def __new__(cls, config: StackConfig, progress: ProgressCallback | None = None) -> Stack:
        if cls is Stack and config.topology == "ha":
            from lab.stack.ha import HaStack  # here: ha.py builds on this module

            return super().__new__(HaStack)
        return super().__new__(cls)

    def __init__(self, config: StackConfig, progress: ProgressCallback | None = None) -> None:
        self.config = config
        self.dir = StackDir(config.run_dir)
        self.ports = PortAllocator()
        self.operator_token = secrets.token_urlsafe(32)
        self._progress = progress
        self._lock = threading.RLock()
        self._processes: dict[str, ManagedProcess] = {}
        self._worker_numbers = itertools.count(1)
        self._aborting = False
        self.info = StackInfo(
            run_dir=str(self.dir.path),
            env_overrides=dict(config.env_overrides),
            s3_bucket=config.s3_bucket,
            operator_token=self.operator_token,
        )
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self.s3: MotoS3 | None = None
        self.provider: FakeProvider | None = None
        self.api: ImporterApi | None = None
        self.reconciler: ImporterReconciler | None = None
        self.workers: dict[str, WorkerHandle] = {}

    # --- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- start ------------------------------------------------------------------------------------

    def start(self) -> StackInfo:
        """Bring everything up in dependency order; on any failure stop what was started and raise."""
        with self.dir.locked():
            self.dir.prepare_fresh()
            self._save()
            try:
                self._start_parallel(self._data_stores())
                self._after_data_stores()
                self._publish_endpoints()
                if self.config.with_importer:
                    self._start_importer()
            except BaseException:
                self._aborting = True
                self._emit("stack", "failed", "stopping what was started")
                self._stop_all()
                self._set_state("failed")
                raise
            self._set_state("running")
        return self.info

    def _data_stores(self) -> list[Component]:
        """What the importer depends on. An HA topology returns replicas, Sentinels, proxies."""
        self.redis = RedisServer(
            self._component_dir("redis"),
            log_dir=self.dir.logs_dir,
            ports=self.ports,
            start_timeout=self.config.start_timeout,
        )
        return [*self._common_services(), self.redis]

    def _common_services(self) -> list[Component]:
        """Postgres, S3 and the provider: the same in every topology (built, not started)."""
        logs = self.dir.logs_dir
        timeout = self.config.start_timeout
        self.postgres = PostgresServer(
            self._component_dir("postgres"),
            log_dir=logs,
            ports=self.ports,
            server_settings=self.config.postgres_settings,
            start_timeout=timeout,
        )
        self.s3 = MotoS3(log_dir=logs, bucket=self.config.s3_bucket, ports=self.ports, start_timeout=timeout)
        self.provider = FakeProvider(
            log_dir=logs, ports=self.ports, extra_args=self.config.provider_args, start_timeout=timeout
        )
        return [self.postgres, self.s3, self.provider]

    def _after_data_stores(self) -> None:
        """Wiring that needs the data stores up (the HA topology's proxies and Sentinels)."""

    def _endpoints(self) -> ImporterEndpoints:
        return ImporterEndpoints(
            database_url=self._need(self.postgres, "postgres").database_url,
            redis_url=self._need(self.redis, "redis").url,
            s3_endpoint=self._need(self.s3, "s3").endpoint_url,
            s3_bucket=self._need(self.s3, "s3").bucket,
            provider_url=self._need(self.provider, "provider").url,
            operator_token=self.operator_token,
            environment=self.config.environment,
        )

    def _publish_endpoints(self) -> None:
        endpoints = self._endpoints()
        env = self.importer_env()
        with self._lock:
            self.info = self.info.model_copy(
                update={
                    "database_url": endpoints.database_url,
                    "redis_url": endpoints.redis_url,
                    "redis_sentinels": list(endpoints.redis_sentinels),
                    "s3_endpoint": endpoints.s3_endpoint,
                    "s3_bucket": endpoints.s3_bucket,
                    "provider_url": endpoints.provider_url,
                    "importer_env": {k: v for k, v in env.items() if k.startswith("IMPORTER_") or k in CREDENTIALS},
                }
            )
            self._save()

    def _start_importer(self) -> None:
        env = self.importer_env()
        started = time.monotonic()
        self._emit("migrate", "starting")
        try:
            run_migrations(env, log_path=self.dir.logs_dir / "migrate.log", cwd=self.dir.logs_dir)
        except StackError as exc:
            self._emit("migrate", "failed", str(exc).splitlines()[0], time.monotonic() - started)
            raise
        self._emit("migrate", "ready", "schema up to date", time.monotonic() - started)
        logs, timeout = self.dir.logs_dir, self.config.start_timeout
        self.api = ImporterApi(env=env, log_dir=logs, ports=self.ports, start_timeout=timeout)
        parts: list[Component] = [self.api]
        if self.config.reconciler:
            self.reconciler = ImporterReconciler(env=env, log_dir=logs, start_timeout=timeout)
            parts.append(self.reconciler)
        workers = [self._new_worker(None, None) for _ in range(self.config.workers)]
        self._start_parallel([*parts, *(w.component for w in workers)])
        with self._lock:
            self.info = self.info.model_copy(update={"api_url": self.api.url})
            self._save()

    def _start_parallel(self, components: Sequence[Component]) -> None:
        """Start independent components at once; the first failure is raised after all settle."""
        if not components:
            return
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=len(components), thread_name_prefix="stack-start") as pool:
            futures = [pool.submit(self._start_component, c) for c in components]
            try:
                for future in as_completed(futures):
                    error = future.exception()
                    if error is not None:
                        errors.append(error)
            except BaseException:
                # Ctrl-C: the in-flight starts end on their own (each wait is bounded, and
                # _aborting stops anything spawned from now on); the pool's exit waits for them.
                self._aborting = True
                raise
        if errors:
            raise errors[0]

    def _start_component(self, component: Component) -> None:
        component.on_spawn = self._record_process
        started = time.monotonic()
        self._emit(component.name, "starting")
        try:
            component.start()
        except BaseException as exc:
            self._emit(component.name, "failed", str(exc).splitlines()[0], time.monotonic() - started)
            raise
        where = f"{component.host}:{component.port}" if component.port else f"pid {component.pid}"
        self._emit(component.name, "ready", where, time.monotonic() - started)

    def _record_process(self, process: ManagedProcess) -> None:
        with self._lock:
            self._processes[process.name] = process
            self.info = self.info.with_process(process.record)
            self._save()
            if self._aborting:
                raise StackError(f"{process.name}: stack start aborted")

    def _component_dir(self, name: str) -> Path:
        with self._lock:
            if name not in self.info.paths:
                self.info = self.info.model_copy(update={"paths": [*self.info.paths, name]})
            return self.dir.component_dir(name)

    # --- stop -------------------------------------------------------------------------------------

    def stop(self) -> dict[str, StopOutcome]:
        """Stop every process this stack spawned (importer first, data stores last)."""
        with self._lock:
            if not self._processes:
                return {}  # never started (or nothing spawned): no files to touch either
            self._set_state("stopping")
            outcomes = self._stop_all()
            self._set_state("stopped")
            return outcomes

    def _stop_all(self) -> dict[str, StopOutcome]:
        with self._lock:
            processes = list(self._processes.values())
        return stop_processes(processes, report=lambda name, outcome: self._emit(name, "stopped", outcome.value))

    # --- addresses ------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self._need(self.api, "api").url

    @property
    def provider_url(self) -> str:
        return self._need(self.provider, "provider").url

    @property
    def database_url(self) -> str:
        return self._need(self.postgres, "postgres").database_url

    @property
    def redis_url(self) -> str:
        return self._need(self.redis, "redis").url

    @property
    def s3_endpoint(self) -> str:
        return self._need(self.s3, "s3").endpoint_url

    @property
    def s3_bucket(self) -> str:
        return self.config.s3_bucket

    def redis_client(self) -> Redis:
        """A client of the current primary (in the HA topology: whatever Sentinel says)."""
        return self._need(self.redis, "redis").client()

    def importer_env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment an importer process of this stack gets (config overrides, then ``overrides``)."""
        return importer_environment(self._endpoints(), {**self.config.env_overrides, **(overrides or {})})

    def run_importer(
        self,
        args: str | Sequence[str],
        *more: str,
        env_overrides: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``importer <args>`` against this stack as an operator would; output captured.

        ``run_importer("ops", "health")`` and ``run_importer(["reconciler", "--once"])`` both work.
        """
        argv = [args, *more] if isinstance(args, str) else [*args, *more]
        return subprocess.run(
            importer_argv(*argv),
            env=self.importer_env(env_overrides),
            cwd=self.dir.logs_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- workers ----------------------------------------------------------------------------------

    def _new_worker(self, env_overrides: Mapping[str, str] | None, worker_id: str | None) -> WorkerHandle:
        with self._lock:
            if worker_id is None:
                worker_id = f"worker-{next(self._worker_numbers)}"
                while worker_id in self.workers:
                    worker_id = f"worker-{next(self._worker_numbers)}"
            elif worker_id in self.workers and self.workers[worker_id].is_alive():
                raise StackError(f"worker {worker_id} is already running")
            overrides = dict(env_overrides or {})
            component = ImporterWorker(
                worker_id,
                env=self.importer_env(overrides),
                log_dir=self.dir.logs_dir,
                redis_client=self.redis_client,
                start_timeout=self.config.start_timeout,
            )
            handle = WorkerHandle(worker_id=worker_id, component=component, env_overrides=overrides)
            self.workers[worker_id] = handle
            return handle

    def start_worker(
        self,
        env_overrides: Mapping[str, str] | None = None,
        worker_id: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> WorkerHandle:
        """Start one more worker and wait until it registered in Redis.

        ``env_overrides`` (or its short spelling ``env``) are IMPORTER_* settings for this
        worker only, on top of the stack's own overrides.
        """
        if env is not None and env_overrides is not None:
            raise TypeError("pass env_overrides or env, not both")
        handle = self._new_worker(env_overrides if env is None else env, worker_id)
        try:
            self._start_component(handle.component)
        except BaseException:
            with self._lock:
                self.workers.pop(handle.worker_id, None)
            raise
        return handle

    def kill_worker(
        self,
        handle: WorkerHandle,
        sig: signal.Signals = signal.SIGKILL,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> bool:
        """Send ``sig`` to the worker; with ``wait``, True once it has exited (within ``timeout``).

        The default timeout fits the signal: a few seconds for SIGKILL, the shutdown grace plus
        a margin for SIGTERM (the worker first hands its jobs back).
        """
        if not handle.kill(sig):
            return True
        self._emit(handle.worker_id, "info", f"sent {sig.name}")
        if not wait:
            return False
        if timeout is None:
            timeout = KILL_WAIT_SECONDS if sig == signal.SIGKILL else handle.component.stop_timeout
        return handle.process.wait(timeout)

    def stop_worker(self, handle: WorkerHandle, timeout: float | None = None) -> StopOutcome:
        """SIGTERM, then SIGKILL after ``timeout`` (default: the shutdown grace plus a margin)."""
        outcome = handle.stop(timeout)
        self._emit(handle.worker_id, "stopped", outcome.value)
        return outcome

    def stop_workers(self, handles: Sequence[WorkerHandle], timeout: float | None = None) -> dict[str, StopOutcome]:
        """Stop several workers at once (each may take its whole grace to hand jobs back)."""
        processes = [h.process for h in handles if h.component.process is not None]
        outcomes: dict[str, StopOutcome] = {}
        for name, outcome in stop_processes(processes, timeout=timeout).items():
            outcomes[name] = outcome
            self._emit(name, "stopped", outcome.value)
        return outcomes

    def live_workers(self) -> list[WorkerHandle]:
        with self._lock:
            return [w for w in self.workers.values() if w.is_alive()]

    # --- faults --------------------------------------------------------------------------------

    def restart_redis(self, *, hard: bool = False, down_for: float = 0.0) -> float:
        """Restart Redis on the same port and data; returns the seconds it took (down + up).

        ``hard`` SIGKILLs it (the AOF may lose about a second of writes); ``down_for`` keeps it
        down that many seconds first, for an outage clients cannot miss.
        """
        return self._restart(self._need(self.redis, "redis"), hard, down_for)

    def restart_postgres(self, *, hard: bool = False, down_for: float = 0.0) -> float:
        """Restart Postgres on the same port and data (``hard``: SIGKILL, crash recovery on start)."""
        return self._restart(self._need(self.postgres, "postgres"), hard, down_for)

    def _restart(self, component: Component, hard: bool, down_for: float) -> float:
        started = time.monotonic()
        self._emit(component.name, "info", "hard restart (SIGKILL)" if hard else "restart")
        component.restart(hard=hard, down_for=down_for)
        elapsed = time.monotonic() - started
        self._emit(component.name, "ready", f"restarted at {component.host}:{component.port}", elapsed)
        return elapsed

    # --- bookkeeping ------------------------------------------------------------------------------

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        with self._lock:
            return dict(self._processes)

    def _set_state(self, state: StackState) -> None:
        with self._lock:
            self.info = self.info.model_copy(update={"state": state})
            self._save()

    def _save(self) -> None:
        with self._lock:
            save_info(self.dir.path, self.info)

    def _emit(self, component: str, status: ProgressStatus, detail: str = "", elapsed: float | None = None) -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(component, status, detail, elapsed))

    @staticmethod
    def _need(component: C | None, name: str) -> C:
        if component is None:
            raise StackError(f"{name} is not part of this stack, or the stack was not started")
        return component
