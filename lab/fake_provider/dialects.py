"""The two wire shapes: Roastify-like (numbered pages) and Shopify-like (opaque cursor + Link).

Both render the same catalog products; a malformed product is damaged at exactly its index,
in the way each dialect's parser must catch (missing id, a price that is not a number, a NUL
in the title, …: ``catalog.MalformedKind``), and pagination faults bend the page sequence
(``catalog.listed``, a cursor that cycles, a catalog that never ends).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from lab.fake_provider.catalog import (
    LONG_TITLE_CHARS,
    MalformedKind,
    Product,
    StoreSpec,
    declared_total,
    image_urls,
    listed,
    product,
    total_pages,
)

ROASTIFY_DEFAULT_PER_PAGE = 100
SHOPIFY_DEFAULT_LIMIT = 50
MAX_PAGE_SIZE = 250
SHOPIFY_API_VERSION = "2024-01"
_CURSOR_PREFIX = "v1:"


class BadPageRequest(ValueError):
    """A page parameter a real provider would answer with 400 (not a server fault)."""


def clamp_page_size(raw: str | None, default: int) -> int:
    """Oversized pages are clamped like real APIs do; nonsense is refused."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadPageRequest(f"page size must be an integer, got {raw!r}") from exc
    if value < 1:
        raise BadPageRequest(f"page size must be at least 1, got {value}")
    return min(value, MAX_PAGE_SIZE)


class CatalogJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate (a fault) travels as ``\\ud800``, which
    is valid JSON, where UTF-8 encoding would fail. Serves every catalog page."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def damaged_title(p: Product) -> str:
    match p.malformed:
        case "nul_title":
            return p.title[:5] + "\x00" + p.title[5:]
        case "surrogate_title":
            return p.title[:5] + "\ud800" + p.title[5:]
        case "long_title":
            return p.title + " " + "x" * LONG_TITLE_CHARS
    return p.title


# The damaged price per kind: Roastify's integer cents, Shopify's decimal string.
_ROASTIFY_PRICE: dict[MalformedKind, Any] = {
    "bad_price": "call for price",
    "price_infinity": "Infinity",
    "price_nan": "NaN",
    "price_huge_exponent": "1e999000",
    "price_negative": -500,
    "price_over_range": 2**63,
}
_SHOPIFY_PRICE: dict[MalformedKind, str] = {
    "bad_price": "call for price",
    "price_infinity": "Infinity",
    "price_nan": "NaN",
    "price_huge_exponent": "1e999000",
    "price_negative": "-5.00",
    "price_over_range": "99999999999999999999.00",
}


# --- Roastify ---------------------------------------------------------------------------------


def parse_roastify_page(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    try:
        page = int(raw)
    except ValueError as exc:
        raise BadPageRequest(f"page must be an integer, got {raw!r}") from exc
    if page < 1:
        raise BadPageRequest(f"page must be at least 1, got {page}")
    return page


def roastify_product(spec: StoreSpec, index: int, base_url: str) -> dict[str, Any]:
    p = product(spec, index)
    record: dict[str, Any] = {
        "id": p.external_id,
        "name": damaged_title(p),
        "description": p.description,
        "price": {"amount_cents": p.price_cents, "currency": "USD"},
        "images": [{"url": url} for url in image_urls(spec, base_url, p)],
    }
    if p.malformed == "missing_id":
        del record["id"]
    elif p.malformed in _ROASTIFY_PRICE:
        record["price"]["amount_cents"] = _ROASTIFY_PRICE[p.malformed]
    return record


def roastify_page(spec: StoreSpec, page: int, per_page: int, base_url: str) -> dict[str, Any]:
    indices = listed(spec, (page - 1) * per_page, per_page)
    pages = total_pages(spec.products, per_page)
    meta_page = page
    if spec.cycle_at_page is not None and page == spec.cycle_at_page:
        meta_page = max(1, page - 1)  # the importer's next page (meta.page + 1) is this page again
    if spec.endless:
        pages = page + 1  # the declared total grows with every page
    return {
        "data": [roastify_product(spec, i, base_url) for i in indices],
        "meta": {"page": meta_page, "per_page": per_page, "total_pages": pages, "total": declared_total(spec)},
    }


def roastify_page_key(page: int, per_page: int) -> str:
    return f"page={page}&per_page={per_page}"


# --- Shopify ----------------------------------------------------------------------------------


def encode_page_info(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode_page_info(token: str | None) -> int:
    """Offset 0 for no cursor; a token we did not issue is a client bug, so 400, not page 1."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadPageRequest(f"invalid page_info {token!r}") from exc
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise BadPageRequest(f"invalid page_info {token!r}")
    return int(text[len(_CURSOR_PREFIX) :])


def shopify_products_url(base_url: str, store_id: str) -> str:
    return f"{base_url}/shopify/stores/{store_id}/admin/api/{SHOPIFY_API_VERSION}/products.json"


def shopify_product(spec: StoreSpec, index: int, base_url: str) -> dict[str, Any]:
    p = product(spec, index)
    record: dict[str, Any] = {
        "id": p.numeric_id,
        "title": damaged_title(p),
        "body_html": f"<p>{p.description}</p>",
        "variants": [{"price": f"{p.price_cents // 100}.{p.price_cents % 100:02d}"}],
        "images": [{"src": url, "position": j + 1} for j, url in enumerate(image_urls(spec, base_url, p))],
    }
    if p.malformed == "missing_id":
        del record["id"]
    elif p.malformed in _SHOPIFY_PRICE:
        record["variants"][0]["price"] = _SHOPIFY_PRICE[p.malformed]
    return record


@dataclass(frozen=True)
class ShopifyPage:
    body: dict[str, Any]
    next_url: str | None

    @property
    def link_header(self) -> str | None:
        return f'<{self.next_url}>; rel="next"' if self.next_url else None


def shopify_page(spec: StoreSpec, offset: int, limit: int, base_url: str) -> ShopifyPage:
    indices = listed(spec, offset, limit)
    body = {"products": [shopify_product(spec, i, base_url) for i in indices]}
    next_offset = offset + limit
    if spec.cycle_at_page is not None and offset == (spec.cycle_at_page - 1) * limit:
        next_offset = offset  # the next-page link points at this very page
    next_url = None
    if next_offset < spec.products or (spec.endless and spec.products):
        next_url = (
            f"{shopify_products_url(base_url, spec.store_id)}?limit={limit}&page_info={encode_page_info(next_offset)}"
        )
    return ShopifyPage(body=body, next_url=next_url)


def shopify_page_key(offset: int, limit: int) -> str:
    return f"offset={offset}&limit={limit}"
