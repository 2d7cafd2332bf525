"""Provider pages: a cap counted after decompression, a total deadline, the egress policy.

httpx's MockTransport stands in for the network (the decoding of Content-Encoding still
happens in httpx, as in production); the real server versions are integration tests.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from importer.egress.policy import EgressPolicy
from importer.egress.refusal import Refusal
from importer.errors import EgressRefused, MalformedCatalog, ProviderPageTooLarge, ProviderUnavailable
from importer.providers.transport import ProviderTransport

PAGE = {"data": [{"id": "p1"}], "meta": {"page": 1}}


def transport(handler, **options) -> ProviderTransport:  # type: ignore[no-untyped-def]
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProviderTransport(timeout=5.0, max_inline_wait=0.0, quick_retries=1, client=client, **options)


def bomb(decoded_bytes: int) -> bytes:
    return gzip.compress(b" " * decoded_bytes + json.dumps(PAGE).encode(), compresslevel=9)


async def test_a_gzip_bomb_page_stops_at_the_cap_counted_decoded() -> None:
    body = bomb(8 * 1024 * 1024)
    assert len(body) < 64 * 1024  # small on the wire
    t = transport(
        lambda r: httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"}), page_max_bytes=1024 * 1024
    )
    with pytest.raises(ProviderPageTooLarge, match="not a catalog page"):
        await t.get_json("http://p/x")


async def test_a_page_under_the_cap_is_decoded_and_parsed() -> None:
    body = bomb(1000)
    t = transport(
        lambda r: httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"}), page_max_bytes=1024 * 1024
    )
    page, _ = await t.get_json("http://p/x")
    assert page == PAGE


async def test_a_trickling_page_is_cut_at_the_deadline_as_a_transient_error() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(3600):  # an hour of one byte a second, unless cut
            yield b" "
            await asyncio.sleep(1.0)

    t = transport(lambda r: httpx.Response(200, content=trickle()), deadline=0.2)
    with pytest.raises(ProviderUnavailable, match="request deadline"):
        await t.get_json("http://p/x")


async def test_an_error_body_is_quoted_but_never_read_whole() -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1_000_000):
            yield b"x" * 1024

    t = transport(lambda r: httpx.Response(404, content=endless()))
    with pytest.raises(Exception, match=r"404 from http://p/x: x{200}$"):
        await t.get_json("http://p/x")


async def test_a_corrupt_compressed_page_is_malformed() -> None:
    t = transport(lambda r: httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(MalformedCatalog, match="undecodable"):
        await t.get_json("http://p/x")


@pytest.mark.parametrize(
    ("url", "refusal"),
    [("ftp://p/x", Refusal.SCHEME_NOT_ALLOWED), ("http://p:6379/x", Refusal.PORT_NOT_ALLOWED)],
)
async def test_the_base_url_passes_the_egress_policy_before_anything_is_sent(url: str, refusal: Refusal) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=PAGE)

    with pytest.raises(EgressRefused) as caught:
        await transport(handler, policy=EgressPolicy()).get_json(url)
    assert caught.value.refusal is refusal and sent == []
