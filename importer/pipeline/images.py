"""Phase 3+4: copy each product image to S3 and make its thumbnail.

Each image is its own idempotent unit: its row is PENDING until both objects are written, so a
resumed job only touches what is left, and a raced job writes the same deterministic keys.
Downloads are guarded (allowed hosts, size cap while streaming, content type, decompression-bomb
check) because the URLs come from a third party.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from importer.errors import ImageRejected, ProviderUnavailable, TransientError
from importer.imaging import make_thumbnail
from importer.logs import get_logger
from importer.storage import ImageStore, original_key, thumbnail_key

log = get_logger(__name__)


@dataclass(frozen=True)
class ImageLimits:
    allowed_hosts: frozenset[str]
    max_bytes: int
    max_pixels: int
    thumbnail_size: int


@dataclass(frozen=True)
class ImageTarget:
    image_id: UUID
    company_id: UUID
    provider: str
    store_id: str
    external_id: str
    url: str

    @property
    def original_key(self) -> str:
        return original_key(self.company_id, self.provider, self.store_id, self.external_id, self.url)

    @property
    def thumbnail_key(self) -> str:
        return thumbnail_key(self.company_id, self.provider, self.store_id, self.external_id, self.url)


@dataclass(frozen=True)
class StoredImage:
    image_id: UUID
    original_key: str
    thumbnail_key: str
    content_type: str | None
    byte_size: int | None
    skipped: bool


def check_url(url: str, allowed_hosts: frozenset[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ImageRejected(f"unsupported URL scheme {parts.scheme!r}")
    if (parts.hostname or "") not in allowed_hosts:
        raise ImageRejected(f"host {parts.hostname!r} is not an allowed image host")


async def download(client: httpx.AsyncClient, url: str, limits: ImageLimits) -> tuple[bytes, str]:
    """Stream the body, stopping as soon as it passes the size cap."""
    check_url(url, limits.allowed_hosts)
    try:
        async with client.stream("GET", url) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise ProviderUnavailable(f"image CDN answered {status} for {url}")
            if status >= 400:
                raise ImageRejected(f"image CDN answered {status}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise ImageRejected(f"content type {content_type or 'missing'!r} is not an image")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise ImageRejected(f"image is {declared} bytes, over the {limits.max_bytes}-byte cap")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise ImageRejected(f"image exceeds the {limits.max_bytes}-byte cap")
                chunks.append(chunk)
            return b"".join(chunks), content_type
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"timeout downloading {url}") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"connection error downloading {url}: {exc!r}") from exc


async def store_one(
    target: ImageTarget,
    *,
    client: httpx.AsyncClient,
    store: ImageStore,
    limits: ImageLimits,
    check_existing: bool = True,
) -> StoredImage:
    """Store original + thumbnail; skip the download when a previous run already wrote both.

    The existence check only saves work (keys are deterministic, so writing again is harmless);
    callers skip it on a job's first run, where nothing can exist yet.
    """
    if check_existing and await store.exists(target.thumbnail_key):
        return StoredImage(target.image_id, target.original_key, target.thumbnail_key, None, None, skipped=True)
    data, content_type = await download(client, target.url, limits)
    thumb = await asyncio.to_thread(make_thumbnail, data, max_pixels=limits.max_pixels, size=limits.thumbnail_size)
    # Original first, thumbnail last: the thumbnail's existence proves both are there.
    await store.put(target.original_key, data, thumb.source_content_type or content_type)
    await store.put(target.thumbnail_key, thumb.data, thumb.content_type)
    return StoredImage(
        target.image_id,
        target.original_key,
        target.thumbnail_key,
        thumb.source_content_type,
        len(data),
        False,
    )


@dataclass
class BatchOutcome:
    stored: list[StoredImage]
    rejected: list[tuple[UUID, str]]
    transient: list[TransientError]


async def store_batch(
    targets: list[ImageTarget],
    *,
    client: httpx.AsyncClient,
    store: ImageStore,
    limits: ImageLimits,
    concurrency: int,
    check_existing: bool = True,
) -> BatchOutcome:
    """Work a batch with at most ``concurrency`` images in flight; sort results by kind."""
    semaphore = asyncio.Semaphore(concurrency)
    outcome = BatchOutcome(stored=[], rejected=[], transient=[])

    async def _one(target: ImageTarget) -> None:
        async with semaphore:
            try:
                stored = await store_one(
                    target, client=client, store=store, limits=limits, check_existing=check_existing
                )
                outcome.stored.append(stored)
            except ImageRejected as exc:
                log.warning("image_rejected", image_url=target.url, reason=str(exc))
                outcome.rejected.append((target.image_id, str(exc)))
            except TransientError as exc:
                log.warning("image_transient_error", image_url=target.url, error=str(exc))
                outcome.transient.append(exc)

    results = await asyncio.gather(*(_one(t) for t in targets), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):  # a bug, not an image problem: let the runner see it
            raise result
    return outcome
