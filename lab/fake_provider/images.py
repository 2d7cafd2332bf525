"""The image CDN's bodies: deterministic JPEGs (cached) and the deliberately bad ones.

Encoding a JPEG takes about a millisecond of CPU; with 10,000+ images per drill on two cores
that is worth caching, and worth keeping off the event loop so page requests never queue
behind it. Concurrent requests for the same image share one render.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import struct
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from functools import lru_cache

from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 320, 240
JPEG_QUALITY = 65
BOMB_SIDE = 30_000
NON_IMAGE_BODY = (
    b"<!doctype html><html><head><title>Moved</title></head>"
    b"<body><p>This image has moved. Please sign in to view it.</p></body></html>"
)
_CHUNK = 64 * 1024
_ZERO_CHUNK = bytes(_CHUNK)
_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"

ImageKey = tuple[int, int, int]  # (seed, product index, image index)


def render_jpeg(seed: int, product_index: int, image_index: int) -> bytes:
    """Shapes and stripes in colours from the key: distinct per image, 5-20 KB, ~1 ms."""
    rnd = random.Random(f"{seed}:{product_index}:{image_index}")
    base = (rnd.randrange(40, 216), rnd.randrange(40, 216), rnd.randrange(40, 216))
    img = Image.new("RGB", (WIDTH, HEIGHT), base)
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = rnd.randrange(-40, WIDTH), rnd.randrange(-40, HEIGHT)
        box = (x0, y0, x0 + rnd.randrange(10, 120), y0 + rnd.randrange(10, 90))
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        if rnd.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    stripe = (max(0, base[0] - 30), max(0, base[1] - 30), max(0, base[2] - 30))
    step = rnd.randrange(6, 14)
    for x in range(0, WIDTH, step):
        draw.line((x, 0, x + HEIGHT // 2, HEIGHT), fill=stripe, width=1)
    draw.text((8, 8), f"seed {seed} product {product_index} image {image_index}", fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class JpegCache:
    """LRU of rendered JPEGs, rendering misses in a worker thread.

    Reads and writes happen on the event loop only (the thread just renders), so the
    OrderedDict needs no lock; ``_inflight`` makes a burst of requests for one image render once.
    A failed render is logged and raised to every waiter; nothing is cached for it.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[ImageKey, bytes] = OrderedDict()
        self._inflight: dict[ImageKey, asyncio.Task[bytes]] = {}
        self.hits = 0
        self.misses = 0

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
        }

    async def get(self, key: ImageKey) -> bytes:
        cached = self._entries.get(key)
        if cached is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return cached
        task = self._inflight.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.ensure_future(self._render(key))
            self._inflight[key] = task
        else:
            self.hits += 1
        # shield: a client hanging up must not cancel a render other requests are waiting for
        return await asyncio.shield(task)

    async def _render(self, key: ImageKey) -> bytes:
        try:
            body = await asyncio.to_thread(render_jpeg, *key)
        except Exception:
            log.exception("jpeg render failed", extra={"image_key": key})
            raise
        finally:
            self._inflight.pop(key, None)
        if self.max_entries:
            self._entries[key] = body
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body


@lru_cache(maxsize=1)
def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A ~100-byte PNG declaring side x side pixels: opening it is harmless, decoding is not."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * side), 9)  # one black row; the rest is missing on purpose
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def oversized_body(total: int) -> AsyncIterator[bytes]:
    """``total`` bytes that start like a JPEG, streamed so memory stays flat whatever the size."""
    head = _JPEG_HEAD[:total]
    sent = len(head)
    yield head
    while sent < total:
        n = min(_CHUNK, total - sent)
        yield _ZERO_CHUNK if n == _CHUNK else _ZERO_CHUNK[:n]
        sent += n
