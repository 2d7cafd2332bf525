"""Store creation: the admin request's schema, its validation and the registry of stores.

Validation is strict (no "5" for 5, no true for 1) because a drill that sends a wrong spec
should fail at setup with a message, not run for minutes against a catalog it did not mean.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.fake_provider.catalog import (
    DEFAULT_DEAD_HOST_MS,
    DEFAULT_OVERSIZED_BYTES,
    DEFAULT_RATE_LIMIT,
    IMAGE_FAULTS,
    MAX_IMAGES_PER_PRODUCT,
    MAX_PRODUCTS,
    ImageFault,
    MalformedKind,
    StoreSpec,
    pick_by_share,
    total_pages,
)

MAX_SEED = 2**63 - 1
MAX_LATENCY_MS = 120_000
MAX_OVERSIZED_BYTES = 1024 * 1024 * 1024


class BadImages(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    non_image: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    oversized: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    bomb: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    dead_host: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)  # hangs, then 504
    ipv6_url: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)  # unparsable URL
    port_url: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)  # port out of range

    def by_kind(self) -> dict[str, list[int]]:
        return {kind: list(getattr(self, kind)) for kind in IMAGE_FAULTS}


class Pagination(BaseModel):
    """Faults of the page sequence (``catalog.listed`` and the dialects say how each is served)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    short_pages: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    repeat_products: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    total_offset: int = Field(0, ge=-MAX_PRODUCTS, le=MAX_PRODUCTS)
    cycle_at_page: int | None = Field(None, ge=2, le=MAX_PRODUCTS)
    endless: bool = False


class StoreRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    dialect: Literal["roastify", "shopify"]
    products: int = Field(ge=0, le=MAX_PRODUCTS)
    images_per_product: int = Field(1, ge=0, le=MAX_IMAGES_PER_PRODUCT)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    page_latency_ms: int = Field(0, ge=0, le=MAX_LATENCY_MS)
    rate_limit_per_min: int | None = Field(None, ge=0, le=1_000_000)
    malformed_products: list[int] = Field(default_factory=list, max_length=MAX_PRODUCTS)
    bad_images: BadImages = Field(default_factory=BadImages)
    oversized_bytes: int = Field(DEFAULT_OVERSIZED_BYTES, ge=1, le=MAX_OVERSIZED_BYTES)
    # per-kind record damage: {"nul_title": [3, 7], "price_infinity": [12], …}
    bad_records: dict[MalformedKind, list[int]] = Field(default_factory=dict)
    dead_host_ms: int = Field(DEFAULT_DEAD_HOST_MS, ge=0, le=MAX_LATENCY_MS)
    pagination: Pagination = Field(default_factory=Pagination)
    # Shares instead of lists, for large catalogs ({"nul_title": 0.01, …}): a deterministic
    # pick per product (``catalog.pick_by_share``) among those not listed explicitly; the
    # expected-catalog document names every product picked.
    record_shares: dict[MalformedKind, float] = Field(default_factory=dict)
    image_shares: dict[ImageFault, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _indices_make_sense(self) -> Self:
        lists = {
            "malformed_products": self.malformed_products,
            **{f"bad_images.{k}": v for k, v in self.bad_images.by_kind().items()},
            **{f"bad_records.{k}": v for k, v in self.bad_records.items()},
            "pagination.short_pages": self.pagination.short_pages,
            "pagination.repeat_products": self.pagination.repeat_products,
        }
        for name, indices in lists.items():
            outside = sorted({i for i in indices if not 0 <= i < self.products})
            if outside:
                raise ValueError(f"{name}: indices {outside[:10]} are outside 0..{self.products - 1}")
        _disjoint("bad_images", self.bad_images.by_kind())
        _disjoint(
            "bad_records",
            {"malformed_products": self.malformed_products, **{str(k): v for k, v in self.bad_records.items()}},
        )
        if any(self.bad_images.by_kind().values()) and self.images_per_product == 0:
            raise ValueError("bad_images needs images_per_product >= 1 (a product's first image is the bad one)")
        for name, shares in (("record_shares", self.record_shares), ("image_shares", self.image_shares)):
            if any(not 0.0 <= v <= 1.0 for v in shares.values()) or sum(shares.values()) > 1.0:
                raise ValueError(f"{name}: each share is 0..1 and together they are at most 1")
        if self.image_shares and self.images_per_product == 0:
            raise ValueError("image_shares needs images_per_product >= 1 (a product's first image is the bad one)")
        return self

    def record_faults(self) -> dict[int, MalformedKind]:
        """Explicit per-kind lists, then the shares among the products no list names."""
        explicit: dict[int, MalformedKind] = {i: kind for kind, indices in self.bad_records.items() for i in indices}
        taken = set(explicit) | set(self.malformed_products)
        picked = pick_by_share(
            self.seed, self.products, {str(k): v for k, v in self.record_shares.items()}, "records", taken
        )
        return explicit | {i: cast(MalformedKind, kind) for i, kind in picked.items()}

    def image_faults(self) -> dict[str, frozenset[int]]:
        explicit = self.bad_images.by_kind()
        taken = {i for indices in explicit.values() for i in indices}
        picked = pick_by_share(
            self.seed, self.products, {str(k): v for k, v in self.image_shares.items()}, "images", taken
        )
        return {
            kind: frozenset(explicit[kind]) | frozenset(i for i, k in picked.items() if k == kind)
            for kind in IMAGE_FAULTS
        }


def _disjoint(name: str, kinds: dict[str, list[int]]) -> None:
    """One fault per product and family: an expectation must name one reason, not two."""
    seen: dict[int, str] = {}
    overlap: set[int] = set()
    for kind, indices in kinds.items():
        for i in set(indices):
            if i in seen:
                overlap.add(i)
            seen[i] = kind
    if overlap:
        raise ValueError(f"{name}: products {sorted(overlap)[:10]} are listed under more than one kind")


def validation_message(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    details = [{"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": err.get("msg", "")} for err in exc.errors()]
    return "; ".join(f"{d['loc']}: {d['msg']}" if d["loc"] else d["msg"] for d in details), details


class StoreRegistry:
    def __init__(self) -> None:
        self._stores: dict[str, StoreSpec] = {}

    def create(self, req: StoreRequest) -> StoreSpec:
        store_id = f"st_{secrets.token_hex(6)}"
        while store_id in self._stores:  # 48 random bits: practically never loops
            store_id = f"st_{secrets.token_hex(6)}"
        rate = DEFAULT_RATE_LIMIT[req.dialect] if req.rate_limit_per_min is None else req.rate_limit_per_min
        images = req.image_faults()
        spec = StoreSpec(
            store_id=store_id,
            dialect=req.dialect,
            products=req.products,
            images_per_product=req.images_per_product,
            seed=req.seed,
            page_latency_ms=req.page_latency_ms,
            rate_limit_per_min=rate,
            malformed=frozenset(req.malformed_products),
            non_image=images["non_image"],
            oversized=images["oversized"],
            bomb=images["bomb"],
            oversized_bytes=req.oversized_bytes,
            bad_records=req.record_faults(),
            dead_host=images["dead_host"],
            ipv6_url=images["ipv6_url"],
            port_url=images["port_url"],
            dead_host_ms=req.dead_host_ms,
            short_pages=frozenset(req.pagination.short_pages),
            repeat_products=frozenset(req.pagination.repeat_products),
            total_offset=req.pagination.total_offset,
            cycle_at_page=req.pagination.cycle_at_page,
            endless=req.pagination.endless,
        )
        self._stores[store_id] = spec
        return spec

    def get(self, store_id: str) -> StoreSpec | None:
        return self._stores.get(store_id)

    def __len__(self) -> int:
        return len(self._stores)


def store_summary(spec: StoreSpec) -> dict[str, Any]:
    return {
        "store_id": spec.store_id,
        "dialect": spec.dialect,
        "products": spec.products,
        "images_per_product": spec.images_per_product,
        "seed": spec.seed,
        "rate_limit_per_min": spec.rate_limit_per_min,
        "pages_at_100": total_pages(spec.products, 100),
    }
