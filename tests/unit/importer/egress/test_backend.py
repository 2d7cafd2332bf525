"""The network backend: resolve once, check, connect to the checked address (no DNS rebinding).

The resolver is injected and the inner backend records where it was asked to connect, so no
test here opens a socket; the real sockets are in tests/integration/importer/test_egress.py.
"""

from __future__ import annotations

import asyncio
import socket
import typing

import httpcore
import httpx
import pytest

from importer.egress.backend import MAX_READ_BYTES, CheckedNetworkBackend
from importer.egress.client import build_client
from importer.egress.policy import EgressPolicy
from importer.egress.refusal import Refusal
from importer.errors import EgressRefused

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class RecordingStream(httpcore.AsyncNetworkStream):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.written = b""
        self.read_sizes: list[int] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.read_sizes.append(max_bytes)
        chunk, self.answer = self.answer[:max_bytes], self.answer[max_bytes:]
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass


class RecordingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []
        self.streams: list[RecordingStream] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        stream = RecordingStream(RESPONSE)
        self.streams.append(stream)
        return stream


class RebindingResolver:
    """Answers a public address the first time, loopback every time after: a rebinding attack."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


def backend(resolver, policy: EgressPolicy | None = None) -> tuple[CheckedNetworkBackend, RecordingBackend]:  # type: ignore[no-untyped-def]
    inner = RecordingBackend()
    return CheckedNetworkBackend(policy or EgressPolicy(), resolver=resolver, inner=inner), inner


async def test_connects_to_the_address_it_checked_and_keeps_the_host_header() -> None:
    resolver = RebindingResolver(["93.184.216.34"], ["127.0.0.1"])
    checked, inner = backend(resolver)
    async with httpcore.AsyncConnectionPool(network_backend=checked) as pool:
        response = await pool.request("GET", "http://rebind.example/a.jpg")
        assert response.status == 200
    # resolved once, and the inner backend got the checked IP literal, not the name to resolve again
    assert resolver.calls == 1
    assert inner.connected == [("93.184.216.34", 80)]
    assert b"Host: rebind.example\r\n" in inner.streams[0].written

    # the next connection resolves again and now gets loopback: refused before any connect
    async with httpcore.AsyncConnectionPool(network_backend=checked) as pool:
        with pytest.raises(EgressRefused) as caught:
            await pool.request("GET", "http://rebind.example/a.jpg")
    assert caught.value.refusal is Refusal.ADDRESS_NOT_PUBLIC
    assert inner.connected == [("93.184.216.34", 80)]


async def test_a_name_with_any_internal_address_is_refused() -> None:
    checked, inner = backend(RebindingResolver(["93.184.216.34", "10.0.0.7"]))
    with pytest.raises(EgressRefused, match=r"10\.0\.0\.7"):
        await checked.connect_tcp("mixed.example", 443)
    assert inner.connected == []


async def test_an_explicit_exception_connects_to_loopback() -> None:
    policy = EgressPolicy.build(
        schemes=["http"], ports=[80, 443], allowed_private=["127.0.0.1:18100"], resolve_timeout=1.0
    )
    checked, inner = backend(RebindingResolver(["203.0.113.1"]), policy)
    await checked.connect_tcp("127.0.0.1", 18100)
    assert inner.connected == [("127.0.0.1", 18100)]
    with pytest.raises(EgressRefused) as caught:
        await checked.connect_tcp("127.0.0.1", 18101)
    assert caught.value.refusal is Refusal.PORT_NOT_ALLOWED


async def test_resolution_is_bounded_and_its_failures_are_connection_errors() -> None:
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(3600)
        return []

    async def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    policy = EgressPolicy(resolve_timeout=0.05)
    with pytest.raises(httpcore.ConnectTimeout):
        await backend(hangs, policy)[0].connect_tcp("slow.example", 443)
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        await backend(fails, policy)[0].connect_tcp("nowhere.example", 443)


async def test_reads_are_capped_so_one_decode_step_stays_small() -> None:
    checked, inner = backend(RebindingResolver(["93.184.216.34"]))
    stream = await checked.connect_tcp("a.example", 80)
    await stream.read(65536)
    assert inner.streams[0].read_sizes == [MAX_READ_BYTES]


async def test_the_httpx_client_is_built_on_the_checked_backend() -> None:
    """Through httpx: a name resolving to loopback is refused with EgressRefused, nothing sent."""

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with build_client(EgressPolicy(), timeout=1.0, limits=httpx.Limits(), resolver=loopback) as client:
        with pytest.raises(EgressRefused) as caught:
            await client.get("http://internal.example/")
    assert caught.value.refusal is Refusal.ADDRESS_NOT_PUBLIC
