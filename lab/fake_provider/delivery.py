"""Bodies for delivery faults: a gzip bomb around a real answer, and a trickle.

The bomb is one valid gzip member: ``bomb_bytes`` of spaces, then the real body. Spaces first
because JSON allows leading whitespace (the decoded page is still a valid page, so only a cap
counted after decompression stops a client) and because the padding's compressed form and CRC
can then be computed once per size and reused: the raw deflate stream of the padding ends with
a full flush (byte-aligned, no back-references across it), the real body is compressed by a
fresh compressor and appended, and the trailer's CRC continues from the padding's.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from functools import lru_cache

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime, unknown OS
_PAD_CHUNK = 1024 * 1024
_SEND_CHUNK = 64 * 1024


@lru_cache(maxsize=4)
def _padding(size: int) -> tuple[bytes, int]:
    """Raw deflate of ``size`` spaces ending in a full flush, and their CRC-32 (~3.5 s/GiB, once)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b" " * _PAD_CHUNK
    parts: list[bytes] = []
    crc = 0
    left = size
    while left > 0:
        piece = chunk if left >= _PAD_CHUNK else chunk[:left]
        parts.append(compressor.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(compressor.flush(zlib.Z_FULL_FLUSH))
    return b"".join(parts), crc


def gzip_bomb(body: bytes, pad_bytes: int) -> bytes:
    """``pad_bytes`` spaces then ``body``, as one gzip member (about pad_bytes / 1000 bytes)."""
    padding, crc = _padding(pad_bytes)
    tail = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = tail.compress(body) + tail.flush(zlib.Z_FINISH)
    trailer = struct.pack("<II", zlib.crc32(body, crc), (pad_bytes + len(body)) & 0xFFFFFFFF)
    return GZIP_HEADER + padding + deflated + trailer


async def gzip_bomb_stream(body: bytes, pad_bytes: int) -> AsyncIterator[bytes]:
    """The bomb, built off the event loop (the first build of a size takes seconds)."""
    data = await asyncio.to_thread(gzip_bomb, body, pad_bytes)
    for start in range(0, len(data), _SEND_CHUNK):
        yield data[start : start + _SEND_CHUNK]


async def trickle(body: bytes, bytes_per_s: int) -> AsyncIterator[bytes]:
    """``body`` at ``bytes_per_s``: each piece arrives a second after the last."""
    step = max(1, bytes_per_s)
    for start in range(0, len(body), step):
        if start:
            await asyncio.sleep(1.0)
        yield body[start : start + step]


def rebase_images(value: object, old_base: str, new_base: str) -> object:
    """``value`` with every string under ``old_base/cdn/`` moved to ``new_base/cdn/``.

    Walks the page generically (both dialects, whatever fields they grow) and only touches
    image URLs: the Shopify ``Link`` header and anything else keep the real base.
    """
    prefix = f"{old_base}/cdn/"
    if isinstance(value, str):
        return f"{new_base.rstrip('/')}/cdn/{value[len(prefix) :]}" if value.startswith(prefix) else value
    if isinstance(value, list):
        return [rebase_images(item, old_base, new_base) for item in value]
    if isinstance(value, dict):
        return {key: rebase_images(item, old_base, new_base) for key, item in value.items()}
    return value
