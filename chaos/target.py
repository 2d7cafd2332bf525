"""What an experiment acts on: the HA stack, either started by the drill or already running.

Experiments never reach into a ``Stack`` directly; they use this narrow surface, which exists
in two forms:

- :class:`OwnedTarget`: the drill started the stack (``Stack(StackConfig(topology="ha"))``)
  and stops it afterwards;
- :class:`AttachedTarget` (``drill chaos --attach``): a stack someone started with
  ``drill up --topology ha`` is found again through its stack.json; its processes are driven
  by pid and create time exactly as ``drill down`` does, and anything the experiment starts
  (workers, a restarted Redis node) is recorded back into stack.json so ``drill down`` still
  stops everything.

Workers an experiment kills are always workers the experiment started itself: their exit
codes are known (they are our children) and the stack's own workers keep the baseline going.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

from redis import Redis
from redis.sentinel import Sentinel

from lab.probes import RedisTarget
from lab.stack.component import base_environment
from lab.stack.errors import StackError
from lab.stack.ha import LOOPBACK, HaStack, master_node_name
from lab.stack.importer import ImporterWorker, importer_argv
from lab.stack.info import HaLayout, StackInfo, load_info, save_info
from lab.stack.process import Identity, ManagedProcess
from lab.stack.redis import RedisServer
from lab.stack.sentinel import PROBE_TIMEOUT
from lab.stack.stack import WorkerHandle
from lab.stack.toxiproxy import ToxiproxyClient


class TargetError(Exception):
    """The stack cannot be used for chaos (not HA, not running, missing a part)."""


class ToxiproxyUnavailable(TargetError):
    """This experiment needs Toxiproxy and the stack has none: it stops, it never fakes the fault."""


def _addresses(items: list[str]) -> list[tuple[str, int]]:
    out = []
    for item in items:
        host, _, port = item.rpartition(":")
        out.append((host or LOOPBACK, int(port)))
    return out


class ChaosTarget(ABC):
    api_url: str
    operator_token: str
    provider_url: str
    database_url: str  # direct: the harness is never partitioned
    s3_endpoint: str
    s3_bucket: str
    importer_env: dict[str, str]
    layout: HaLayout
    log_dir: Path

    @property
    def redis(self) -> RedisTarget:
        return RedisTarget(sentinels=tuple(_addresses(self.layout.sentinels)), master=self.layout.master_name)

    def setting(self, name: str, default: float) -> float:
        """An importer setting as the stack's processes have it (IMPORTER_<NAME>), else its default."""
        raw = self.importer_env.get(f"IMPORTER_{name.upper()}")
        try:
            return float(raw) if raw is not None else default
        except ValueError:
            return default

    def toxiproxy(self) -> ToxiproxyClient:
        if not self.layout.toxiproxy_url:
            raise ToxiproxyUnavailable(
                "toxiproxy-server is not installed, so the stack has no proxies: this experiment cannot "
                "cut a connection without faking it and stops here (install it with scripts/setup.sh)"
            )
        return ToxiproxyClient.from_url(self.layout.toxiproxy_url)

    @property
    def postgres_proxy(self) -> str:
        if not self.layout.postgres_proxy:
            raise ToxiproxyUnavailable("the stack has no proxy in front of Postgres (no Toxiproxy)")
        return self.layout.postgres_proxy

    def master_node(self) -> str:
        return master_node_name(self.layout, _addresses(self.layout.sentinels))

    def sync_redis(self) -> Redis:
        """A blocking client of the current primary (worker registration probes)."""
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            _addresses(self.layout.sentinels),
            sentinel_kwargs={"socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT},
            socket_timeout=PROBE_TIMEOUT,
            socket_connect_timeout=PROBE_TIMEOUT,
        )
        client: Redis = sentinel.master_for(self.layout.master_name, socket_timeout=PROBE_TIMEOUT)  # type: ignore[no-untyped-call]
        return client

    def run_importer(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``importer <args>`` as an operator runs it against this stack."""
        return subprocess.run(
            importer_argv(*args),
            env={**base_environment(), **self.importer_env},
            cwd=self.log_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @abstractmethod
    def start_worker(self, worker_id: str, env_overrides: Mapping[str, str] | None = None) -> WorkerHandle: ...

    @abstractmethod
    def stop_worker(self, handle: WorkerHandle, timeout: float | None = None) -> None: ...

    def forget_workers(self, handles: list[WorkerHandle]) -> list[str]:
        """Drop the records of these workers once they are gone (nothing to do for an owned stack)."""
        return []

    @abstractmethod
    def kill_redis_node(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None: ...

    @abstractmethod
    def rejoin_redis_node(self, name: str) -> str: ...

    @abstractmethod
    def redis_node_alive(self, name: str) -> bool: ...

    def describe(self) -> dict[str, object]:
        return {
            "api": self.api_url,
            "provider": self.provider_url,
            "sentinels": self.layout.sentinels,
            "toxiproxy": self.layout.toxiproxy_url,
            "redis_nodes": {n.name: {"port": n.port, "proxy_port": n.proxy_port} for n in self.layout.nodes},
        }


class OwnedTarget(ChaosTarget):
    def __init__(self, stack: HaStack) -> None:
        self.stack = stack
        self.api_url = stack.api_url
        self.operator_token = stack.operator_token
        self.provider_url = stack.provider_url
        self.database_url = stack.database_url
        self.s3_endpoint = stack.s3_endpoint
        self.s3_bucket = stack.s3_bucket
        self.importer_env = {k: v for k, v in stack.importer_env().items() if k.startswith("IMPORTER_")}
        self.layout = stack.layout()
        self.log_dir = stack.dir.logs_dir

    def start_worker(self, worker_id: str, env_overrides: Mapping[str, str] | None = None) -> WorkerHandle:
        return self.stack.start_worker(env_overrides=env_overrides, worker_id=worker_id)

    def stop_worker(self, handle: WorkerHandle, timeout: float | None = None) -> None:
        self.stack.stop_worker(handle, timeout)

    def kill_redis_node(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        self.stack.kill_redis_node(name, sig)

    def rejoin_redis_node(self, name: str) -> str:
        return self.stack.rejoin_redis_node(name)

    def redis_node_alive(self, name: str) -> bool:
        return self.stack.redis_nodes[name].is_alive()


class AttachedTarget(ChaosTarget):
    """A running HA stack found through ``<run_dir>/stack.json`` (``drill up --topology ha``)."""

    def __init__(self, run_dir: Path) -> None:
        info = load_info(run_dir)
        if info is None:
            raise TargetError(f"no stack recorded in {run_dir.absolute()}: start one with `drill up --topology ha`")
        if info.state != "running" or info.ha is None:
            raise TargetError(
                f"the stack in {run_dir.absolute()} is {info.state} with topology {info.topology!r}; "
                "chaos needs a running HA stack (`drill up --topology ha`)"
            )
        dead = [p.name for p in info.processes if ManagedProcess.attach(p).identity() is not Identity.ALIVE]
        if not info.api_url or not info.provider_url or not info.s3_endpoint:
            raise TargetError(f"the stack in {run_dir.absolute()} was started without the importer (--infra-only)")
        self.run_dir = run_dir
        self.dead_at_attach = dead
        self._lock = threading.Lock()
        self.api_url = info.api_url
        self.operator_token = info.operator_token
        self.provider_url = info.provider_url
        self.database_url = info.ha.direct_database_url or info.database_url or ""
        self.s3_endpoint = info.s3_endpoint
        self.s3_bucket = info.s3_bucket
        self.importer_env = {k: v for k, v in info.importer_env.items() if k.startswith("IMPORTER_")}
        self.layout = info.ha
        self.log_dir = Path(info.run_dir) / "logs"
        self._credentials = {k: v for k, v in info.importer_env.items() if not k.startswith("IMPORTER_")}

    def _info(self) -> StackInfo:
        info = load_info(self.run_dir)
        if info is None:
            raise TargetError(f"{self.run_dir}/stack.json disappeared")
        return info

    def _record(self, process: ManagedProcess) -> None:
        with self._lock:
            save_info(self.run_dir, self._info().with_process(process.record))

    def start_worker(self, worker_id: str, env_overrides: Mapping[str, str] | None = None) -> WorkerHandle:
        env = {**base_environment(), **self._credentials, **self.importer_env, **(env_overrides or {})}
        component = ImporterWorker(worker_id, env=env, log_dir=self.log_dir, redis_client=self.sync_redis)
        component.on_spawn = self._record
        component.start()
        return WorkerHandle(worker_id=worker_id, component=component, env_overrides=dict(env_overrides or {}))

    def stop_worker(self, handle: WorkerHandle, timeout: float | None = None) -> None:
        handle.stop(timeout)

    def forget_workers(self, handles: list[WorkerHandle]) -> list[str]:
        """Workers this drill started and stopped (or killed) leave stack.json again, so
        ``drill status`` keeps meaning "every process of the stack is alive"."""
        gone = {h.worker_id for h in handles if not h.is_alive()}
        if gone:
            with self._lock:
                info = self._info()
                kept = [p for p in info.processes if p.name not in gone]
                save_info(self.run_dir, info.model_copy(update={"processes": kept}))
        return sorted(gone)

    def _node_process(self, name: str) -> ManagedProcess:
        record = self._info().process(name)
        if record is None:
            raise StackError(f"stack.json records no process {name!r}")
        return ManagedProcess.attach(record)

    def kill_redis_node(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        self._node_process(name).stop(sig, timeout=5.0)

    def redis_node_alive(self, name: str) -> bool:
        return self._node_process(name).is_alive()

    def rejoin_redis_node(self, name: str) -> str:
        node = self.layout.node(name)
        master = self.master_node()
        if self.redis_node_alive(name):
            return master
        server = RedisServer(Path(node.dir), log_dir=self.log_dir, port=node.port, name=node.name)
        if master == name:
            server.set_replica_of(None)
        else:
            server.set_replica_of(LOOPBACK, self.layout.node(master).client_port)
        server.on_spawn = self._record
        server.start()
        return master
