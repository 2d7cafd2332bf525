"""An httpcore network backend that resolves, checks, and connects to the address it checked.

Why a network backend: checking a URL's host by resolving it, then letting the HTTP client
resolve it again to connect, leaves a window in which DNS can answer differently (a public
address for the check, 127.0.0.1 for the connection: DNS rebinding). httpx has no hook between
resolution and connection, but httpcore asks its network backend to ``connect_tcp(host, port)``
for every new connection. This backend resolves the host once, checks every address with the
policy, and hands the inner backend an IP literal, so the connection goes exactly where the
check looked. Everything above the socket is unchanged: httpcore still sends the URL's host in
the ``Host`` header and uses it for TLS (SNI and certificate verification), because both come
from the request's origin, not from what ``connect_tcp`` connected to.

It also caps each socket read (``MAX_READ_BYTES``): a compressed body is decoded one network read
at a time, so a smaller read bounds how much one step of decompression can produce (deflate
expands at most ~1032x: 16 KiB read -> at most ~16 MiB decoded before the body cap is checked).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable

import httpcore

from importer.egress.addresses import IPAddress, parse_address
from importer.egress.policy import EgressPolicy
from importer.logs import get_logger

log = get_logger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_READ_BYTES = 16 * 1024


async def system_resolver(host: str, port: int) -> list[str]:
    """The OS resolver (getaddrinfo in a thread, through asyncio): every address, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` (bounded by the policy's timeout); failures are connection errors."""
        literal = parse_address(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(self._policy.resolve_timeout):
                answers = await self._resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(
                f"resolving {host!r} took longer than {self._policy.resolve_timeout}s"
            ) from exc
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        addresses = [a for a in (parse_address(x) for x in answers) if a is not None]
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolved to no usable address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        self._policy.check_destination(host, port, addresses)  # raises EgressRefused
        last: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                log.debug("egress_connect_failed", host=host, address=str(address), port=port, error=str(exc))
                continue
            return _BoundedReads(stream)
        assert last is not None  # addresses is never empty
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an egress destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BoundedReads(httpcore.AsyncNetworkStream):
    """Passes everything through, but never reads more than ``MAX_READ_BYTES`` at once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(min(max_bytes, MAX_READ_BYTES), timeout=timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout=timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _BoundedReads(await self._inner.start_tls(ssl_context, server_hostname=server_hostname, timeout=timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)
