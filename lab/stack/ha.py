"""The HA topology: Redis primary + 2 replicas + 3 Sentinels, Toxiproxy in front of everything.

::

    importer ──► Sentinels (direct) ──"the primary is 127.0.0.1:<proxy of redis-a>"
    importer ──► toxiproxy[redis-a] ──► redis-a (primary)    ◄─┐ replication, also through
                 toxiproxy[redis-b] ──► redis-b (replica) ─────┤ the proxies (Sentinel hands
                 toxiproxy[redis-c] ──► redis-c (replica) ─────┘ out proxy addresses only)
    importer ──► toxiproxy[postgres] ──► postgres
    harness (observer, checker) ──► postgres, Sentinels directly: a partition never blinds it

Sentinel hands clients the address it monitors and the addresses replicas *announce*, so the
primary is monitored at its proxy address and every node announces its proxy port
(``replica-announce-ip/port``). After a failover Sentinel therefore names a proxy too, and
``REPLICAOF`` commands it sends point at proxies: every path to a Redis node can be cut.

Each node runs AOF (``appendfsync everysec``) plus RDB snapshots (``save 900 1 300 10 60
10000``). Sentinel's ``down-after-milliseconds`` and ``failover-timeout`` come from the stack's
config, so drills shorten them. Without ``toxiproxy-server`` the topology still starts, with
Sentinel and clients on the nodes' own ports, and says so: the experiments that need a proxy
then refuse to run instead of faking a fault.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel

from lab.stack.binaries import find_toxiproxy_server
from lab.stack.component import Component
from lab.stack.errors import BinaryNotFoundError, StackError
from lab.stack.importer import ImporterEndpoints
from lab.stack.info import HaLayout, HaNode
from lab.stack.redis import RedisServer
from lab.stack.sentinel import PROBE_TIMEOUT, RedisSentinel, SentinelTiming, SentinelView, master_addr, sentinel_view
from lab.stack.stack import ProgressCallback, Stack, StackConfig
from lab.stack.toxiproxy import ToxiproxyClient, ToxiproxyServer, create_proxy_on_free_port
from lab.stack.waiting import wait_until

MASTER_NAME = "mymaster"
NODE_NAMES = ("redis-a", "redis-b", "redis-c")
SENTINEL_COUNT = 3
RDB_SAVE = "900 1 300 10 60 10000"
POSTGRES_PROXY = "postgres"
HA_READY_TIMEOUT = 60.0
LOOPBACK = "127.0.0.1"


class HaStack(Stack):
    def __init__(self, config: StackConfig, progress: ProgressCallback | None = None) -> None:
        super().__init__(config, progress)
        self.timing = SentinelTiming(
            down_after_ms=config.sentinel_down_after_ms, failover_timeout_ms=config.sentinel_failover_timeout_ms
        )
        self.info = self.info.model_copy(update={"topology": "ha"})
        self.toxiproxy: ToxiproxyServer | None = None
        self.toxiproxy_missing: str | None = None  # why the stack runs without proxies
        self.redis_nodes: dict[str, RedisServer] = {}
        self.sentinels: list[RedisSentinel] = []
        self._proxy_ports: dict[str, int] = {}

    # --- building -----------------------------------------------------------------------------

    def _data_stores(self) -> list[Component]:
        logs, timeout = self.dir.logs_dir, self.config.start_timeout
        services = self._common_services()
        try:
            binary = find_toxiproxy_server()
        except BinaryNotFoundError as exc:
            self.toxiproxy_missing = str(exc)
            self._emit("toxiproxy", "info", f"not installed, no proxies (partition experiments will stop): {exc}")
        else:
            self.toxiproxy = ToxiproxyServer(log_dir=logs, ports=self.ports, binary=binary, start_timeout=timeout)
            services.append(self.toxiproxy)
            # Picked now: replicas announce their proxy port in their config file.
            for name in (*NODE_NAMES, POSTGRES_PROXY):
                self._proxy_ports[name] = self.ports.allocate()
        nodes = [self._node(name, primary=NODE_NAMES[0]) for name in NODE_NAMES]
        return [*services, *nodes]

    def _node(self, name: str, *, primary: str) -> RedisServer:
        node = RedisServer(
            self._component_dir(name),
            log_dir=self.dir.logs_dir,
            ports=self.ports,
            name=name,
            start_timeout=self.config.start_timeout,
        )
        announce = self._proxy_ports.get(name, node.port)
        config: dict[str, str] = {
            "save": RDB_SAVE,
            # Redis waits 5 s by default before a full sync, hoping more replicas join in; a
            # rejoining node after a failover would wait that long for nothing.
            "repl-diskless-sync-delay": "0",
            "replica-announce-ip": LOOPBACK,
            "replica-announce-port": str(announce),
        }
        if name != primary:
            primary_port = self._proxy_ports.get(primary) or self.redis_nodes[primary].port
            config["replicaof"] = f"{LOOPBACK} {primary_port}"
        node.extra_config = config
        self.redis_nodes[name] = node
        return node

    def _after_data_stores(self) -> None:
        """Proxies in front of the nodes and Postgres, then Sentinels, then wait for the quorum."""
        if self.toxiproxy is not None:
            client = self.toxiproxy_client()
            postgres = self._need(self.postgres, "postgres")
            targets = {name: node.port for name, node in self.redis_nodes.items()}
            targets[POSTGRES_PROXY] = postgres.port
            for name, port in targets.items():
                spec = create_proxy_on_free_port(
                    client, self.ports, name, f"{LOOPBACK}:{port}", listen_port=self._proxy_ports[name]
                )
                self._emit(f"proxy:{name}", "ready", f"{spec.listen} -> {spec.upstream}")
        started = time.monotonic()
        # Replicas first: a Sentinel learns them from the primary's INFO, which it reads at once
        # and then only every 10 s, so starting it before the links are up costs 10 s.
        wait_until(self._replication_reason, what="Redis replication", timeout=HA_READY_TIMEOUT)
        primary = self.redis_nodes[NODE_NAMES[0]]
        master_port = self._proxy_ports.get(NODE_NAMES[0], primary.port)
        self.sentinels = [
            RedisSentinel(
                self._component_dir(f"sentinel-{i}"),
                log_dir=self.dir.logs_dir,
                master_name=MASTER_NAME,
                master_host=LOOPBACK,
                master_port=master_port,
                timing=self.timing,
                ports=self.ports,
                name=f"sentinel-{i}",
                start_timeout=self.config.start_timeout,
            )
            for i in range(1, SENTINEL_COUNT + 1)
        ]
        self._start_parallel(self.sentinels)
        wait_until(self._quorum_reason, what="Redis replication and the Sentinel quorum", timeout=HA_READY_TIMEOUT)
        self._emit("sentinels", "ready", "primary + 2 replicas in sync, 3 Sentinels agree", time.monotonic() - started)

    def _quorum_reason(self) -> str | None:
        """None once every Sentinel sees the primary, both replicas and both other Sentinels."""
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                view = sentinel_view(client, MASTER_NAME)
            if view.healthy_replicas < len(NODE_NAMES) - 1 or view.other_sentinels < SENTINEL_COUNT - 1:
                return (
                    f"{sentinel.name} sees {view.healthy_replicas} replica(s), "
                    f"{view.other_sentinels} other Sentinel(s), master flags {view.master_flags!r}"
                )
        return self._replication_reason()

    def _replication_reason(self) -> str | None:
        for node in self.redis_nodes.values():
            if node.replication_role() == "slave" and _link_status(node) != "up":
                return f"{node.name}: replication link not up yet"
        return None

    def _endpoints(self) -> ImporterEndpoints:
        postgres = self._need(self.postgres, "postgres")
        s3 = self._need(self.s3, "s3")
        database_url = postgres.database_url
        if POSTGRES_PROXY in self._proxy_ports:
            database_url = database_url.replace(f":{postgres.port}/", f":{self._proxy_ports[POSTGRES_PROXY]}/", 1)
        return ImporterEndpoints(
            database_url=database_url,
            s3_endpoint=s3.endpoint_url,
            s3_bucket=s3.bucket,
            provider_url=self._need(self.provider, "provider").url,
            operator_token=self.operator_token,
            redis_sentinels=tuple(s.address for s in self.sentinels),
            redis_sentinel_master=MASTER_NAME,
            environment=self.config.environment,
        )

    def _publish_endpoints(self) -> None:
        super()._publish_endpoints()
        with self._lock:
            self.info = self.info.model_copy(update={"database_url": self.database_url, "ha": self.layout()})
            self._save()

    def layout(self) -> HaLayout:
        return HaLayout(
            master_name=MASTER_NAME,
            nodes=[
                HaNode(
                    name=name,
                    port=node.port,
                    proxy=name if name in self._proxy_ports else None,
                    proxy_port=self._proxy_ports.get(name),
                    dir=str(node.base_dir),
                )
                for name, node in self.redis_nodes.items()
            ],
            sentinels=[s.address for s in self.sentinels],
            toxiproxy_url=self.toxiproxy.url if self.toxiproxy is not None else None,
            postgres_proxy=POSTGRES_PROXY if POSTGRES_PROXY in self._proxy_ports else None,
            postgres_proxy_port=self._proxy_ports.get(POSTGRES_PROXY),
            direct_database_url=self._need(self.postgres, "postgres").database_url,
            sentinel_down_after_ms=self.timing.down_after_ms,
            sentinel_failover_timeout_ms=self.timing.failover_timeout_ms,
        )

    # --- clients --------------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        raise StackError("the HA topology has no single Redis URL: use redis_client() or the Sentinels")

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in self.sentinels]

    def redis_client(self) -> Redis:
        """A client of whatever node Sentinel currently calls the primary."""
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            self.sentinel_addresses,
            sentinel_kwargs={"socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT},
            socket_timeout=PROBE_TIMEOUT,
            socket_connect_timeout=PROBE_TIMEOUT,
        )
        client: Redis = sentinel.master_for(MASTER_NAME, socket_timeout=PROBE_TIMEOUT)  # type: ignore[no-untyped-call]
        return client

    def toxiproxy_client(self) -> ToxiproxyClient:
        if self.toxiproxy is None:
            raise StackError(f"this HA stack runs without Toxiproxy: {self.toxiproxy_missing}")
        return self.toxiproxy.client()

    # --- Redis faults ---------------------------------------------------------------------------

    def master_node(self) -> str:
        """The node the Sentinels' majority calls the primary now."""
        return master_node_name(self.layout(), self.sentinel_addresses)

    def kill_redis_node(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        node = self.redis_nodes[name]
        self._emit(name, "info", f"sending {sig.name}")
        node.stop(sig, timeout=5.0)

    def rejoin_redis_node(self, name: str) -> str:
        """Start a stopped node again, as a replica of the current primary; returns that primary."""
        node = self.redis_nodes[name]
        if node.is_alive():
            return self.master_node()
        master = self.master_node()
        if master == name:
            node.set_replica_of(None)  # Sentinel never failed over: it comes back as the primary
        else:
            node.set_replica_of(LOOPBACK, self.layout().node(master).client_port)
        started = time.monotonic()
        node.start()
        self._emit(name, "ready", f"rejoined, replica of {master}", time.monotonic() - started)
        return master

    def restart_redis(self, *, hard: bool = False, down_for: float = 0.0) -> float:
        """Restart the current primary (Sentinel fails over if it stays down past down-after)."""
        started = time.monotonic()
        name = self.master_node()
        self.kill_redis_node(name, signal.SIGKILL if hard else signal.SIGTERM)
        if down_for > 0:
            time.sleep(down_for)
        self.rejoin_redis_node(name)
        return time.monotonic() - started

    def sentinel_views(self) -> dict[str, SentinelView | str]:
        """Each Sentinel's picture of the primary, or why it could not be asked."""
        views: dict[str, SentinelView | str] = {}
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    views[sentinel.name] = sentinel_view(client, MASTER_NAME)
            except RedisError as exc:
                views[sentinel.name] = f"{type(exc).__name__}: {exc}"
        return views


def _link_status(node: RedisServer) -> str:
    with node.client() as client:
        info: Mapping[str, object] = client.info("replication")
    return str(info.get("master_link_status", ""))


def master_node_name(layout: HaLayout, sentinels: list[tuple[str, int]]) -> str:
    """Ask each Sentinel for the primary; the address most of them name, mapped to its node."""
    votes: dict[int, int] = {}
    errors: list[str] = []
    for host, port in sentinels:
        try:
            with Redis(host=host, port=port, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT) as c:
                _, master_port = master_addr(c, layout.master_name)
        except RedisError as exc:
            errors.append(f"{host}:{port}: {exc}")
            continue
        votes[master_port] = votes.get(master_port, 0) + 1
    if not votes:
        raise StackError(f"no Sentinel answered: {'; '.join(errors)}")
    port = max(votes, key=lambda p: votes[p])
    node = layout.node_at(port)
    if node is None:
        raise StackError(f"Sentinels name 127.0.0.1:{port} as the primary, which is no node of this stack")
    return node.name
