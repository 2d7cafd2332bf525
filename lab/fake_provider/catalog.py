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
from typing import Any, Literal, TypedDict, get_args

Dialect = Literal["roastify", "shopify"]
# Damage to one product record; each must make the importer reject that product (and only it).
MalformedKind = Literal[
    "missing_id",
    "bad_price",
    "nul_title",
    "surrogate_title",
    "long_title",
    "price_infinity",
    "price_nan",
    "price_huge_exponent",
    "price_negative",
    "price_over_range",
    "too_many_images",
]
# Damage to a product's first image; the product itself is good and must be imported.
ImageFault = Literal["non_image", "oversized", "bomb", "dead_host", "ipv6_url", "port_url"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = get_args(MalformedKind)
IMAGE_FAULTS: tuple[ImageFault, ...] = get_args(ImageFault)
# The rejection code the importer must give each kind of damage (its RejectionCode values; the
# proving ground does not import the importer, so the strings are the contract).
EXPECTED_CODES: dict[str, str] = {
    "missing_id": "missing_field",
    "bad_price": "invalid_field",
    "nul_title": "text_not_storable",
    "surrogate_title": "text_not_storable",
    "long_title": "text_too_long",
    "price_infinity": "number_not_finite",
    "price_nan": "number_not_finite",
    "price_huge_exponent": "number_out_of_range",
    "price_negative": "number_out_of_range",
    "price_over_range": "number_out_of_range",
    "too_many_images": "too_many_images",
    "non_image": "image_not_image",
    "oversized": "image_too_large",
    "bomb": "image_bomb",
    "dead_host": "image_unreachable",
    "ipv6_url": "image_url_invalid",
    "port_url": "image_url_invalid",
}
LONG_TITLE_CHARS = 5_000  # over the importer's default limit (1,000)
TOO_MANY_IMAGES = 300  # over the importer's default limit (250)
DEFAULT_DEAD_HOST_MS = 10_000  # how long a dead image host hangs before answering 504
DEFAULT_EXPECTED_PER_PAGE = 100  # the importer's default page size, for page-dependent faults

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
    # per-kind record damage (index -> kind); ``malformed`` above alternates missing_id/bad_price
    bad_records: dict[int, MalformedKind] = field(default_factory=dict, hash=False)
    # image faults beyond the three above: a host that only hangs, URLs that cannot be parsed
    dead_host: frozenset[int] = field(default_factory=frozenset)
    ipv6_url: frozenset[int] = field(default_factory=frozenset)
    port_url: frozenset[int] = field(default_factory=frozenset)
    dead_host_ms: int = DEFAULT_DEAD_HOST_MS
    # pagination faults (see ``listed``): products left out of their page (the page comes back
    # short), products listed again on the next page, a declared total off by ``total_offset``
    # (Roastify only: Shopify pages declare no total), a page whose next cursor points at itself,
    # and a catalog that never ends (pages wrap around, the declared total grows with each page)
    short_pages: frozenset[int] = field(default_factory=frozenset)
    repeat_products: frozenset[int] = field(default_factory=frozenset)
    total_offset: int = 0
    cycle_at_page: int | None = None
    endless: bool = False


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


def pick_by_share(seed: int, products: int, shares: dict[str, float], salt: str, taken: set[int]) -> dict[int, str]:
    """Deterministic fault assignment for large catalogs: each product draws one number from
    (seed, salt, index) and falls into at most one kind's share (shares sum to at most 1).

    ``taken`` products (listed explicitly) keep their own fault and are skipped.
    """
    if not shares:
        return {}
    bounds: list[tuple[float, str]] = []
    total = 0.0
    for kind in sorted(shares):
        total += shares[kind]
        bounds.append((total, kind))
    picked: dict[int, str] = {}
    for i in range(products):
        if i in taken:
            continue
        digest = hashlib.blake2b(f"{seed}:{salt}:{i}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        for bound, kind in bounds:
            if u < bound:
                picked[i] = kind
                break
    return picked


def seed_tag(seed: int) -> str:
    """Eight hex characters naming the seed inside ids, so ids of different seeds differ."""
    return hashlib.blake2b(f"seed:{seed}".encode(), digest_size=4).hexdigest()


def numeric_base(seed: int) -> int:
    """Shopify-style ids are 13-digit-ish integers below 2**53 (JSON-safe for any client)."""
    return (int(seed_tag(seed), 16) % 9_000_000 + 1_000_000) * 1_000_000


def malformed_kind(index: int) -> MalformedKind:
    """Alternate the two kinds of damage so a malformed list exercises both parser paths."""
    return "missing_id" if index % 2 == 0 else "bad_price"


def damage(spec: StoreSpec, index: int) -> MalformedKind | None:
    """The product's damage: a per-kind fault first, else the alternating ``malformed`` list."""
    kind = spec.bad_records.get(index)
    if kind is not None:
        return kind
    return malformed_kind(index) if index in spec.malformed else None


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
        malformed=damage(spec, index),
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
    if product_index in spec.dead_host:
        return "dead_host"
    if product_index in spec.ipv6_url:
        return "ipv6_url"
    if product_index in spec.port_url:
        return "port_url"
    return None


def image_url(base_url: str, store_id: str, product_index: int, image_index: int) -> str:
    return f"{base_url}/cdn/{store_id}/{product_index}/{image_index}.jpg"


def image_urls(spec: StoreSpec, base_url: str, p: Product) -> list[str]:
    """The URLs a page lists; an unparsable-URL fault replaces the first one."""
    urls = [image_url(base_url, spec.store_id, p.index, j) for j in range(p.image_count)]
    if p.malformed == "too_many_images":
        urls += [image_url(base_url, spec.store_id, p.index, j) for j in range(p.image_count, TOO_MANY_IMAGES)]
    fault = image_fault(spec, p.index, 0) if urls else None
    path = f"/cdn/{spec.store_id}/{p.index}/0.jpg"
    if fault == "ipv6_url":
        urls[0] = f"http://[::1{path}"  # unclosed IPv6 literal: urlsplit raises ValueError
    elif fault == "port_url":
        urls[0] = f"http://127.0.0.1:99999{path}"  # port out of range: .port raises ValueError
    return urls


# --- pagination -------------------------------------------------------------------------------


def listed(spec: StoreSpec, start: int, per_page: int) -> list[int]:
    """Product indices listed by the page whose slot starts at ``start`` (page slots never move).

    ``short_pages`` products are left out (their page is short); ``repeat_products`` are listed
    again at the end of the next page; an ``endless`` catalog wraps around past its end.
    """
    if spec.endless and spec.products:
        start %= total_pages(spec.products, per_page) * per_page
    own = [i for i in page_range(spec.products, start, per_page) if i not in spec.short_pages]
    again = sorted(i for i in spec.repeat_products if start - per_page <= i < start and i not in spec.short_pages)
    return own + again


def declared_total(spec: StoreSpec) -> int:
    return spec.products + spec.total_offset


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
    code: str | None


class ExpectedProduct(TypedDict):
    external_id: str
    title: str
    price_cents: int
    images: list[ExpectedImage]
    malformed: bool
    # imported: must exist once; rejected: must not exist, and the job must count ``code``;
    # omitted: never listed by the provider's pages (a pagination fault), must not exist
    expect: Literal["imported", "rejected", "omitted"]
    code: str | None


def reachable_pages(spec: StoreSpec, per_page: int) -> int | None:
    """Pages an importer reads before a cursor cycle stops it; None = every page."""
    return spec.cycle_at_page if spec.cycle_at_page is not None else None


def omitted(spec: StoreSpec, index: int, per_page: int) -> bool:
    if index in spec.short_pages:
        return True
    pages = reachable_pages(spec, per_page)
    return pages is not None and index >= pages * per_page


def expected_product(
    spec: StoreSpec, index: int, base_url: str, per_page: int = DEFAULT_EXPECTED_PER_PAGE
) -> ExpectedProduct:
    p = product(spec, index)
    rejected = p.malformed is not None
    gone = omitted(spec, index, per_page)
    images: list[ExpectedImage] = []
    if not rejected and not gone:
        for j, url in enumerate(image_urls(spec, base_url, p)):
            fault = image_fault(spec, index, j)
            images.append(
                {
                    "url": url,
                    "expect": "rejected" if fault else "stored",
                    "code": EXPECTED_CODES[fault] if fault else None,
                }
            )
    return {
        "external_id": p.external_id,
        "title": p.title,
        "price_cents": p.price_cents,
        "images": images,
        "malformed": rejected,
        "expect": "omitted" if gone else "rejected" if rejected else "imported",
        "code": EXPECTED_CODES[p.malformed] if rejected and p.malformed and not gone else None,
    }


def pagination_faults(spec: StoreSpec, per_page: int = DEFAULT_EXPECTED_PER_PAGE) -> list[str]:
    """Verification issue codes an import of this store must report (it may report more).

    A fault the importer cannot see is not listed: a product left out of the *last* page, or a
    Shopify total (Shopify pages declare none).
    """
    codes: set[str] = set()
    pages = total_pages(spec.products, per_page)
    if any(i // per_page + 1 < pages for i in spec.short_pages):
        codes.add("short_page")
    if spec.dialect == "roastify" and (spec.short_pages or spec.total_offset):
        codes.add("total_mismatch")
    if any(i // per_page + 1 < pages for i in spec.repeat_products):
        codes.add("repeated_products")
    if spec.cycle_at_page is not None:
        codes.add("cursor_cycle")
    if spec.endless:
        codes.add("page_limit_exceeded")
    return sorted(codes)


def expected_counts(spec: StoreSpec, per_page: int = DEFAULT_EXPECTED_PER_PAGE) -> dict[str, Any]:
    """Counted arithmetically where it can be (no product generated for the plain counts).

    ``rejections`` is what the job's ``rejections`` map must hold when images are imported;
    ``outcome`` the job's outcome (CLEAN, WITH_REJECTIONS or UNVERIFIED).
    """
    image_faulted = spec.non_image | spec.oversized | spec.bomb | spec.dead_host | spec.ipv6_url | spec.port_url
    bad_products = set(spec.malformed) | set(spec.bad_records)
    # products an import must store: listed (not left out, not past a cycle) and not damaged
    cut = min(spec.products, spec.cycle_at_page * per_page) if spec.cycle_at_page is not None else spec.products
    excluded = {i for i in bad_products | spec.short_pages if i < cut}
    good = cut - len(excluded)
    images = good * spec.images_per_product
    rejected = len({i for i in image_faulted if i < cut and i not in excluded}) if spec.images_per_product else 0
    codes: dict[str, int] = {}
    for i in sorted(bad_products | image_faulted):
        if omitted(spec, i, per_page):
            continue
        kind = damage(spec, i)
        key = kind if kind is not None else (image_fault(spec, i, 0) if spec.images_per_product else None)
        if key is not None:
            codes[EXPECTED_CODES[key]] = codes.get(EXPECTED_CODES[key], 0) + 1
    issues = pagination_faults(spec, per_page)
    return {
        "products": spec.products,
        "valid_products": good,
        "malformed_products": len(bad_products),
        "images": images,
        "images_stored": images - rejected,
        "images_rejected": rejected,
        "rejections": codes,
        "verification_issues": issues,
        "outcome": "UNVERIFIED" if issues else "WITH_REJECTIONS" if codes else "CLEAN",
    }
