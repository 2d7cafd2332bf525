"""Store creation: the admin request's schema, its validation and the registry of stores.

Validation is strict (no "5" for 5, no true for 1) because a drill that sends a wrong spec
should fail at setup with a message, not run for minutes against a catalog it did not mean.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.fake_provider.catalog import (
    DEFAULT_OVERSIZED_BYTES,
    DEFAULT_RATE_LIMIT,
    MAX_IMAGES_PER_PRODUCT,
    MAX_PRODUCTS,
    StoreSpec,
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

    @model_validator(mode="after")
    def _indices_make_sense(self) -> Self:
        lists = {
            "malformed_products": self.malformed_products,
            "bad_images.non_image": self.bad_images.non_image,
            "bad_images.oversized": self.bad_images.oversized,
            "bad_images.bomb": self.bad_images.bomb,
        }
        for name, indices in lists.items():
            outside = sorted({i for i in indices if not 0 <= i < self.products})
            if outside:
                raise ValueError(f"{name}: indices {outside[:10]} are outside 0..{self.products - 1}")
        bad = [set(self.bad_images.non_image), set(self.bad_images.oversized), set(self.bad_images.bomb)]
        if any(bad) and self.images_per_product == 0:
            raise ValueError("bad_images needs images_per_product >= 1 (a product's first image is the bad one)")
        overlap = (bad[0] & bad[1]) | (bad[0] & bad[2]) | (bad[1] & bad[2])
        if overlap:
            raise ValueError(f"bad_images: products {sorted(overlap)[:10]} are listed under more than one kind")
        return self


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
        spec = StoreSpec(
            store_id=store_id,
            dialect=req.dialect,
            products=req.products,
            images_per_product=req.images_per_product,
            seed=req.seed,
            page_latency_ms=req.page_latency_ms,
            rate_limit_per_min=rate,
            malformed=frozenset(req.malformed_products),
            non_image=frozenset(req.bad_images.non_image),
            oversized=frozenset(req.bad_images.oversized),
            bomb=frozenset(req.bad_images.bomb),
            oversized_bytes=req.oversized_bytes,
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
