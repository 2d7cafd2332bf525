"""The two wire shapes: Roastify-like (numbered pages) and Shopify-like (opaque cursor + Link).

Both render the same catalog products; a malformed product is damaged at exactly its index,
in the way each dialect's parser must catch (missing id, or a price that is not a number).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from lab.fake_provider.catalog import StoreSpec, image_urls, page_range, product, total_pages

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
        "name": p.title,
        "description": p.description,
        "price": {"amount_cents": p.price_cents, "currency": "USD"},
        "images": [{"url": url} for url in image_urls(spec, base_url, p)],
    }
    if p.malformed == "missing_id":
        del record["id"]
    elif p.malformed == "bad_price":
        record["price"]["amount_cents"] = "call for price"
    return record


def roastify_page(spec: StoreSpec, page: int, per_page: int, base_url: str) -> dict[str, Any]:
    indices = page_range(spec.products, (page - 1) * per_page, per_page)
    return {
        "data": [roastify_product(spec, i, base_url) for i in indices],
        "meta": {
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages(spec.products, per_page),
            "total": spec.products,
        },
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
        "title": p.title,
        "body_html": f"<p>{p.description}</p>",
        "variants": [{"price": f"{p.price_cents // 100}.{p.price_cents % 100:02d}"}],
        "images": [{"src": url, "position": j + 1} for j, url in enumerate(image_urls(spec, base_url, p))],
    }
    if p.malformed == "missing_id":
        del record["id"]
    elif p.malformed == "bad_price":
        record["variants"][0]["price"] = "call for price"
    return record


@dataclass(frozen=True)
class ShopifyPage:
    body: dict[str, Any]
    next_url: str | None

    @property
    def link_header(self) -> str | None:
        return f'<{self.next_url}>; rel="next"' if self.next_url else None


def shopify_page(spec: StoreSpec, offset: int, limit: int, base_url: str) -> ShopifyPage:
    indices = page_range(spec.products, offset, limit)
    body = {"products": [shopify_product(spec, i, base_url) for i in indices]}
    next_offset = offset + limit
    next_url = None
    if next_offset < spec.products:
        next_url = (
            f"{shopify_products_url(base_url, spec.store_id)}?limit={limit}&page_info={encode_page_info(next_offset)}"
        )
    return ShopifyPage(body=body, next_url=next_url)


def shopify_page_key(offset: int, limit: int) -> str:
    return f"offset={offset}&limit={limit}"
