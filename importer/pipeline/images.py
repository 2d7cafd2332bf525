"""Phase 3+4: copy each product image to S3 and make its thumbnail.

Each image is its own idempotent unit: its row is PENDING until both objects are written, so a
resumed job only touches what is left, and a raced job writes the same deterministic keys.
Downloads are guarded (the egress policy: scheme, allowed hosts, port, public addresses only and
a connection to the checked address; a size cap counted after decompression; a total deadline;
content type; decompression-bomb check) because the URLs come from a third party.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

import httpx

from importer.egress.body import read_capped
from importer.egress.policy import EgressPolicy
from importer.egress.refusal import Refusal
from importer.errors import (
    EgressRefused,
    ImageRejected,
    ProviderUnavailable,
    ResponseTooLarge,
    TransientError,
)
from importer.imaging import make_thumbnail
from importer.logs import get_logger
from importer.models import RejectionCode
from importer.storage import ImageStore, original_key, thumbnail_key

log = get_logger(__name__)


DEFAULT_IMAGE_DEADLINE = 60.0


@dataclass(frozen=True)
class ImageLimits:
    allowed_hosts: frozenset[str]
    max_bytes: int
    max_pixels: int
    thumbnail_size: int
    policy: EgressPolicy = field(default_factory=EgressPolicy)
    deadline: float = DEFAULT_IMAGE_DEADLINE  # seconds for a whole download (timeouts are per read)


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


_REFUSAL_CODES = {
    Refusal.URL_INVALID: RejectionCode.IMAGE_URL_INVALID,
    Refusal.SCHEME_NOT_ALLOWED: RejectionCode.IMAGE_SCHEME_NOT_ALLOWED,
    Refusal.HOST_NOT_ALLOWED: RejectionCode.IMAGE_HOST_NOT_ALLOWED,
    Refusal.PORT_NOT_ALLOWED: RejectionCode.IMAGE_PORT_NOT_ALLOWED,
    Refusal.ADDRESS_NOT_PUBLIC: RejectionCode.IMAGE_ADDRESS_NOT_PUBLIC,
}


def _refused(exc: EgressRefused) -> ImageRejected:
    return ImageRejected(str(exc), code=_REFUSAL_CODES[exc.refusal])


def check_url(url: str, allowed_hosts: frozenset[str], policy: EgressPolicy | None = None) -> None:
    """Scheme, host allow-list, port, in that order; the address is checked at connect time.

    Host names are compared normalized (lower case, IDNA-encoded, IPv6 without brackets), as
    the client will use them.
    """
    policy = policy or EgressPolicy()
    try:
        target = policy.parse(url)
        policy.check_scheme(target)
        if target.host not in {h.strip().lower().strip("[]") for h in allowed_hosts}:
            raise EgressRefused(f"host {target.host!r} is not an allowed image host", refusal=Refusal.HOST_NOT_ALLOWED)
        policy.check_port(target.host, target.port)
    except EgressRefused as exc:
        raise _refused(exc) from exc


async def download(client: httpx.AsyncClient, url: str, limits: ImageLimits) -> tuple[bytes, str]:
    """Stream the body under the cap (counted decoded) and the deadline (counted whole).

    The client must be an egress client (``importer.egress.client.build_client``): it checks
    the resolved address and connects to it; a refusal there arrives as EgressRefused.
    """
    check_url(url, limits.allowed_hosts, limits.policy)
    try:
        async with asyncio.timeout(limits.deadline), client.stream("GET", url) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise ProviderUnavailable(f"image CDN answered {status} for {url}")
            if status >= 400:
                raise ImageRejected(f"image CDN answered {status}", code=RejectionCode.IMAGE_HTTP_ERROR)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise ImageRejected(
                    f"content type {content_type or 'missing'!r} is not an image", code=RejectionCode.IMAGE_NOT_IMAGE
                )
            data = await read_capped(response, limits.max_bytes)
            return data, content_type
    except TimeoutError as exc:  # our deadline; httpx's per-read timeouts are httpx.TimeoutException
        raise ProviderUnavailable(f"image download did not finish within its {limits.deadline:g}s deadline") from exc
    except EgressRefused as exc:
        raise _refused(exc) from exc
    except ResponseTooLarge as exc:
        raise ImageRejected(
            f"image exceeds the {limits.max_bytes}-byte cap", code=RejectionCode.IMAGE_TOO_LARGE
        ) from exc
    except httpx.DecodingError as exc:
        raise ImageRejected(f"image body could not be decoded: {exc}", code=RejectionCode.IMAGE_UNDECODABLE) from exc
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
    """Results by kind. ``unreachable``: the image host failed transiently (timeout, 5xx,
    connection error) — counted against that image's own attempts, never the job's tries.
    ``transient``: our own dependencies failed (S3, …) — the job is handed back and retried.
    """

    stored: list[StoredImage]
    rejected: list[tuple[UUID, RejectionCode, str]]
    transient: list[TransientError]
    unreachable: list[tuple[UUID, str]] = field(default_factory=list)


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
                log.warning("image_rejected", image_url=target.url, code=exc.code.value, reason=str(exc))
                outcome.rejected.append((target.image_id, exc.code, str(exc)))
            except ProviderUnavailable as exc:  # the image's host, not one of our dependencies
                log.warning("image_host_unavailable", image_url=target.url, error=str(exc))
                outcome.unreachable.append((target.image_id, str(exc)))
            except TransientError as exc:
                log.warning("image_transient_error", image_url=target.url, error=str(exc))
                outcome.transient.append(exc)

    results = await asyncio.gather(*(_one(t) for t in targets), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):  # a bug, not an image problem: let the runner see it
            raise result
    return outcome
