"""Domain values shared by the API, the worker and the reconciler."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


class Tier(enum.StrEnum):
    BASIC = "BASIC"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class Provider(enum.StrEnum):
    ROASTIFY = "roastify"
    SHOPIFY = "shopify"


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobOutcome(enum.StrEnum):
    """How a COMPLETED job ended, like a check run's conclusion beside its status.

    CLEAN: every record imported. WITH_REJECTIONS: some records were rejected, each with a code
    and a reason (the rest imported). UNVERIFIED: the catalog's pages did not add up (short pages,
    totals that disagree, repeated products), so the job cannot vouch that nothing is missing.
    """

    CLEAN = "CLEAN"
    WITH_REJECTIONS = "WITH_REJECTIONS"
    UNVERIFIED = "UNVERIFIED"


class RejectionCode(enum.StrEnum):
    """Why one record was rejected; tenants see the code, logs carry the detail.

    Shared by the provider parsers (products), the image pipeline (images, egress checks) and
    the page checks (verification issues), so one job's result counts every kind in one map.
    """

    # products
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    TEXT_NOT_STORABLE = "text_not_storable"
    TEXT_TOO_LONG = "text_too_long"
    NUMBER_NOT_FINITE = "number_not_finite"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    TOO_MANY_IMAGES = "too_many_images"
    # images
    IMAGE_URL_INVALID = "image_url_invalid"
    IMAGE_SCHEME_NOT_ALLOWED = "image_scheme_not_allowed"
    IMAGE_HOST_NOT_ALLOWED = "image_host_not_allowed"
    IMAGE_PORT_NOT_ALLOWED = "image_port_not_allowed"
    IMAGE_ADDRESS_NOT_PUBLIC = "image_address_not_public"
    IMAGE_UNREACHABLE = "image_unreachable"
    IMAGE_HTTP_ERROR = "image_http_error"
    IMAGE_NOT_IMAGE = "image_not_image"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_UNDECODABLE = "image_undecodable"
    IMAGE_BOMB = "image_bomb"
    IMAGE_FORMAT_UNSUPPORTED = "image_format_unsupported"
    IMAGE_REJECTED = "image_rejected"  # a rejection raised without a more precise code


class VerificationIssue(enum.StrEnum):
    """What a job could not verify about a catalog's pages (its outcome is then UNVERIFIED)."""

    SHORT_PAGE = "short_page"
    TOTAL_MISMATCH = "total_mismatch"
    REPEATED_PRODUCTS = "repeated_products"
    CURSOR_CYCLE = "cursor_cycle"
    PAGE_LIMIT_EXCEEDED = "page_limit_exceeded"


class Phase(enum.StrEnum):
    QUEUED = "queued"
    PRODUCTS = "products"
    IMAGES = "images"
    DONE = "done"


@dataclass(frozen=True)
class Company:
    id: UUID
    name: str
    tier: Tier
    vip: bool


@dataclass(frozen=True)
class JobCounts:
    products_imported: int = 0
    pages_fetched: int = 0
    images_total: int = 0
    images_stored: int = 0
    images_rejected: int = 0
    thumbnails_created: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "products_imported": self.products_imported,
            "pages_fetched": self.pages_fetched,
            "images_total": self.images_total,
            "images_stored": self.images_stored,
            "images_rejected": self.images_rejected,
            "thumbnails_created": self.thumbnails_created,
        }


@dataclass(frozen=True)
class Job:
    id: UUID
    company_id: UUID
    provider: Provider
    store_id: str
    include_images: bool
    status: JobStatus
    phase: Phase
    page_cursor: str | None
    run_token: UUID | None
    attempts: int
    queue_try: int
    error: str | None
    correlation_id: str | None
    counts: JobCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)
    outcome: JobOutcome | None = None
    products_rejected: int = 0
    rejection_counts: dict[str, int] = field(default_factory=dict)
    verification_issues: list[dict[str, Any]] = field(default_factory=list)
    run_started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None

    @property
    def import_source(self) -> str:
        """Products are unique per company *and store*, so the source names both."""
        return f"{self.provider.value}:{self.store_id}"

    @classmethod
    def from_record(cls, r: Any) -> Job:
        return cls(
            id=r["id"],
            company_id=r["company_id"],
            provider=Provider(r["provider"]),
            store_id=r["store_id"],
            include_images=r["include_images"],
            status=JobStatus(r["status"]),
            phase=Phase(r["phase"]),
            page_cursor=r["page_cursor"],
            run_token=r["run_token"],
            attempts=r["attempts"],
            queue_try=r["queue_try"],
            error=r["error"],
            correlation_id=r["correlation_id"],
            counts=JobCounts(
                products_imported=r["products_imported"],
                pages_fetched=r["pages_fetched"],
                images_total=r["images_total"],
                images_stored=r["images_stored"],
                images_rejected=r["images_rejected"],
                thumbnails_created=r["thumbnails_created"],
            ),
            created_at=r["created_at"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            # .get: partial SELECTs and rows from before migration 0002 lack these columns
            outcome=JobOutcome(r["outcome"]) if r.get("outcome") else None,
            products_rejected=r.get("products_rejected") or 0,
            rejection_counts=_json(r.get("rejection_counts"), {}),
            verification_issues=_json(r.get("verification_issues"), []),
            run_started_at=r.get("run_started_at"),
            heartbeat_at=r.get("heartbeat_at"),
            idempotency_key=r.get("idempotency_key"),
            request_hash=r.get("request_hash"),
        )


def _json(value: Any, default: Any) -> Any:
    """jsonb arrives decoded through the pool's codec; a bare connection hands over text."""
    if value is None:
        return default
    if isinstance(value, str):
        return json.loads(value)
    return value


@dataclass(frozen=True)
class RejectedImage:
    """An image URL of a good product that cannot even be tried (invalid URL, scheme).

    ``url`` is the URL when it is storable text (it then gets a REJECTED image row), else None.
    """

    url: str | None
    position: int
    code: RejectionCode
    reason: str


@dataclass(frozen=True)
class ProductRecord:
    """One product as every provider dialect is normalised to."""

    external_id: str
    title: str
    description: str
    price_cents: int | None
    currency: str | None
    image_urls: tuple[str, ...]
    rejected_images: tuple[RejectedImage, ...] = ()


@dataclass(frozen=True)
class RejectedRecord:
    """One catalog record refused by a parser: where it was, what it was, why (code + words)."""

    kind: str  # "product" | "image" | "page", as in import_rejections.kind
    position: int | None
    external_id: str | None
    code: RejectionCode
    reason: str


@dataclass(frozen=True)
class CatalogPage:
    """One parsed page: the good products, the refused records, and what the page declared.

    ``records`` counts every entry the page listed (good, rejected and within-page repeats),
    which is what the page checks compare with the page size and the declared totals.
    """

    products: list[ProductRecord]
    next_cursor: str | None
    rejected: list[RejectedRecord] = field(default_factory=list)
    records: int = 0
    repeated_on_page: int = 0
    page_number: int | None = None
    declared_per_page: int | None = None
    declared_total_pages: int | None = None
    declared_total: int | None = None
    # An empty page that still linked to a next one: paging ends (nothing to page past), but the
    # catalog cannot be vouched for (the rest may be missing), so the page checks report it.
    empty_with_next: bool = False
