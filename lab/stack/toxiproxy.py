"""Toxiproxy for the HA stack: the real Go server, and a narrow client for its HTTP API.

The stack puts one proxy in front of Postgres and one in front of each Redis node, so a chaos
experiment can cut the importer off from any of them without touching the servers: a proxy
with ``enabled: false`` is "down" (it stops listening and drops its connections), a ``timeout``
toxic with ``timeout: 0`` holds every byte until it is removed, a ``latency`` toxic slows them.

``ToxiproxyClient`` wraps toxiproxy-python 0.1.1 narrowly, because of two things that library
does that a drill cannot live with:

* its API host and port are **class-level state** (``toxiproxy.api.APIConsumer.host/port``):
  two clients for two servers in one process would talk to whichever was configured last;
* it sets **no request timeout** (plain ``requests`` calls), so a wedged Toxiproxy would hang
  the experiment, and with it the rollback that must re-enable the proxies.

So each client keeps its own address and timeout, and every call goes through the library's
``APIConsumer`` (its requests plumbing and its 404/409/400 → ``NotFound``/``ProxyExists``/
``InvalidToxic`` mapping, which work) while holding a lock that pins the class-level address to
this client's for the duration of the call, with an explicit ``timeout=`` passed through to
``requests``. The library's ``Proxy``/``Toxiproxy`` objects are not used: their methods cannot
pass a timeout. Every failure surfaces as :class:`ToxiproxyError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from toxiproxy import api as toxiproxy_api
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from lab.stack.binaries import find_toxiproxy_server
from lab.stack.component import LAYER_SERVICE, Component, base_environment
from lab.stack.errors import StackError
from lab.stack.ports import PortAllocator

DEFAULT_TIMEOUT = 5.0
CREATE_ATTEMPTS = 3  # a listen port taken between picking and binding is re-picked this often

_consumer_lock = threading.Lock()  # guards the library's class-level host/port


class ToxiproxyError(StackError):
    """Toxiproxy refused a request, answered oddly, or did not answer within the timeout."""


@dataclass(frozen=True)
class ProxySpec:
    """One proxy as Toxiproxy reports it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[str, ...] = ()

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxySpec:
        try:
            return cls(
                name=str(data["name"]),
                listen=str(data["listen"]),
                upstream=str(data["upstream"]),
                enabled=bool(data["enabled"]),
                toxics=tuple(str(t["name"]) for t in data.get("toxics") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise ToxiproxyError(f"unexpected proxy document from Toxiproxy: {data!r}") from exc


class ToxiproxyClient:
    """Talks to one Toxiproxy server; safe to use from several threads and next to other clients."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"Toxiproxy is driven on loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.timeout = timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> ToxiproxyClient:
        rest = url.split("://", 1)[-1].rstrip("/")
        host, _, port = rest.rpartition(":")
        return cls(host, int(port), timeout=timeout)

    # --- transport ---------------------------------------------------------------------

    @contextmanager
    def _pinned(self) -> Iterator[type[Any]]:
        consumer = toxiproxy_api.APIConsumer
        with _consumer_lock:
            saved = (consumer.host, consumer.port)
            consumer.host, consumer.port = self.host, self.port
            try:
                yield consumer
            finally:
                consumer.host, consumer.port = saved

    def _call(self, what: str, send: Callable[[type[Any]], requests.Response]) -> Any:
        try:
            with self._pinned() as consumer:
                response = send(consumer)
        except (NotFound, ProxyExists, InvalidToxic) as exc:
            raise ToxiproxyError(f"{what}: {type(exc).__name__}: {_text(exc)}") from exc
        except requests.RequestException as exc:
            raise ToxiproxyError(f"{what}: Toxiproxy at {self.url} did not answer: {exc}") from exc
        if response.status_code >= 300:
            raise ToxiproxyError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ToxiproxyError(f"{what}: answer is not JSON: {response.text[:300]}") from exc

    def _get(self, path: str) -> Any:
        return self._call(f"GET {path}", lambda c: c.get(path, timeout=self.timeout))

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._call(f"POST {path}", lambda c: c.post(path, json=dict(body), timeout=self.timeout))

    def _delete(self, path: str) -> Any:
        return self._call(f"DELETE {path}", lambda c: c.delete(path, timeout=self.timeout))

    # --- the API ----------------------------------------------------------------------

    def version(self) -> str:
        data = self._get("/version")
        return str(data.get("version", "")) if isinstance(data, dict) else str(data)

    def proxies(self) -> dict[str, ProxySpec]:
        data = self._get("/proxies")
        if not isinstance(data, dict):
            raise ToxiproxyError(f"GET /proxies: expected an object, got {type(data).__name__}")
        return {name: ProxySpec.from_json(body) for name, body in data.items()}

    def proxy(self, name: str) -> ProxySpec:
        return ProxySpec.from_json(self._get(f"/proxies/{name}"))

    def create_proxy(self, name: str, *, listen: str, upstream: str) -> ProxySpec:
        """Create (or re-create, when the address differs) a proxy, enabled."""
        existing = self.proxies().get(name)
        if existing is not None:
            if existing.listen == listen and existing.upstream == upstream:
                return self.set_enabled(name, True)
            self._delete(f"/proxies/{name}")
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        return ProxySpec.from_json(self._post("/proxies", body))

    def set_enabled(self, name: str, enabled: bool) -> ProxySpec:
        """``False`` is "down": Toxiproxy stops listening and closes the proxy's connections."""
        return ProxySpec.from_json(self._post(f"/proxies/{name}", {"enabled": enabled}))

    def add_toxic(
        self,
        proxy: str,
        name: str,
        kind: str,
        attributes: Mapping[str, Any],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        body = {"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": dict(attributes)}
        self._post(f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """True when it was there; a toxic already gone is not an error (rollbacks repeat)."""
        try:
            self._delete(f"/proxies/{proxy}/toxics/{name}")
        except ToxiproxyError as exc:
            if "NotFound" in str(exc):
                return False
            raise
        return True

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        data = self._get(f"/proxies/{proxy}/toxics")
        return list(data) if isinstance(data, list) else []

    def heal(self, proxy: str) -> list[str]:
        """Enable the proxy and remove all its toxics; returns what was undone (for journals)."""
        undone: list[str] = []
        spec = self.proxy(proxy)
        for toxic in spec.toxics:
            if self.remove_toxic(proxy, toxic):
                undone.append(f"removed toxic {toxic}")
        if not spec.enabled:
            self.set_enabled(proxy, True)
            undone.append("enabled")
        return undone


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


class ToxiproxyServer(Component):
    """``toxiproxy-server`` on loopback; healthy once its API answers ``/version``."""

    role = "toxiproxy"
    layer = LAYER_SERVICE
    stop_timeout = 10.0
    start_timeout = 30.0

    def __init__(
        self,
        *,
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "toxiproxy",
        binary: Path | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.binary = binary or find_toxiproxy_server()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, timeout: float = DEFAULT_TIMEOUT) -> ToxiproxyClient:
        return ToxiproxyClient(self.host, self.port, timeout=timeout)

    def command(self) -> list[str]:
        return [str(self.binary), "-host", self.host, "-port", str(self.port)]

    def environment(self) -> dict[str, str]:
        return base_environment()

    def probe(self) -> str | None:
        try:
            self.client(timeout=2.0).version()
        except ToxiproxyError as exc:
            return str(exc)
        return None


def create_proxy_on_free_port(
    client: ToxiproxyClient, ports: PortAllocator, name: str, upstream: str, *, listen_port: int | None = None
) -> ProxySpec:
    """Create a proxy listening on a free port outside the ephemeral range (re-picked if taken)."""
    last: ToxiproxyError | None = None
    for _ in range(CREATE_ATTEMPTS):
        port = listen_port if listen_port is not None else ports.allocate()
        try:
            return client.create_proxy(name, listen=f"{ports.host}:{port}", upstream=upstream)
        except ToxiproxyError as exc:
            last = exc
            if listen_port is not None:
                break
            ports.release(port)
    raise ToxiproxyError(f"could not create proxy {name} -> {upstream}: {last}")
