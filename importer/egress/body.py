"""Reading a response body under a byte cap counted after decompression.

``aiter_bytes`` yields the body as decoded by httpx (gzip, deflate, br, zstd), so the count
is of what the process holds, not of what crossed the network: a 1 MB gzip body that inflates
to gigabytes stops at the cap. A declared ``Content-Length`` above the cap stops before reading.
"""

from __future__ import annotations

import httpx

from importer.errors import ResponseTooLarge


async def read_capped(response: httpx.Response, max_bytes: int, *, truncate: bool = False) -> bytes:
    """The decoded body, at most ``max_bytes``; past that raise ResponseTooLarge, or with
    ``truncate`` return the first ``max_bytes`` (for quoting an error body).
    """
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"body declares {declared} bytes, over the {max_bytes}-byte cap", limit=max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > max_bytes:
            if truncate:
                chunks.append(chunk[: max_bytes - size])
                break
            raise ResponseTooLarge(f"body exceeds the {max_bytes}-byte cap (decoded)", limit=max_bytes)
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)
