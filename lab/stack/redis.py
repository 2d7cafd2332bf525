"""A redis-server from a generated config file: loopback, AOF with ``appendfsync everysec``.

AOF with everysec is what production runs (docs/architecture.md §6), so a SIGKILL loses at most about
a second of writes and a graceful restart loses nothing; the chaos drills measure exactly
that. The config file is written once and never overwritten on restart: in the HA topology
Sentinel rewrites it (``replicaof`` after a failover), and a restarted former primary must
come back with what Sentinel decided, not with what we wrote at first.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path

from redis import Redis
from redis.exceptions import BusyLoadingError, RedisError

from lab.stack.binaries import find_redis_server
from lab.stack.component import LAYER_DATA, Component
from lab.stack.ports import PortAllocator

PROBE_TIMEOUT = 2.0


# Directives whose value is several arguments ("replicaof <host> <port>"): never quoted.
MULTI_ARGUMENT = frozenset({"replicaof", "slaveof"})


def render_config(settings: Mapping[str, str]) -> str:
    """redis.conf text; values with spaces or empty values are quoted as Redis expects."""
    lines = ["# written by lab.stack.redis; Redis/Sentinel may rewrite it (CONFIG REWRITE)"]
    for key, value in settings.items():
        quote = key not in MULTI_ARGUMENT and (value == "" or " " in value)
        rendered = f'"{value}"' if quote else value
        lines.append(f"{key} {rendered}")
    return "\n".join(lines) + "\n"


class RedisServer(Component):
    role = "redis"
    layer = LAYER_DATA
    stop_signal = signal.SIGTERM  # Redis fsyncs the AOF and exits on SIGTERM
    stop_timeout = 30.0
    start_timeout = 30.0

    def __init__(
        self,
        base_dir: Path,
        *,
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "redis",
        extra_config: Mapping[str, str] | None = None,
        binary: Path | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.config_path = base_dir / "redis.conf"
        self.extra_config = dict(extra_config or {})
        self.binary = binary or find_redis_server()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def config(self) -> dict[str, str]:
        return {
            "port": str(self.port),
            "bind": self.host,
            "protected-mode": "no",
            "daemonize": "no",
            "dir": str(self.data_dir),
            "logfile": "",  # stdout, i.e. the component's log file
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",  # the AOF is the persistence; no RDB snapshots competing for the disk
            **self.extra_config,
        }

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.config_path.write_text(render_config(self.config()))

    def on_port_changed(self) -> None:
        self.config_path.write_text(render_config(self.config()))

    def command(self) -> list[str]:
        return [str(self.binary), str(self.config_path)]

    def set_replica_of(self, host: str | None, port: int | None = None) -> None:
        """Make the next start come up as a replica of ``host:port`` (None: as a primary).

        What Sentinel does to a live node with ``REPLICAOF`` + ``CONFIG REWRITE``, done to the
        config file of a stopped one: a killed primary restarted with its old file would come
        back as a second primary until Sentinel noticed and demoted it.
        """
        self.prepare()
        kept = [
            line
            for line in self.config_path.read_text().splitlines()
            if line.split(maxsplit=1)[:1] not in (["replicaof"], ["slaveof"])
        ]
        if host is not None:
            kept.append(f"replicaof {host} {port}")
        self.config_path.write_text("\n".join(kept) + "\n")

    def replication_role(self) -> str:
        """``master`` or ``slave``, as the node itself says (ROLE)."""
        with self.client() as client:
            answer = client.execute_command("ROLE")
        first = answer[0]
        return first.decode() if isinstance(first, bytes) else str(first)

    def client(self, **options: object) -> Redis:
        """A short-timeout client for probes and tests (not for the importer's own traffic)."""
        kwargs: dict[str, object] = {"socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT}
        kwargs.update(options)
        return Redis(host=self.host, port=self.port, **kwargs)  # type: ignore[arg-type]

    def probe(self) -> str | None:
        try:
            with self.client() as client:
                client.ping()
        except BusyLoadingError:
            return "loading the AOF"
        except RedisError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
