"""Deterministic catalogs: product ``i`` of a store is a pure function of (seed, i).

Nothing is materialised: a page, an expected-catalog document or an image is computed from the
store's spec when asked for, so a 100,000-product store costs a few hundred bytes until it is
read, and a checker that knows the spec knows exactly what an import must produce. The store id
does not enter the derivation, so two stores made with the same seed hold the same products
(and the image cache serves both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, TypedDict

Dialect = Literal["roastify", "shopify"]
MalformedKind = Literal["missing_id", "bad_price"]
ImageFault = Literal["non_image", "oversized", "bomb"]

MAX_PRODUCTS = 100_000
MAX_IMAGES_PER_PRODUCT = 20
DEFAULT_OVERSIZED_BYTES = 11 * 1024 * 1024
DEFAULT_RATE_LIMIT: dict[Dialect, int] = {"roastify": 100, "shopify": 120}

_ORIGINS = (
    "Ethiopia Yirgacheffe",
    "Kenya Nyeri",
    "Colombia Huila",
    "Guatemala Antigua",
    "Sumatra Mandheling",
    "Costa Rica Tarrazu",
    "Brazil Cerrado",
    "Rwanda Kivu",
    "Panama Boquete",
    "Peru Cajamarca",
)
_ROASTS = ("Light", "City", "Medium", "Full City", "Dark", "Espresso")
_FORMS = ("Whole Bean", "Ground", "Single Serve", "Cold Brew Pack")
_NOTES = ("jasmine", "blueberry", "cocoa", "caramel", "citrus", "molasses", "stone fruit", "hazelnut")


@dataclass(frozen=True)
class StoreSpec:
    """Everything that defines a store; immutable so a catalog cannot drift under a running import."""

    store_id: str
    dialect: Dialect
    products: int
    images_per_product: int = 1
    seed: int = 0
    page_latency_ms: int = 0
    rate_limit_per_min: int = 100
    malformed: frozenset[int] = field(default_factory=frozenset)
    non_image: frozenset[int] = field(default_factory=frozenset)
    oversized: frozenset[int] = field(default_factory=frozenset)
    bomb: frozenset[int] = field(default_factory=frozenset)
    oversized_bytes: int = DEFAULT_OVERSIZED_BYTES


@dataclass(frozen=True)
class Product:
    index: int
    external_id: str
    numeric_id: int
    title: str
    description: str
    price_cents: int
    image_count: int
    malformed: MalformedKind | None


def _digest(seed: int, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=16).digest()


def seed_tag(seed: int) -> str:
    """Eight hex characters naming the seed inside ids, so ids of different seeds differ."""
    return hashlib.blake2b(f"seed:{seed}".encode(), digest_size=4).hexdigest()


def numeric_base(seed: int) -> int:
    """Shopify-style ids are 13-digit-ish integers below 2**53 (JSON-safe for any client)."""
    return (int(seed_tag(seed), 16) % 9_000_000 + 1_000_000) * 1_000_000


def malformed_kind(index: int) -> MalformedKind:
    """Alternate the two kinds of damage so a malformed list exercises both parser paths."""
    return "missing_id" if index % 2 == 0 else "bad_price"


def product(spec: StoreSpec, index: int) -> Product:
    if not 0 <= index < spec.products:
        raise IndexError(f"store {spec.store_id} has no product {index} (it has {spec.products})")
    d = _digest(spec.seed, index)
    origin = _ORIGINS[d[0] % len(_ORIGINS)]
    roast = _ROASTS[d[1] % len(_ROASTS)]
    form = _FORMS[d[2] % len(_FORMS)]
    first = d[3] % len(_NOTES)
    notes = (_NOTES[first], _NOTES[(first + 1 + d[7] % (len(_NOTES) - 1)) % len(_NOTES)])  # two distinct notes
    price_cents = 500 + int.from_bytes(d[4:6], "big") % 9_500
    numeric_id = numeric_base(spec.seed) + index + 1
    external_id = f"rst_{seed_tag(spec.seed)}_{index:06d}" if spec.dialect == "roastify" else str(numeric_id)
    return Product(
        index=index,
        external_id=external_id,
        numeric_id=numeric_id,
        title=f"{origin} {roast} Roast, {form} #{index}",
        description=f"{roast} roast from {origin}; notes of {notes[0]} and {notes[1]}.",
        price_cents=price_cents,
        image_count=spec.images_per_product,
        malformed=malformed_kind(index) if index in spec.malformed else None,
    )


def image_fault(spec: StoreSpec, product_index: int, image_index: int) -> ImageFault | None:
    """Only a product's first image is spoiled, so its other images still prove the good path."""
    if image_index != 0:
        return None
    if product_index in spec.non_image:
        return "non_image"
    if product_index in spec.oversized:
        return "oversized"
    if product_index in spec.bomb:
        return "bomb"
    return None


def image_url(base_url: str, store_id: str, product_index: int, image_index: int) -> str:
    return f"{base_url}/cdn/{store_id}/{product_index}/{image_index}.jpg"


def image_urls(spec: StoreSpec, base_url: str, p: Product) -> list[str]:
    return [image_url(base_url, spec.store_id, p.index, j) for j in range(p.image_count)]


# --- page arithmetic ------------------------------------------------------------------------


def total_pages(total: int, per_page: int) -> int:
    return -(-total // per_page) if per_page > 0 else 0


def page_range(total: int, offset: int, limit: int) -> range:
    """Indices of one page; an offset past the end yields an empty page rather than an error."""
    start = max(0, min(offset, total))
    return range(start, min(total, start + max(0, limit)))


# --- what an import must produce -------------------------------------------------------------


class ExpectedImage(TypedDict):
    url: str
    expect: Literal["stored", "rejected"]


class ExpectedProduct(TypedDict):
    external_id: str
    title: str
    price_cents: int
    images: list[ExpectedImage]
    malformed: bool


def expected_product(spec: StoreSpec, index: int, base_url: str) -> ExpectedProduct:
    p = product(spec, index)
    return {
        "external_id": p.external_id,
        "title": p.title,
        "price_cents": p.price_cents,
        "images": [
            {"url": url, "expect": "rejected" if image_fault(spec, index, j) else "stored"}
            for j, url in enumerate(image_urls(spec, base_url, p))
        ],
        "malformed": p.malformed is not None,
    }


def expected_counts(spec: StoreSpec) -> dict[str, int]:
    """Counted arithmetically (no product is generated), so large stores answer at once.

    Images of malformed products are counted like any other: whether they get stored depends on
    how the importer treats the malformed page, which is the checker's call, not ours.
    """
    images = spec.products * spec.images_per_product
    rejected = len(spec.non_image | spec.oversized | spec.bomb) if spec.images_per_product else 0
    return {
        "products": spec.products,
        "valid_products": spec.products - len(spec.malformed),
        "malformed_products": len(spec.malformed),
        "images": images,
        "images_stored": images - rejected,
        "images_rejected": rejected,
    }
