"""Redis Sentinel for the HA stack: the process, its config, and what a drill asks it.

Sentinel hands clients the address it *monitors*, so the primary is monitored at its Toxiproxy
address and every replica announces its own proxy address (``replica-announce-ip/port``, set
on the Redis nodes): whatever Sentinel says, clients reach Redis through a proxy a drill can
cut. The config file is written once: Sentinel rewrites it with what it learns (replicas, other
Sentinels, the current primary after a failover) and a restarted Sentinel must keep that.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from lab.stack.binaries import find_redis_sentinel
from lab.stack.component import LAYER_SERVICE, Component
from lab.stack.ports import PortAllocator
from lab.stack.redis import render_config

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class SentinelTiming:
    """How fast Sentinel gives up on a primary; production runs far longer values than drills."""

    down_after_ms: int = 5000
    failover_timeout_ms: int = 30000
    quorum: int = 2

    def __post_init__(self) -> None:
        if self.down_after_ms < 100 or self.failover_timeout_ms < 1000 or self.quorum < 1:
            raise ValueError(f"implausible Sentinel timing {self}")


class RedisSentinel(Component):
    role = "sentinel"
    layer = LAYER_SERVICE  # stops before the Redis nodes, so it never fails over a stopping stack
    stop_signal = signal.SIGTERM
    stop_timeout = 10.0
    start_timeout = 30.0

    def __init__(
        self,
        base_dir: Path,
        *,
        log_dir: Path,
        master_name: str,
        master_host: str,
        master_port: int,
        timing: SentinelTiming,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "sentinel",
        binary: Path | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.base_dir = base_dir
        self.config_path = base_dir / "sentinel.conf"
        self.master_name = master_name
        self.master_host = master_host
        self.master_port = master_port
        self.timing = timing
        self.binary = binary or find_redis_sentinel()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def config_lines(self) -> list[str]:
        head = render_config(
            {
                "port": str(self.port),
                "bind": self.host,
                "protected-mode": "no",
                "daemonize": "no",
                "logfile": "",
                "dir": str(self.base_dir),
            }
        ).splitlines()
        m, t = self.master_name, self.timing
        return [
            *head,
            "sentinel resolve-hostnames no",
            f"sentinel monitor {m} {self.master_host} {self.master_port} {t.quorum}",
            f"sentinel down-after-milliseconds {m} {t.down_after_ms}",
            f"sentinel failover-timeout {m} {t.failover_timeout_ms}",
            f"sentinel parallel-syncs {m} 1",
        ]

    def prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.config_path.write_text("\n".join(self.config_lines()) + "\n")

    def on_port_changed(self) -> None:
        self.config_path.write_text("\n".join(self.config_lines()) + "\n")

    def command(self) -> list[str]:
        return [str(self.binary), str(self.config_path)]

    def client(self) -> Redis:
        return Redis(host=self.host, port=self.port, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT)

    def probe(self) -> str | None:
        try:
            with self.client() as client:
                client.ping()
                master_addr(client, self.master_name)
        except RedisError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


# --- what drills ask a Sentinel ----------------------------------------------------------------


@dataclass(frozen=True)
class SentinelView:
    """One Sentinel's picture of the monitored primary."""

    master: tuple[str, int]
    master_flags: str
    replicas: tuple[tuple[str, int, str], ...]  # (ip, port, flags)
    other_sentinels: int

    @property
    def healthy_replicas(self) -> int:
        return sum(1 for *_, flags in self.replicas if not _down(flags))


def _down(flags: str) -> bool:
    return any(f in flags.split(",") for f in ("s_down", "o_down", "disconnected"))


def master_addr(client: Redis, master_name: str) -> tuple[str, int]:
    answer = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name)  # type: ignore[no-untyped-call]
    if not answer:
        raise RedisError(f"Sentinel does not know master {master_name!r}")
    host, port = answer
    return (host.decode() if isinstance(host, bytes) else str(host)), int(port)


def _pairs(raw: Sequence[object]) -> dict[str, str]:
    items = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
    return dict(zip(items[::2], items[1::2], strict=False))


def _as_dict(entry: object) -> dict[str, str]:
    if isinstance(entry, dict):
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in entry.items()
        }
    if isinstance(entry, list | tuple):
        return _pairs(entry)
    raise RedisError(f"unexpected Sentinel answer {entry!r}")


def sentinel_view(client: Redis, master_name: str) -> SentinelView:
    """Master, replicas and peers as this Sentinel sees them (raw commands: no parsing quirks)."""
    master = _as_dict(client.execute_command("SENTINEL", "MASTER", master_name))  # type: ignore[no-untyped-call]
    raw_replicas = client.execute_command("SENTINEL", "REPLICAS", master_name)  # type: ignore[no-untyped-call]
    replicas = [_as_dict(r) for r in raw_replicas or ()]
    return SentinelView(
        master=(master.get("ip", ""), int(master.get("port", "0"))),
        master_flags=master.get("flags", ""),
        replicas=tuple((r.get("ip", ""), int(r.get("port", "0")), r.get("flags", "")) for r in replicas),
        other_sentinels=int(master.get("num-other-sentinels", "0")),
    )
