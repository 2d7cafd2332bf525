"""HTTP/1.1 spoken by hand, for tests that must control when (and whether) a body is sent.

httpx sends a whole body before it reads the answer; a test proving that the API answers
*before* reading the body needs to send the headers and a little of the body, then read.
Every read is bounded, so a server that waits for the rest of the body fails the test instead
of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_head(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, *, content_length: int | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    all_headers = dict(headers or {})
    if content_length is not None:
        all_headers["Content-Length"] = str(content_length)
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def open_to(
    api_url: str, *, local_address: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(api_url)
    assert parts.hostname in ("127.0.0.1", "::1", "localhost"), "tests talk to loopback only"
    local = (local_address, 0) if local_address else None
    return await asyncio.open_connection(parts.hostname, parts.port, local_addr=local)


async def send_all(writer: asyncio.StreamWriter, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` until done or the server closes the connection; the bytes written."""
    sent = 0
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except (ConnectionError, OSError):
        pass
    return sent


async def read_response(reader: asyncio.StreamReader, *, within: float = 20.0) -> RawResponse:
    """The next response; raises TimeoutError when none arrives within ``within`` seconds."""

    async def read() -> RawResponse:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return RawResponse(status, headers, body)

    return await asyncio.wait_for(read(), timeout=within)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
